/**
 * The agent's RPC side. The bootstrap imports this module through the
 * loopback module server and hands it the channel; from then on it runs the
 * functions the controller asks for and sends back their results.
 *
 * @module
 */
import { Decoder, Encoder } from "@msgpack/msgpack";
import { fromWire, MAX_DEPTH, toWire } from "../wire/_codec.ts";
import { Msg } from "../wire/_protocol.ts";

/** The channel the bootstrap gives the agent. */
export interface AgentChannel {
  /** Sends one msgpack message body. */
  send(body: Uint8Array): void;
  /** Registers the handler of incoming message bodies. */
  receive(handler: (body: Uint8Array) => void): void;
}

type Target = ["m", string, string] | ["g", string];

const encoder = new Encoder({ maxDepth: MAX_DEPTH + 8 });
const decoder = new Decoder();
const running = new Map<number, AbortController>();
let base = "";

/** Starts serving calls on `channel`; `moduleBase` prefixes module paths. */
export function start(channel: AgentChannel, moduleBase: string): void {
  base = moduleBase;
  channel.receive((body) => {
    const message = decoder.decode(body) as unknown[];
    switch (message[0]) {
      case Msg.Call:
        void run(
          channel,
          message[1] as number,
          message[2] as Target,
          message[3],
        );
        break;
      case Msg.Cancel:
        running.get(message[1] as number)?.abort();
        break;
    }
  });
  channel.send(encoder.encode([Msg.Ready, {
    pid: Deno.pid,
    deno: Deno.version.deno,
    os: Deno.build.os,
    arch: Deno.build.arch,
  }]));
}

async function run(
  channel: AgentChannel,
  id: number,
  target: Target,
  wireArgs: unknown,
): Promise<void> {
  const abort = new AbortController();
  running.set(id, abort);
  let reply: Uint8Array;
  try {
    const fn = await resolve(target);
    const args = fromWire(wireArgs) as unknown[];
    const value = await fn(...args);
    reply = encoder.encode([Msg.Ok, id, toWire(value, "result")]);
  } catch (error) {
    reply = encodeError(id, error);
  } finally {
    running.delete(id);
  }
  if (!abort.signal.aborted) channel.send(reply);
}

type Resolved = (...args: unknown[]) => unknown;

const resolved = new Map<string, Resolved>();

/** Finds the function a call names; cached, since calls repeat. */
async function resolve(target: Target): Promise<Resolved> {
  const key = target.join("\0");
  let fn = resolved.get(key);
  if (!fn) {
    fn = await find(target);
    resolved.set(key, fn);
  }
  return fn;
}

async function find(target: Target): Promise<Resolved> {
  if (target[0] === "m") {
    const ns = await import(base + target[1]);
    const fn = ns[target[2]];
    if (typeof fn !== "function") {
      throw new TypeError(
        `Cannot call "${target[2]}": module ${
          target[1]
        } has no such exported function`,
      );
    }
    return fn;
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
  const bound = value as Resolved;
  return (...args: unknown[]) => bound.apply(owner, args);
}

function encodeError(id: number, error: unknown): Uint8Array {
  try {
    return encoder.encode([Msg.Err, id, toWire(error, "error")]);
  } catch {
    // The error holds something that cannot be sent: send its text only.
    const e = error instanceof Error ? error : new Error(String(error));
    const plain = new Error(String(e.message));
    plain.name = String(e.name);
    plain.stack = String(e.stack);
    return encoder.encode([Msg.Err, id, toWire(plain, "error")]);
  }
}
