/**
 * Constants of the wire protocol shared by the controller and the agent.
 * See `wire/PROTOCOL.md` for the full description.
 *
 * @module
 */

/** Frame kinds: the first byte of every frame's payload. */
export const Kind = {
  /** A msgpack-encoded RPC message (see {@linkcode Msg}). */
  Msg: 1,
  /**
   * Agent to controller: a module request
   * `[u32 id][u8 n][n bytes: sha256 the agent has cached, or none][path]`.
   */
  ModuleRequest: 2,
  /**
   * Controller to agent:
   * `[u32 id][u16 status][u8 type][u8 n][n bytes: sha256 of the body][body]`.
   */
  ModuleResponse: 3,
  /** Controller to agent, first frame: JSON boot parameters. */
  Hello: 4,
  /** Agent to controller: JSON `{ message }`, the agent could not start. */
  Fail: 5,
  /** Either way: `[u32 stream][bytes]`, a chunk of a file transfer. */
  Data: 6,
} as const;

/** RPC message types: the first element of every msgpack message array. */
export const Msg = {
  /** `[Call, id, target, args]`: controller asks the agent to run a function. */
  Call: 0,
  /** `[Ok, id, value]`: the call returned `value`. */
  Ok: 1,
  /** `[Err, id, error]`: the call threw `error`. */
  Err: 2,
  /** `[Cancel, id]`: the controller no longer wants the result. */
  Cancel: 3,
  /** `[Ready, info]`: the agent has loaded and takes calls. */
  Ready: 4,
  /** `[Ack, stream, bytes]`: the receiver has consumed `bytes` in all. */
  Ack: 5,
  /** `[End, stream, sha256]`: the agent has sent all of a file. */
  End: 6,
  /** `[Abort, stream, message]`: the stream failed; drop it. */
  Abort: 7,
  /** `[Ping]`: the controller checks the agent still answers. */
  Ping: 8,
  /** `[Pong]`: the agent's answer to a ping. */
  Pong: 9,
  /**
   * `[Load, path]`: a call of a function of the module at `path` (as in a
   * call's target) is coming: the agent starts loading it.
   */
  Load: 10,
} as const;

/** Bytes in one `Data` frame of a file transfer. */
export const CHUNK = 256 * 1024;

/** Most bytes a sender may have unacknowledged on one stream. */
export const WINDOW = 8 * 1024 * 1024;

/**
 * The receiver of a file flushes it to disk every this many bytes as it
 * arrives, so that the sync before its rename has little left to do.
 */
export const FLUSH = 16 * 1024 * 1024;

/** Largest frame payload either side accepts, in bytes. */
export const MAX_FRAME = 64 * 1024 * 1024;

/**
 * Why an encoded message of `size` bytes cannot go out as `what` (args or
 * result), or undefined when it fits in a frame (with its kind byte).
 */
export function tooBig(what: string, size: number): string | undefined {
  if (size + 1 <= MAX_FRAME) return undefined;
  return `Cannot send ${what}: it takes ${size} bytes, over the ${
    MAX_FRAME / 1024 / 1024
  } MiB a message may hold; send big data as a file (put, fetch) instead`;
}

/** Most bytes of output tolerated before the handshake marker. */
export const MAX_NOISE = 1024 * 1024;

/** Media types of module responses, indexed by the `type` byte. */
export const MODULE_TYPES = [
  "text/plain",
  "application/typescript",
  "application/javascript",
  "application/json",
  "text/tsx",
  "text/jsx",
  "application/octet-stream",
] as const;

/**
 * Where npm metadata served to agents says tarballs are; each agent puts
 * its own module server's URL in its place.
 */
export const NPM_PLACEHOLDER = "http://npm.chopsticks.invalid/";

/** The marker line the agent writes before its first frame. */
export function handshakeMarker(nonce: string): string {
  return `\u0000chopsticks-ready:${nonce}\n`;
}
