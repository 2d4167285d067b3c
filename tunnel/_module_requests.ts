/**
 * The agent's module requests, answered by the module server with
 * backpressure: a few at a time, each once the agent has taken most of
 * what was sent to it, and the agent's output left unread while too many
 * wait. An agent that asks for much and reads nothing makes the controller
 * wait, not hoard.
 *
 * @module
 */
import { Kind, MAX_FRAME } from "../wire/_protocol.ts";
import { MAX_MODULE, type ModuleServer } from "../modules/_module_server.ts";
import type { ProcessChannel } from "./_process_channel.ts";

/** Module requests answered at once per agent; more wait in a queue. */
const MODULE_WORKERS = 8;
/** Queued module requests past which the agent's output is not read. */
const MODULE_QUEUE = 1024;
/** Bytes waiting to be written to the agent past which modules wait. */
const MODULE_BACKLOG = 64 * 1024 * 1024;

/** The module requests of one agent. */
export class ModuleRequests {
  #server: ModuleServer;
  #channel: ProcessChannel;
  #queue: [id: number, path: string, known: string][] = [];
  #workers = 0;
  #room: (() => void) | undefined;
  #bytes = 0;
  #stopped = false;

  constructor(server: ModuleServer, channel: ProcessChannel) {
    this.#server = server;
    this.#channel = channel;
  }

  /** Bytes of module bodies sent so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Takes a `ModuleRequest` frame body:
   * `[u32 id][u8 n][n bytes: sha256 cached][path]`.
   */
  push(body: Uint8Array): void {
    if (this.#stopped) return;
    const id = new DataView(body.buffer, body.byteOffset, 4).getUint32(0);
    const knownEnd = 5 + body[4];
    const decode = (b: Uint8Array) => new TextDecoder().decode(b);
    const known = decode(body.subarray(5, knownEnd));
    const path = decode(body.subarray(knownEnd));
    this.#queue.push([id, path, known]);
    this.#serve();
  }

  /**
   * For the reader of the agent's output: a promise to wait on while too
   * many requests are queued, or undefined.
   */
  backpressure(): Promise<void> | undefined {
    if (this.#queue.length <= MODULE_QUEUE || this.#stopped) return;
    return new Promise((resolve) => this.#room = resolve);
  }

  /** Stops answering; the reader is let go. */
  stop(): void {
    this.#stopped = true;
    this.#queue = [];
    this.#wakeReader();
  }

  #serve(): void {
    while (this.#workers < MODULE_WORKERS && this.#queue.length > 0) {
      const [id, path, known] = this.#queue.shift()!;
      this.#workers++;
      void this.#answer(id, path, known).finally(() => {
        this.#workers--;
        if (this.#queue.length <= MODULE_QUEUE) this.#wakeReader();
        this.#serve();
      });
    }
  }

  async #answer(id: number, path: string, known: string): Promise<void> {
    await this.#channel.drained(MODULE_BACKLOG);
    if (this.#stopped) return;
    let a = await this.#server.answer(path, known);
    if (a.body.length > MAX_MODULE) {
      // The agent would refuse the frame (file modules are checked before
      // they are read, upstream answers as they are; npm metadata may grow
      // a little when its tarball URLs are rewritten): say so instead.
      a = {
        status: 413,
        type: 0,
        body: new TextEncoder().encode(
          `Too large: ${a.body.length} bytes is over a frame's ${MAX_FRAME}`,
        ),
      };
    }
    if (this.#stopped) return;
    this.#bytes += a.body.length;
    const hash = new TextEncoder().encode(a.sha256 ?? "");
    const head = new Uint8Array(8 + hash.length);
    const view = new DataView(head.buffer);
    view.setUint32(0, id);
    view.setUint16(4, a.status);
    head[6] = a.type;
    head[7] = hash.length;
    head.set(hash, 8);
    this.#channel.writeFrame(Kind.ModuleResponse, head, a.body);
  }

  #wakeReader(): void {
    const wake = this.#room;
    this.#room = undefined;
    wake?.();
  }
}
