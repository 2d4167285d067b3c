/**
 * The agent's RPC side. The bootstrap imports this module (bundled, see
 * `agent/build_bundle.ts`) through the loopback module server and hands it
 * the channel; from then on it runs the functions the controller asks for
 * and sends back their results.
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { fromWire, MAX_DEPTH, toWire } from "../wire/_codec.ts";
import { Kind, Msg, tooBig } from "../wire/_protocol.ts";
import { callStorage } from "./_call_storage.ts";
import * as files from "./_files.ts";
import * as tree from "./_tree.ts";
import { ChannelPipes } from "../wire/_pipes.ts";
import {
  type AgentContext,
  setAgentContext,
} from "../modules/_agent_context.ts";

/** The channel the bootstrap gives the agent. */
export interface AgentChannel {
  /** Sends one frame; `done` is called once `body` may be reused. */
  send(kind: number, body: Uint8Array, done?: () => void): void;
  /** Registers the handler of incoming `Msg` and `Data` frames. */
  receive(handler: (kind: number, body: Uint8Array) => void): void;
  /** Registers a hook run before the agent exits. */
  onClose(hook: () => void | Promise<void>): void;
  /** URL prefix of the loopback module server, with the secret. */
  base: string;
  /** The working directory the agent started in. */
  cwd: string;
  /** A file the agent script reads at exit: temporary files to remove. */
  tempList: string;
  /** The agent's TMPDIR: a put with no remote path writes there. */
  tempDir: string;
  /**
   * The pipes the channel runs through (FIFOs, `/proc/<pid>/fd/<n>`), which
   * a transfer widens where it may.
   */
  pipes(): string[];
  /** Where this agent sits: depth, host chain, the controller's project. */
  context: Omit<AgentContext, "base">;
}

type Target = ["m", string, string] | ["g", string] | ["b", string];
type Callable = (...args: unknown[]) => unknown;

const encoder = new Encoder({ maxDepth: MAX_DEPTH + 8 });

/**
 * A call's cancellation. Its AbortSignal is made only when code asks for
 * it (most calls never do, and an AbortController costs more than a call).
 */
class Cancellation {
  #controller: AbortController | undefined;
  #aborted = false;
  get aborted(): boolean {
    return this.#aborted;
  }
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort();
    }
    return this.#controller.signal;
  }
  abort(): void {
    this.#aborted = true;
    this.#controller?.abort();
  }
}

// Each call runs with its cancellation as async context, so that
// callSignal() finds it and Deno.Commands started during the call are
// killed when it is cancelled.
const storage = callStorage<Cancellation>();
Object.defineProperty(globalThis, Symbol.for("chopsticks.callSignal"), {
  value: () => storage.get()?.signal,
});
killChildrenOnCancel(() => storage.get()?.signal);
const decoder = new Decoder();
const running = new Map<number, Cancellation>();
const resolved = new Map<string, Callable>();
/** Modules loaded or loading, by path (a call's target or a load). */
const loading = new Map<string, Promise<Record<string, unknown>>>();
let channel: AgentChannel;
let fileChannel: files.FileChannel;

/** Built-in handlers: the only non-module targets the agent runs. */
const builtins: Record<string, Callable> = {
  putBegin: (id, path) =>
    files.putBegin(fileChannel, id as number, path as string | null),
  putEnd: (id, size, sha256, mode, data) =>
    files.putEnd(
      id as number,
      size as number,
      sha256 as string,
      mode as number | null,
      data as Uint8Array | undefined,
    ),
  fetchBegin: (id, path) =>
    files.fetchBegin(fileChannel, id as number, path as string),
  treeList: (path) =>
    tree.listTree(files.absolute(path as string, fileChannel.cwd)),
  treeHash: (root, paths) =>
    tree.hashFiles(root as string, paths as string[], storage.get()?.signal),
  treeMake: (root, entries, rootMode) =>
    tree.makeEntries(
      root as string,
      entries as tree.TreeEntry[],
      storage.get()?.signal,
      typeof rootMode === "number" ? rootMode : undefined,
    ),
};

/** Starts serving calls on `ch`. */
export function start(ch: AgentChannel): void {
  channel = ch;
  setAgentContext({ ...ch.context, base: ch.base });
  const pipes = new ChannelPipes(ch.pipes);
  fileChannel = {
    message: send,
    frame: (kind, body, done) => channel.send(kind, body, done),
    cwd: ch.cwd,
    tempList: ch.tempList,
    tempDir: ch.tempDir,
    streaming: () => pipes.streaming(),
  };
  channel.onClose(() => {
    // Calls still running see their signal abort as the agent ends (their
    // abort listeners run now; what those start may be cut short).
    for (const cancellation of running.values()) cancellation.abort();
    running.clear();
    pipes.close();
    return files.dropAll();
  });
  // `body` is a view of the channel's read buffer: use it before returning.
  channel.receive((kind, body) => {
    if (kind === Kind.Data) {
      const id = new DataView(body.buffer, body.byteOffset, 4).getUint32(0);
      return files.putData(fileChannel, id, body.subarray(4));
    }
    const message = decoder.decode(body) as unknown[];
    const id = message[1] as number;
    switch (message[0]) {
      case Msg.Ping:
        return send([Msg.Pong]);
      case Msg.Call:
        return run(id, message[2] as Target, message[3], mayHoldBytes(body));
      case Msg.Load:
        if (typeof message[1] !== "string") return;
        return void load(message[1]).catch(() => {});
      case Msg.Cancel:
        return running.get(id)?.abort();
      case Msg.Ack:
        return files.fetchAck(id, message[2] as number);
      case Msg.Abort:
        return void files.drop(id);
    }
  });
  send([Msg.Ready, {
    pid: Deno.pid,
    deno: Deno.version.deno,
    os: Deno.build.os,
    arch: Deno.build.arch,
  }]);
}

/**
 * Whether a message may hold msgpack bin (byte arrays, which fromWire then
 * copies out of it): a head byte 0xc4-0xc6 anywhere (other bytes may be
 * those too: the copy is then looked for in vain).
 */
function mayHoldBytes(body: Uint8Array): boolean {
  return body.includes(0xc4) || body.includes(0xc5) || body.includes(0xc6);
}

function send(message: unknown[]): void {
  channel.send(Kind.Msg, encoder.encode(message));
}

/**
 * Runs one call. A function found before (and every built-in) is called in
 * the turn its call arrived in, so calls start in the order they came: a
 * transfer's Abort never overtakes its begin. One that returns at once is
 * answered at once too, so that its reply goes out with the write that
 * ends the turn (see the bootstrap's read loop).
 */
function run(
  id: number,
  target: Target,
  wireArgs: unknown,
  hasBytes: boolean,
): void {
  const cancellation = new Cancellation();
  running.set(id, cancellation);
  const call = (fn: Callable) => {
    const args = fromWire(wireArgs, hasBytes) as unknown[];
    return storage.run(cancellation, () => fn(...args));
  };
  let outcome: unknown;
  let then: Then | undefined;
  try {
    const found = resolve(target);
    outcome = typeof found === "function" ? call(found) : found.then(call);
    then = thenOf(outcome);
  } catch (error) {
    return answer(id, cancellation, false, error);
  }
  if (!then) return answer(id, cancellation, true, outcome);
  new Promise((resolve, reject) => then.call(outcome, resolve, reject)).then(
    (value) => answer(id, cancellation, true, value),
    (error) => answer(id, cancellation, false, error),
  );
}

type Then = (
  resolve: (v: unknown) => void,
  reject: (e: unknown) => void,
) => void;

/**
 * The `then` method of a value that `await` would wait for (read once, as
 * `await` reads it), or undefined.
 */
function thenOf(value: unknown): Then | undefined {
  if (typeof value !== "function" && (typeof value !== "object" || !value)) {
    return undefined;
  }
  const then = (value as { then?: unknown }).then;
  return typeof then === "function" ? then as Then : undefined;
}

/** Sends a call's result (`ok`) or error, unless it was cancelled. */
function answer(
  id: number,
  cancellation: Cancellation,
  ok: boolean,
  outcome: unknown,
): void {
  running.delete(id);
  if (cancellation.aborted) return;
  let reply: unknown[];
  try {
    reply = ok
      ? [Msg.Ok, id, toWire(outcome, "result")]
      : [Msg.Err, id, errorTree(outcome)];
  } catch (error) {
    reply = [Msg.Err, id, errorTree(error)];
  }
  let bytes = encoder.encode(reply);
  // An answer over a frame would end the connection: that call fails.
  const why = tooBig(reply[0] === Msg.Ok ? "result" : "error", bytes.length);
  if (why) {
    bytes = encoder.encode([Msg.Err, id, errorTree(new RangeError(why))]);
  }
  channel.send(Kind.Msg, bytes);
}

/**
 * Finds the function a call names: at once when it was found before or is
 * a built-in, else once its module is loaded. Cached, since calls repeat.
 */
function resolve(target: Target): Callable | Promise<Callable> {
  const key = target.join("\0");
  const fn = resolved.get(key);
  if (fn) return fn;
  if (target[0] === "b") {
    const builtin = Object.hasOwn(builtins, target[1]) && builtins[target[1]];
    if (!builtin) throw new TypeError(`Cannot call built-in "${target[1]}"`);
    return builtin;
  }
  return find(target).then((found) => {
    resolved.set(key, found);
    return found;
  });
}

async function find(target: Target): Promise<Callable> {
  if (target[0] === "m") {
    const ns = await load(target[1]);
    const fn = ns[target[2]];
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot call "${target[2]}": module ${
          target[1]
        } has no such exported function`,
      );
    }
    return fn as Callable;
  }
  let owner: unknown = undefined;
  let value: unknown = globalThis;
  for (const key of target[1].split(".")) {
    owner = value;
    value = (value as Record<string, unknown>)?.[key];
  }
  if (typeof value !== "function") {
    throw new TypeError(
      `Cannot call "${target[1]}": it is not a function here`,
    );
  }
  const bound = value as Callable;
  return (...args: unknown[]) => bound.apply(owner, args);
}

/** Imports the module at `path` once; a failed import is tried again. */
function load(path: string): Promise<Record<string, unknown>> {
  let module = loading.get(path);
  if (!module) {
    module = import(channel.base + path);
    loading.set(path, module);
    module.catch(() => loading.delete(path));
  }
  return module;
}

/**
 * Makes `Deno.Command` default its `signal` to the current call's, so a
 * process a remote function starts is killed when the call is cancelled.
 */
function killChildrenOnCancel(current: () => AbortSignal | undefined): void {
  const desc = Object.getOwnPropertyDescriptor(Deno, "Command");
  if (!desc?.configurable) return;
  const wrap = (Command: typeof Deno.Command) =>
    class CallCommand extends Command {
      constructor(command: string | URL, options: Deno.CommandOptions = {}) {
        const signal = options.signal ?? current();
        super(command, signal ? { ...options, signal } : options);
      }
    };
  // Deno loads its process API on first use of `Deno.Command` (about 4 ms):
  // the wrapper is made then, not at start-up.
  let wrapped: typeof Deno.Command | undefined;
  Object.defineProperty(Deno, "Command", {
    get: () => wrapped ??= wrap(desc.get ? desc.get.call(Deno) : desc.value),
    set: (value: typeof Deno.Command) => wrapped = value,
    configurable: true,
    enumerable: desc.enumerable,
  });
}

function errorTree(error: unknown): unknown {
  try {
    return toWire(error, "error");
  } catch {
    // The error holds something that cannot be sent: send its text only.
    // Each part is read with care: the value thrown may be anything (an
    // array holding a symbol, an Error whose getters throw), and a throw
    // here would end the agent, and every call on it.
    const e = error instanceof Error ? error : undefined;
    const plain = new Error(e ? text(() => e.message) : text(() => error));
    plain.name = e ? text(() => e.name) : "Error";
    plain.stack = e ? text(() => e.stack) : "";
    return toWire(plain, "error");
  }
}

/** `String(read())`, or what can be said when that throws. */
function text(read: () => unknown): string {
  try {
    return String(read());
  } catch (error) {
    let value = "a value";
    try {
      value = Object.prototype.toString.call(read());
    } catch {
      // A getter that throws: "a value" it is.
    }
    return `(${value} that cannot be shown as text: ${
      error instanceof Error ? error.message : "it threw"
    })`;
  }
}
