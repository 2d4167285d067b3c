/**
 * The agent's module requests, answered by the module server with
 * backpressure: a few at a time, within the agent's share of the
 * controller's memory, and the agent's output left unread while too many
 * wait. An agent that asks for much and reads nothing makes the controller
 * wait, not hoard.
 *
 * The share: what waits to be written to the agent, and what its answers
 * hold while they are read (a file, or a download in chunks), stay within
 * SHARE bytes. An answer that would go past it waits until the agent has
 * read enough, except the agent's oldest answer, which goes on as long as
 * what waits to be written is within the share: so an agent that reads
 * always gets its answers, one big one at least at a time, and one that
 * reads nothing has the controller hold at most about SHARE plus one
 * answer (MAX_MODULE). A download that other agents wait on too goes on
 * while one of them has room (see `modules/_upstream.ts`), so an agent
 * cannot stall another's.
 *
 * @module
 */
import { Kind, MAX_FRAME } from "../wire/_protocol.ts";
import {
  type AnswerHold,
  changed,
  MAX_MODULE,
  type ModuleAnswer,
  type ModuleServer,
} from "../modules/_module_server.ts";
import type { ProcessChannel } from "./_process_channel.ts";

/** Module requests answered at once per agent; more wait in a queue. */
const MODULE_WORKERS = 8;
/** Queued module requests past which the agent's output is not read. */
const MODULE_QUEUE = 1024;
/** An agent's share of the controller's memory for module answers. */
export const SHARE = 64 * 1024 * 1024;

/** The module requests of one agent. */
export class ModuleRequests {
  #server: ModuleServer;
  #channel: ProcessChannel;
  #queue: [id: number, path: string, known: string][] = [];
  #workers = 0;
  #room: (() => void) | undefined;
  #bytes = 0;
  #stopped = false;
  /** Bytes the answers being read hold (not yet queued to the channel). */
  #held = 0;
  /** The answers being read, by the order they started in. */
  #reading = new Set<number>();
  #started = 0;
  /** Called at the next change that may make room (see #onChange). */
  #listeners = new Set<() => void>();
  /** A wait for the agent to read is registered on the channel. */
  #watching = false;

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
    this.#changed();
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

  /** The share's hold of one answer (see the module's comment). */
  #hold(): AnswerHold & { release(): void } {
    const order = ++this.#started;
    this.#reading.add(order);
    let taken = 0;
    const gone = () => this.#stopped || this.#channel.closing;
    const fits = (bytes: number) => {
      if (gone()) return true;
      const backlog = this.#channel.backlog;
      if (backlog + this.#held + bytes <= SHARE) return true;
      // The oldest answer being read goes on (so that answers of more than
      // the share, one at a time, come), while what waits to be written is
      // within the share (else every answer would add one more).
      const oldest = this.#reading.values().next().value === order;
      return oldest && backlog <= SHARE;
    };
    return {
      get gone() {
        return gone();
      },
      fits,
      onChange: (listener) => this.#onChange(listener),
      take: (bytes) => {
        taken += bytes;
        this.#held += bytes;
      },
      release: () => {
        this.#held -= taken;
        taken = 0;
        this.#reading.delete(order);
        this.#changed();
      },
    };
  }

  /**
   * Calls `listener` at the next change that may make room: an answer let
   * go, the agent reading (one wait on the channel at a time, for the next
   * write that ends), the requests stopped. Returns its removal.
   */
  #onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#watching && this.#channel.backlog > 0) {
      this.#watching = true;
      void this.#channel.progress().then(() => {
        this.#watching = false;
        this.#changed();
      });
    }
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    const listeners = [...this.#listeners];
    this.#listeners.clear();
    for (const listener of listeners) listener();
  }

  async #answer(id: number, path: string, known: string): Promise<void> {
    const hold = this.#hold();
    try {
      while (!hold.fits(0)) await changed(hold);
      if (this.#stopped) return;
      this.#send(id, await this.#server.answer(path, known, hold));
    } finally {
      // What the answer held is queued to the channel now, or dropped.
      hold.release();
    }
  }

  #send(id: number, answer: ModuleAnswer): void {
    let a = answer;
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
    // (A closing channel takes no more writes: not counted as sent.)
    if (this.#stopped || this.#channel.closing) return;
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
