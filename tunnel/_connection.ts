/**
 * One live agent: the transport process, the handshake, the frames on its
 * stdout, the module server that answers it, and the RPC calls in flight.
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import {
  ConnectError,
  ConnectionLostError,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "../errors.ts";
import { fromWire, isMarked, MAX_DEPTH, toWire } from "../wire/_codec.ts";
import {
  CHUNK,
  handshakeMarker,
  Kind,
  MAX_NOISE,
  Msg,
  tooBig,
  WINDOW,
} from "../wire/_protocol.ts";
import { checkMsgpack, type MessageShape } from "../wire/_frame.ts";
import { ModuleServer } from "../modules/_module_server.ts";
import { agentImportMap, currentProject } from "../modules/_import_map.ts";
import type { FunctionTarget } from "../modules/_function_ref.ts";
import { toUrlPath } from "../modules/_paths.ts";
import { agentContext } from "../modules/_agent_context.ts";
import { agentScript, envLine } from "./_agent_script.ts";
import { ModuleRequests } from "./_module_requests.ts";
import { loadAgentCode } from "./_agent_code.ts";
import {
  agentEnded,
  exitCause,
  importer,
  lastWords,
  meaningfulLines,
  STAGE_HINTS,
} from "./_connect_hints.ts";
import { cutText, MAX_REMOTE_TEXT, replaceAgentFiles } from "./_remote_text.ts";
import { DEFAULT_LIVENESS, type Liveness, track } from "./_liveness.ts";
import type { SpawnSpec } from "./_spawn_spec.ts";
import { OutputLines, type OutputSink, printableText } from "./_output.ts";
import type { Permissions } from "./_permissions.ts";
import { FRAME_HEAD, ProcessChannel } from "./_process_channel.ts";

export type { Preamble, SpawnSpec } from "./_spawn_spec.ts";
export type { Liveness } from "./_liveness.ts";

/** Everything a connection needs. */
export interface ConnectionOptions {
  host: string;
  spawn: (script: string) => SpawnSpec;
  deno: string;
  permissions: Permissions | undefined;
  env: Record<string, string> | undefined;
  cwd: string | undefined;
  connectTimeout: number;
  output: OutputSink;
  hint: string;
  /** How deep tunnels may nest (a tunnel opened on an agent is level 2). */
  maxDepth?: number;
  /** More origins agents may load remote modules from. */
  remoteModules?: string[];
  /** A file or directory of the project agents load modules from. */
  project?: string;
  /** How the agent is checked for life; false: never. */
  liveness?: Liveness | false;
  /**
   * The target of the call this connection is for, once located: the
   * agent starts loading its module while it starts.
   */
  preload?: Promise<CallTarget>;
  /** Aborts when the tunnel is closed: a connect under way stops at once. */
  closed?: AbortSignal;
}

/** Per-call options. */
export interface CallOptions {
  /**
   * Rejects the call with a TimeoutError after this many milliseconds,
   * from 0 to 2,147,483,647 (a bad value is refused before the call
   * starts).
   */
  timeout?: number;
  /** Rejects the call with the signal's reason when it aborts. */
  signal?: AbortSignal;
}

/** Receives the events of one file-transfer stream. */
export interface StreamHandler {
  /**
   * A chunk arrived (streams the agent sends). It is valid only until this
   * returns: its buffer then takes the next chunk.
   */
  data?(chunk: Uint8Array): void;
  /** The agent has consumed `bytes` in all (streams the controller sends). */
  ack?(bytes: number): void;
  /** The agent sent everything, with this sha256 (streams it sends). */
  end?(sha256: string): void;
  /** The stream failed; `error` says why. */
  abort(error: Error): void;
}

/** Bytes in front of a data frame's chunk: the frame's head, the stream id. */
export const DATA_HEAD = FRAME_HEAD + 4;

/** A target the agent resolves: a function, or one of its built-ins. */
export type CallTarget = FunctionTarget | { kind: "builtin"; name: string };

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

const encoder = new Encoder({ maxDepth: MAX_DEPTH + 8 });

class PortInUse extends Error {}

/** Targets as the agent is sent them, kept per target (calls repeat). */
const wireTargets = new WeakMap<CallTarget, unknown[]>();
function toWireTarget(target: CallTarget): unknown[] {
  const wire = target.kind === "module"
    ? ["m", "f" + toUrlPath(target.file), target.name]
    : target.kind === "global"
    ? ["g", target.path]
    : ["b", target.name];
  wireTargets.set(target, wire);
  return wire;
}

/** A connected agent. */
export class Connection {
  readonly host: string;
  #channel: ProcessChannel;
  #base: string;
  /** The agent's bootstrap, a data URL: named in remote stacks. */
  #bootstrap = "";
  #modules: ModuleRequests;
  #decoder = new Decoder();
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #streams = new Map<number, StreamHandler>();
  #nextStream = 1;
  /** Bytes received and acknowledged on the streams the agent sends. */
  #flow = new Map<number, { received: number; acked: number }>();
  #ended: Error | undefined;
  /** Set by SIGINT: nothing pending is rejected as the connection ends. */
  #interrupted = false;
  #ready!: { resolve: () => void; reject: (e: Error) => void };
  /** Set once the agent said it is ready. */
  #readyNow = false;
  /** Resolves when the connection has ended, for any reason. */
  readonly ended: Promise<void>;
  #markEnded!: () => void;

  private constructor(
    host: string,
    channel: ProcessChannel,
    base: string,
    modules: ModuleServer,
  ) {
    this.host = host;
    this.#channel = channel;
    this.#base = base;
    this.#modules = new ModuleRequests(modules, channel);
    this.ended = new Promise((resolve) => this.#markEnded = resolve);
  }

  /** Starts an agent and waits until it takes calls. */
  static async open(o: ConnectionOptions): Promise<Connection> {
    for (let attempt = 0;; attempt++) {
      try {
        return await Connection.#start(o);
      } catch (e) {
        if (!(e instanceof PortInUse) || attempt >= 4) throw e;
      }
    }
  }

  static async #start(o: ConnectionOptions): Promise<Connection> {
    const context = agentContext();
    const depth = (context?.depth ?? 0) + 1;
    const path = [...(context?.path ?? ["localhost"]), o.host];
    const maxDepth = o.maxDepth ?? 2;
    if (depth > maxDepth) {
      // The same tunnel again and again: most likely a script whose
      // top-level code opens it, run again by every agent that imports it.
      const again = new Set(path.slice(1)).size < depth;
      throw new ConnectError(
        o.host,
        "spawn",
        `Cannot connect to "${o.host}": tunnels nest at most ${maxDepth} deep: ${
          path.join(" -> ")
        }; ${
          again
            ? "if your script opens this tunnel in its top-level code, every agent that imports the script runs that code again: put it under `if (import.meta.main)`; else raise maxDepth"
            : "raise maxDepth to allow it"
        }`,
      );
    }
    const [project, code] = await Promise.all([
      currentProject(o.project),
      loadAgentCode(),
    ]);
    const port = 20000 + Math.floor(Math.random() * 40000);
    const secret = randomToken(24);
    const nonce = randomToken(8);
    const base = `http://127.0.0.1:${port}/${secret}/`;
    const script = agentScript({
      deno: o.deno,
      permissions: o.permissions,
      port,
      bootstrap: code.bootstrap,
      cwd: o.cwd,
    });
    // Made (and so checked) before anything starts.
    const envExports = envLine({
      // npm and JSR packages come through the module server.
      NPM_CONFIG_REGISTRY: base + "p/npm/",
      JSR_URL: base + "p/jsr/",
      ...o.env,
    });
    const spec = o.spawn(script);
    const preamble = spec.preamble;
    const stderr = new OutputLines(
      o.host,
      o.output,
      preamble && ((line) => preamble.filter(line)),
    );
    let channel: ProcessChannel;
    try {
      channel = ProcessChannel.spawn(spec, o.host, stderr);
    } catch (e) {
      throw new ConnectError(
        o.host,
        "spawn",
        `Cannot connect to "${o.host}": cannot start ${spec.command}: ${
          (e as Error).message
        }`,
        { cause: e },
      );
    }
    const conn = new Connection(
      o.host,
      channel,
      base,
      new ModuleServer(
        project.roots,
        secret,
        { "agent.js": code.bundle },
        context?.base,
        o.remoteModules,
      ),
    );
    conn.#bootstrap = code.bootstrap;
    const ready = new Promise<void>((resolve, reject) => {
      conn.#ready = { resolve, reject };
    });
    const timer = setTimeout(
      () =>
        conn.#ready.reject(
          new ConnectError(
            o.host,
            "timeout",
            `Cannot connect to "${o.host}": no answer within ${o.connectTimeout} ms; ${STAGE_HINTS.timeout}${
              o.hint ? "; " + o.hint : ""
            }`,
            { stderrTail: stderr.tail },
          ),
        ),
      o.connectTimeout,
    );
    const onClosed = () =>
      conn.#ready.reject(
        new ConnectError(
          o.host,
          "closed",
          `Cannot connect to "${o.host}": the tunnel was closed while it connected`,
          { stderrTail: stderr.tail },
        ),
      );
    if (o.closed?.aborted) onClosed();
    o.closed?.addEventListener("abort", onClosed, { once: true });
    if (preamble?.ready) {
      // The transport's step first; the process ending, or the connect
      // timeout, ends the wait too (the code below then reports it).
      try {
        await Promise.race([
          preamble.ready((bytes) => channel.write(bytes)),
          ready,
          channel.status,
        ]);
      } catch (e) {
        clearTimeout(timer);
        o.closed?.removeEventListener("abort", onClosed);
        await channel.close(true);
        throw e;
      }
    }
    const utf8 = new TextEncoder();
    channel.write(
      utf8.encode(envExports + "\n" + agentImportMap(project, base) + "\n"),
    );
    channel.writeFrame(
      Kind.Hello,
      utf8.encode(JSON.stringify({
        port,
        secret,
        nonce,
        agent: "v/agent.js",
        agentHash: code.bundleHash,
        agentSize: code.bundle.body.length,
        version: Deno.version.deno,
        context: {
          depth,
          path,
          project: {
            configDir: project.configDir,
            imports: project.imports,
            scopes: project.scopes,
          },
        },
      })),
    );
    o.preload?.then((target) => {
      const wire = wireTargets.get(target) ?? toWireTarget(target);
      if (wire[0] === "m" && !conn.#readyNow && !conn.#ended) {
        conn.#send([Msg.Load, wire[1]]);
      }
    }, () => {});
    const noise = new OutputLines(o.host, o.output);
    void channel.run(
      utf8.encode(handshakeMarker(nonce)),
      MAX_NOISE,
      noise,
      (kind, body) => conn.#onFrame(kind, body),
      () => conn.#modules.backpressure(),
    ).then(
      (why) => conn.#lost(why),
      (error) => conn.#lost(error),
    );
    try {
      await ready;
      conn.#watch(o.liveness ?? DEFAULT_LIVENESS);
      track(conn, true);
      return conn;
    } catch (e) {
      conn.#modules.stop();
      await channel.close(true);
      if (e instanceof PortInUse) throw e;
      if (e instanceof ConnectError) throw e;
      const status = await channel.status;
      const last = meaningfulLines(stderr.tail).at(-1) ?? "";
      const { stage, who, said, hint } = e instanceof ProtocolError
        ? {
          stage: "handshake",
          who: "",
          said: last,
          hint: STAGE_HINTS.handshake,
        } as const
        : channel.sawMarker
        ? agentEnded(stderr.tail, status.code)
        : exitCause(stderr.tail, status.code, spec.command, o.hint);
      throw new ConnectError(
        o.host,
        stage,
        `Cannot connect to "${o.host}": ${
          e instanceof ProtocolError
            ? e.message
            : `${who} exited with code ${status.code}`
        }${said ? ": " + said : ""}${hint ? "; " + hint : ""}`,
        { exitCode: status.code, stderrTail: stderr.tail, cause: e },
      );
    } finally {
      clearTimeout(timer);
      o.closed?.removeEventListener("abort", onClosed);
    }
  }

  /** Bytes of module bodies sent to this agent so far. */
  get moduleBytes(): number {
    return this.#modules.bytes;
  }

  /** True until the agent is gone or the connection was closed. */
  get open(): boolean {
    return this.#ended === undefined;
  }

  /** Runs `target` on the agent with `args`. */
  call(
    target: CallTarget,
    args: unknown[],
    options: CallOptions = {},
  ): Promise<unknown> {
    if (this.#ended) return Promise.reject(this.#ended);
    return this.callWire(target, toWire(args, "args"), options);
  }

  /** Runs `target` on the agent with arguments already in wire form. */
  callWire(
    target: CallTarget,
    wireArgs: unknown,
    options: CallOptions = {},
  ): Promise<unknown> {
    if (this.#ended) return Promise.reject(this.#ended);
    const wireTarget = wireTargets.get(target) ?? toWireTarget(target);
    const id = this.#nextId++;
    const { signal, timeout } = options;
    signal?.throwIfAborted();
    const call = encoder.encode([Msg.Call, id, wireTarget, wireArgs]);
    const why = tooBig("args", call.length);
    if (why) return Promise.reject(new RangeError(why));
    if (!signal && timeout === undefined) {
      // Nothing to clean up when it settles: the promise's own functions.
      return new Promise((resolve, reject) => {
        this.#pending.set(id, { resolve, reject });
        this.#channel.writeFrame(Kind.Msg, call);
      });
    }
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = () => cancel(signal!.reason);
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const cancel = (reason: unknown) => {
        if (!this.#pending.delete(id)) return;
        cleanup();
        this.#send([Msg.Cancel, id]);
        reject(reason);
      };
      this.#pending.set(id, {
        resolve: (v) => (cleanup(), resolve(v)),
        reject: (e) => (cleanup(), reject(e)),
      });
      if (timeout !== undefined) {
        timer = setTimeout(
          () =>
            cancel(
              new TimeoutError(
                this.host,
                `Call on "${this.host}" timed out after ${timeout} ms`,
              ),
            ),
          timeout,
        );
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#channel.writeFrame(Kind.Msg, call);
    });
  }

  /** Closes the channel; the agent and all it started are stopped. */
  async close(force = false): Promise<void> {
    this.#end(
      new ConnectionLostError(
        this.host,
        `Tunnel to "${this.host}" was closed while the call was pending`,
      ),
    );
    await this.#channel.close(force);
  }

  /**
   * Stops the agent for SIGINT: the channel closes at once, and calls and
   * transfers under way never settle (see `Closable`).
   */
  interrupt(): Promise<void> {
    this.#interrupted = true;
    return this.close(true);
  }

  /**
   * The agent broke the protocol where the connection could not see it (in
   * what a transfer's built-in answered): the connection ends with `error`.
   */
  broke(error: ProtocolError): void {
    void this.#lost(error);
  }

  /** Registers a transfer stream; returns its id. */
  openStream(handler: StreamHandler): number {
    if (this.#ended) throw this.#ended;
    const id = this.#nextStream++;
    this.#streams.set(id, handler);
    this.#progress.set(id, performance.now());
    return id;
  }

  /** Forgets stream `id`; with `why`, tells the agent to drop it too. */
  closeStream(id: number, why?: string): void {
    this.#flow.delete(id);
    this.#progress.delete(id);
    if (this.#streams.delete(id) && why !== undefined && !this.#ended) {
      this.#send([Msg.Abort, id, why]);
    }
  }

  /**
   * Sends a chunk of stream `id`: `framed` is the chunk with DATA_HEAD
   * bytes left free in front of it, where the frame's head is written, so
   * that the frame goes out in one write, uncopied.
   */
  sendData(id: number, framed: Uint8Array): void {
    new DataView(framed.buffer, framed.byteOffset, DATA_HEAD)
      .setUint32(FRAME_HEAD, id);
    this.#channel.writeFramed(Kind.Data, framed);
  }

  /**
   * Marks a transfer that streams (its data goes in chunks): the pipes to
   * the process are widened meanwhile. Returns the function that marks its
   * end.
   */
  streaming(): () => void {
    return this.#channel.pipes.streaming();
  }

  /** Resolves once at most `limit` bytes wait to be written to the agent. */
  drained(limit: number): Promise<void> {
    return this.#channel.drained(limit);
  }

  /** Acknowledges `bytes` consumed of stream `id`. */
  ack(id: number, bytes: number): void {
    const flow = this.#flow.get(id);
    if (flow) flow.acked = Math.max(flow.acked, bytes);
    this.#send([Msg.Ack, id, bytes]);
  }

  #stream(id: unknown): StreamHandler | undefined {
    if (typeof id !== "number" || !(id >= 1 && id < this.#nextStream)) {
      throw new ProtocolError(this.host, `stream ${id} was never opened`);
    }
    return this.#streams.get(id);
  }

  #send(message: unknown[]): void {
    this.#channel.writeFrame(Kind.Msg, encoder.encode(message));
  }

  #lastHeard = performance.now();
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /**
   * When each open stream last moved (opened, data or an acknowledgement
   * came): an agent that answers pings but lets a transfer stand still
   * cannot hold it for ever.
   */
  #progress = new Map<number, number>();

  /**
   * Pings the agent when it is quiet; gives up when it stays quiet, and on
   * a stream that stands still as long.
   */
  #watch(liveness: Liveness | false): void {
    if (!liveness) return;
    const step = Math.max(
      10,
      Math.min(liveness.interval, liveness.timeout) / 2,
    );
    this.#watchdog = setInterval(() => {
      const quiet = performance.now() - this.#lastHeard;
      if (quiet >= liveness.timeout) {
        void this.#lost(
          new ConnectionLostError(
            this.host,
            `Agent on "${this.host}" stopped answering: nothing for ${
              Math.round(quiet)
            } ms (liveness timeout ${liveness.timeout} ms)`,
          ),
        );
      } else if (quiet >= liveness.interval) {
        this.#send([Msg.Ping]);
      }
      this.#stopStalled(liveness.timeout);
    }, step);
    Deno.unrefTimer(this.#watchdog);
  }

  #stopStalled(timeout: number): void {
    const now = performance.now();
    for (const [id, at] of this.#progress) {
      if (now - at < timeout) continue;
      const stream = this.#streams.get(id);
      this.closeStream(id, "it stood still");
      stream?.abort(
        new TimeoutError(
          this.host,
          `transfer stream ${id} stood still: no data and no acknowledgement from the agent for ${
            Math.round(now - at)
          } ms (liveness timeout ${timeout} ms)`,
        ),
      );
    }
  }

  #onFrame(kind: number, body: Uint8Array): void {
    this.#lastHeard = performance.now();
    if (kind === Kind.Msg) return this.#onMessage(body);
    if (kind === Kind.Data && body.length >= 4) {
      const id = new DataView(body.buffer, body.byteOffset, 4).getUint32(0);
      const stream = this.#stream(id);
      if (!stream) return; // already finished or dropped here
      this.#progress.set(id, this.#lastHeard);
      if (!stream.data) {
        throw new ProtocolError(this.host, `data on stream ${id}, which sends`);
      }
      // The agent may send a window beyond what was acknowledged: more is
      // a flood that would pile up here.
      const flow = this.#flow.get(id) ?? { received: 0, acked: 0 };
      this.#flow.set(id, flow);
      flow.received += body.length - 4;
      if (flow.received - flow.acked > WINDOW + CHUNK) {
        throw new ProtocolError(
          this.host,
          `stream ${id} sent ${
            flow.received - flow.acked
          } bytes beyond what was acknowledged, over its window of ${WINDOW}`,
        );
      }
      return stream.data(body.subarray(4));
    }
    if (kind === Kind.ModuleRequest && body.length >= 5) {
      return this.#modules.push(body);
    }
    if (kind === Kind.Fail) {
      let info: { code?: unknown; message?: unknown } = {};
      try {
        const said = JSON.parse(new TextDecoder().decode(body));
        if (typeof said === "object" && said !== null) info = said;
      } catch {
        // Reported below as it is.
      }
      if (typeof info.message !== "string") info.message = "no reason given";
      if (info.code === "port") this.#ready.reject(new PortInUse());
      if (info.code === "version") {
        this.#ready.reject(
          new ConnectError(
            this.host,
            "deno",
            `Cannot connect to "${this.host}": ${info.message}; ${STAGE_HINTS.deno}`,
          ),
        );
      }
      throw new Error(String(info.message));
    }
    throw new ProtocolError(this.host, `unexpected frame kind ${kind}`);
  }

  #onMessage(body: Uint8Array): void {
    let message: unknown;
    let shape: MessageShape;
    try {
      // Checked first: a few bytes must not make the decoder allocate much.
      shape = checkMsgpack(body, MAX_DEPTH + 8);
      message = this.#decoder.decode(body);
    } catch (e) {
      throw new ProtocolError(this.host, `invalid msgpack: ${e}`);
    }
    try {
      this.#dispatch(message, shape);
    } catch (e) {
      // Anything else a message makes go wrong here is the agent's doing
      // too (a value that code reading it did not expect): the tunnel ends
      // at once, as for any broken protocol, rather than waiting for an
      // agent that may never exit.
      if (e instanceof ProtocolError) throw e;
      throw new ProtocolError(
        this.host,
        `a message the controller could not handle (${e})`,
      );
    }
  }

  #dispatch(message: unknown, shape: MessageShape): void {
    if (!Array.isArray(message)) {
      throw new ProtocolError(this.host, "a message is not an array");
    }
    const [type, id] = message;
    // An ext type is a marker of a value tree, and only a reply's marked
    // value holds one: elsewhere it would reach the program as msgpack's
    // own objects (an ExtData, or a Date from its timestamp type).
    if (
      shape.exts &&
      !((type === Msg.Ok || type === Msg.Err) && isMarked(message[2]))
    ) {
      throw new ProtocolError(
        this.host,
        "a message holds an ext type outside a marked value",
      );
    }
    if (type === Msg.Ready) {
      this.#readyNow = true;
      return this.#ready.resolve();
    }
    if (type === Msg.Pong) return;
    if (type === Msg.Ack || type === Msg.End || type === Msg.Abort) {
      return this.#onStreamMessage(type, id, message[2]);
    }
    if (type !== Msg.Ok && type !== Msg.Err) {
      throw new ProtocolError(this.host, `unknown message type ${type}`);
    }
    if (!Number.isInteger(id) || !(id >= 1 && id < this.#nextId)) {
      throw new ProtocolError(this.host, `a reply to call ${id}, never made`);
    }
    const pending = this.#pending.get(id);
    if (!pending) return; // a late reply to a call cancelled here
    let value: unknown;
    try {
      value = fromWire(message[2], shape.bytes);
    } catch (e) {
      // Still pending: the end of the connection rejects it with this.
      throw new ProtocolError(this.host, `a bad value: ${e}`);
    }
    // Made before the call is forgotten: should making it fail, the call
    // is still pending, and the end of the connection rejects it.
    const error = type === Msg.Err ? this.#remoteError(value) : undefined;
    this.#pending.delete(id);
    if (error) pending.reject(error);
    else pending.resolve(value);
  }

  #onStreamMessage(type: number, id: unknown, arg: unknown): void {
    const stream = this.#stream(id);
    if (!stream) return; // already finished or dropped here
    if (type === Msg.Ack && typeof arg === "number" && stream.ack) {
      this.#progress.set(id as number, this.#lastHeard);
      return stream.ack(arg);
    }
    if (type === Msg.End && typeof arg === "string" && stream.end) {
      return stream.end(arg);
    }
    if (type === Msg.Abort) {
      this.closeStream(id as number); // the agent dropped it already
      return stream.abort(new Error(String(arg)));
    }
    throw new ProtocolError(this.host, `a bad stream message for ${id}`);
  }

  #remoteError(value: unknown): RemoteError {
    // Remote code may throw any value, such as an object with no
    // prototype, which String() cannot convert.
    const e = value instanceof Error
      ? value
      : Object.assign(new Error(describe(value)), { stack: "" });
    const bundle = new URL("../agent/_agent.bundle.js", import.meta.url).href;
    const bootstrap = new URL("../agent/_bootstrap.bundle.js", import.meta.url)
      .href;
    // V8 shortens a long data: URL in a stack to its head, "......" and its
    // tail. The bootstrap's is known here; any other is the agent's code.
    // Only positions (url:line:column) are named: a message that holds a
    // data: URL of its own is left as it is.
    const dataUrl = (url: string, head: string, tail?: string) =>
      this.#bootstrap.startsWith(
          `data:application/javascript;base64,${head}`,
        ) &&
        (tail === undefined
          ? this.#bootstrap.length === url.length
          : this.#bootstrap.endsWith(tail))
        ? bootstrap
        : bundle;
    // A hostile agent's text is cut first (it may be 64 MiB), and every
    // pattern here runs in linear time (see _remote_text.ts).
    const fix = (s: string) =>
      replaceAgentFiles(
        cutText(s).replaceAll(this.#base + "v/agent.js", bundle)
          .replace(
            /data:application\/javascript;base64,([A-Za-z0-9+/=]+)(?:\.{6}([A-Za-z0-9+/=]+))?(?=:\d+:\d+)/g,
            dataUrl,
          ),
        bundle,
      ).replaceAll(this.#base + "f", "file://");
    // The text is the program's to print (console.error(e), an uncaught
    // error): no escape sequence in it reaches a terminal raw, in this
    // error or in one it holds (Deno prints an error's causes as they are).
    e.message = printableText(fix(e.message));
    e.stack = printableText(fix(String(e.stack ?? "")));
    e.message += importer(e);
    if (e.name === "NotCapable") {
      // Deno's advice is for its command line; here the tunnel grants.
      e.message = e.message.replace(
        /run again with the --allow-([a-z]+) flag/,
        (_, name) =>
          `grant it with the tunnel's permissions option ({ ${name}: [...] } or { ${name}: true })`,
      );
    }
    cleanHeldErrors(e);
    return new RemoteError(
      this.host,
      {
        name: printableText(cutText(e.name)),
        message: e.message,
        stack: e.stack,
      },
      { cause: e },
    );
  }

  async #lost(why: unknown): Promise<void> {
    if (this.#ended) return;
    if (why instanceof ProtocolError || why instanceof ConnectionLostError) {
      // A broken protocol or a silent agent: fail everything now, then
      // make sure the process goes.
      this.#ready.reject(why);
      this.#end(why);
      await this.#channel.close(true);
      return;
    }
    // Module answers stop first: nothing is written to a closing channel.
    this.#modules.stop();
    const closing = this.#channel.close();
    const status = await this.#channel.status;
    await closing;
    const tail = this.#channel.stderrTail;
    const said = lastWords(tail, status.code);
    const error = new ConnectionLostError(
      this.host,
      `Agent on "${this.host}" exited with code ${status.code}${
        said ? ": " + said : ""
      }`,
      { exitCode: status.code, stderrTail: tail, cause: why },
    );
    this.#ready.reject(error);
    this.#end(error);
  }

  #end(error: Error): void {
    clearInterval(this.#watchdog);
    track(this, false);
    if (this.#ended) return;
    this.#ended = error;
    if (!this.#interrupted) {
      for (const p of this.#pending.values()) p.reject(error);
      for (const stream of this.#streams.values()) stream.abort(error);
    }
    this.#pending.clear();
    this.#streams.clear();
    this.#flow.clear();
    this.#progress.clear();
    this.#modules.stop();
    this.#markEnded();
  }
}

/**
 * Makes the text of the errors that `error` holds (its `cause` and an
 * AggregateError's `errors`, and theirs, up to 100 errors) printable, as
 * the remote error's own.
 */
function cleanHeldErrors(error: Error): void {
  const seen = new Set<unknown>([error]);
  const queue: unknown[] = [];
  const hold = (e: Error) => {
    queue.push(e.cause);
    if (e instanceof AggregateError && Array.isArray(e.errors)) {
      queue.push(...e.errors.slice(0, 100));
    }
  };
  hold(error);
  while (queue.length > 0 && seen.size <= 100) {
    const held = queue.shift();
    if (!(held instanceof Error) || seen.has(held)) continue;
    seen.add(held);
    held.message = printableText(cutText(held.message));
    held.stack = printableText(cutText(String(held.stack ?? "")));
    if (Object.hasOwn(held, "name")) {
      held.name = printableText(cutText(held.name));
    }
    hold(held);
  }
}

/**
 * A thrown value that is not an Error, as text, the way `String()` makes
 * it (a string, a number, an array of them joined by commas, `[object
 * Object]`), in bounded time: `String()` itself walks every shared
 * reference again (a few hundred bytes of arrays that each hold the one
 * before twice took minutes) and prints a bigint in time quadratic in its
 * size. At most MAX_REMOTE_TEXT characters and 10,000 items are looked at.
 */
function describe(value: unknown): string {
  // A string is the text itself (cut later, saying how much was cut).
  if (typeof value === "string") return value;
  let items = 10_000;
  let left = MAX_REMOTE_TEXT;
  const walk = (v: unknown, open: Set<unknown>): string => {
    if (--items < 0 || left <= 0) return "";
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const numbers = v as unknown as ArrayLike<unknown>;
      v = Array.from(
        { length: Math.min(numbers.length, items) },
        (_, i) => numbers[i],
      );
    }
    let text: string;
    if (typeof v === "string") text = v;
    else if (typeof v === "bigint") {
      const hex = v.toString(16);
      text = hex.length <= 256
        ? String(v)
        : `a bigint of ${hex.length * 4} bits`;
    } else if (typeof v !== "object" || v === null) text = String(v);
    else if (Array.isArray(v)) {
      // As Array.prototype.join: nothing for null, undefined or a cycle.
      if (open.has(v)) return "";
      open.add(v);
      const parts: string[] = [];
      for (const item of v) {
        if (items <= 0 || left <= 0) break;
        parts.push(item === null || item === undefined ? "" : walk(item, open));
        left--;
      }
      open.delete(v);
      return parts.join(",");
    } else if (v instanceof Error) {
      text = v.message ? `${v.name}: ${v.message}` : v.name;
    } else if (v instanceof Date || v instanceof RegExp) text = String(v);
    else text = Object.prototype.toString.call(v);
    text = text.slice(0, left);
    left -= text.length;
    return text;
  };
  const text = walk(value, new Set());
  return items < 0 || left <= 0 ? text + "… [cut]" : text;
}

function randomToken(bytes: number): string {
  const raw = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(raw, (b) => b.toString(16).padStart(2, "0")).join("");
}
