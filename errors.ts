/**
 * The errors a caller may want to catch: each has a stable `name`.
 *
 * ```ts
 * import { Local, RemoteError } from "@chopsticks/chopsticks";
 * await using tun = new Local();
 * try {
 *   await tun.call(Deno.readTextFile, "/nonexistent/file");
 * } catch (e) {
 *   // localhost NotFound No such file or directory (os error 2): ...
 *   if (e instanceof RemoteError) console.log(e.host, e.remoteName, e.message);
 * }
 * ```
 *
 * @module
 */

/**
 * A remote function threw. `message` is the remote error's message,
 * `remoteName` its name (such as `"TypeError"` or `"NotCapable"`),
 * `remoteStack` its stack with controller file paths, and `cause` the
 * remote error rebuilt as a value.
 *
 * @example Telling a remote failure apart
 * ```ts
 * import { RemoteError } from "@chopsticks/chopsticks";
 * const e = new RemoteError("web1", { name: "NotFound", message: "no such file", stack: "" });
 * console.log(e.host, e.remoteName); // web1 NotFound
 * ```
 */
export class RemoteError extends Error {
  /** Always `"RemoteError"`. */
  override name = "RemoteError";
  /** The host the function ran on. */
  readonly host: string;
  /** The remote error's name, e.g. `"TypeError"`. */
  readonly remoteName: string;
  /** The remote stack trace, with controller file paths. */
  readonly remoteStack: string;

  /** Builds the error from what the agent reported. */
  constructor(
    host: string,
    remote: { name: string; message: string; stack: string },
    options?: ErrorOptions,
  ) {
    super(remote.message, options);
    this.host = host;
    this.remoteName = remote.name;
    this.remoteStack = remote.stack;
    const frames = remote.stack.split("\n").filter((l) => /^\s+at /.test(l));
    this.stack = [
      `RemoteError on "${host}": ${remote.name}: ${remote.message}`,
      ...frames,
      ...(this.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)),
    ].join("\n");
  }
}

/** Where connecting failed. */
export type ConnectStage =
  /** The transport program (ssh, docker, sudo, sh) could not be started. */
  | "spawn"
  /** It started but failed: ssh refused, unknown host, engine error. */
  | "transport"
  /** sudo refused, or wanted a password it did not get. */
  | "sudo"
  /** No usable deno on the target, or an unsupported version. */
  | "deno"
  /** Something else than the agent's handshake came back. */
  | "handshake"
  /**
   * The agent script or Deno failed on the target before the agent was
   * ready (a `cwd` that cannot be entered, a tool of the script missing
   * from PATH, Deno refusing its flags, such as a bad `permissions`
   * entry), or the agent started and then failed.
   */
  | "agent"
  /** Nothing came back within `connectTimeout`. */
  | "timeout"
  /** The tunnel was closed while it connected. */
  | "closed";

/**
 * A tunnel could not connect. Carries the stage that failed, the exit code
 * of the transport process when it ended, the last lines of its stderr, and
 * a hint.
 *
 * @example Reporting a failed connection
 * ```ts
 * import { ConnectError, Local } from "@chopsticks/chopsticks";
 * const tun = new Local("bad", { deno: "/no/such/deno" });
 * try {
 *   await tun.connect();
 * } catch (e) {
 *   if (e instanceof ConnectError) console.log(e.stage, e.exitCode, e.stderrTail);
 * }
 * ```
 */
export class ConnectError extends Error {
  /** Always `"ConnectError"`. */
  override name = "ConnectError";
  /** The host that could not be reached. */
  readonly host: string;
  /** The stage that failed. */
  readonly stage: ConnectStage;
  /** Exit code of the transport process, when it ended. */
  readonly exitCode: number | undefined;
  /** The last lines the transport process wrote to stderr. */
  readonly stderrTail: string[];

  /** Builds the error; `message` is the full text. */
  constructor(
    host: string,
    stage: ConnectStage,
    message: string,
    details: { exitCode?: number; stderrTail?: string[] } & ErrorOptions = {},
  ) {
    super(message, { cause: details.cause });
    this.host = host;
    this.stage = stage;
    this.exitCode = details.exitCode;
    this.stderrTail = details.stderrTail ?? [];
  }
}

/**
 * The connection to an agent ended while calls were pending: the agent
 * exited or was killed. Carries its exit code and last stderr lines.
 *
 * @example
 * ```ts
 * import { ConnectionLostError } from "@chopsticks/chopsticks";
 * const e = new ConnectionLostError("web1", "agent exited", { exitCode: 137 });
 * console.log(e.exitCode); // 137
 * ```
 */
export class ConnectionLostError extends Error {
  /** Always `"ConnectionLostError"`. */
  override name = "ConnectionLostError";
  /** The host whose agent was lost. */
  readonly host: string;
  /** Exit code of the agent's process, when known. */
  readonly exitCode: number | undefined;
  /** The last lines the agent wrote to stderr. */
  readonly stderrTail: string[];

  /** Builds the error; `message` is the full text. */
  constructor(
    host: string,
    message: string,
    details: { exitCode?: number; stderrTail?: string[] } & ErrorOptions = {},
  ) {
    super(message, { cause: details.cause });
    this.host = host;
    this.exitCode = details.exitCode;
    this.stderrTail = details.stderrTail ?? [];
  }
}

/**
 * The agent broke the protocol (a bad frame, invalid msgpack, a reply to a
 * call never made). The tunnel is closed; other tunnels are unaffected.
 *
 * @example
 * ```ts
 * import { ProtocolError } from "@chopsticks/chopsticks";
 * const e = new ProtocolError("web1", "frame length 0 is invalid");
 * console.log(e.message);
 * ```
 */
export class ProtocolError extends Error {
  /** Always `"ProtocolError"`. */
  override name = "ProtocolError";
  /** The host whose agent broke the protocol. */
  readonly host: string;

  /** Builds the error. */
  constructor(host: string, message: string, options?: ErrorOptions) {
    super(`Agent on "${host}" broke the protocol: ${message}`, options);
    this.host = host;
  }
}

/**
 * A call took longer than its time limit (`timeout`, `callTimeout`), or a
 * transfer of a group or a queue took longer than the operation's
 * `timeout`. A connection that takes longer than `connectTimeout` is a
 * {@linkcode ConnectError} of stage `"timeout"` instead.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@chopsticks/chopsticks";
 * const e = new TimeoutError("web1", "Call timed out after 5000 ms");
 * console.log(e.host);
 * ```
 */
export class TimeoutError extends Error {
  /** Always `"TimeoutError"`. */
  override name = "TimeoutError";
  /** The host the call or transfer ran on. */
  readonly host: string;

  /** Builds the error. */
  constructor(host: string, message: string) {
    super(message);
    this.host = host;
  }
}
