/**
 * A failure on one host, kept as a value.
 *
 * @module
 */

/** The JSON shape of an {@linkcode ErrorResult}. */
export interface ErrorResultJson {
  /** The host that failed. */
  host: string;
  /** The error's name, e.g. `"RemoteError"` or `"ConnectError"`. */
  name: string;
  /** The error's message. */
  message: string;
  /** The remote error's name, when the remote function threw. */
  remoteName?: string;
  /** The remote stack trace, when the remote function threw. */
  remoteStack?: string;
}

/**
 * A failure as a value: what a group, or a queue, gives for a host where the
 * operation threw, instead of throwing. `cause` is the original error;
 * `remoteName` and `remoteStack` are set when the remote function threw (a
 * `RemoteError`).
 *
 * @example Telling failures apart from values
 * ```ts
 * import { ErrorResult } from "@chopsticks/chopsticks";
 * const failure = new ErrorResult("web1", new RangeError("out of range"));
 * console.log(failure.host, failure.name, failure.message); // web1 RangeError out of range
 * console.log(failure instanceof ErrorResult); // true
 * ```
 */
export class ErrorResult {
  /** The host that failed. */
  readonly host: string;
  /** The error's name, e.g. `"RemoteError"`, `"ConnectError"`. */
  readonly name: string;
  /** The error's message. */
  readonly message: string;
  /** The remote error's name, e.g. `"NotFound"`, when the remote threw. */
  readonly remoteName: string | undefined;
  /** The remote stack trace, when the remote threw. */
  readonly remoteStack: string | undefined;
  /** The original error. */
  readonly cause: unknown;

  /**
   * Wraps `error`, thrown for `host`.
   *
   * @param host The host the error belongs to.
   * @param error What was thrown; need not be an `Error`.
   */
  constructor(host: string, error: unknown) {
    this.host = host;
    this.cause = error;
    if (error instanceof Error) {
      this.name = error.name;
      this.message = error.message;
    } else {
      this.name = "Error";
      this.message = String(error);
    }
    const remote = error as { remoteName?: unknown; remoteStack?: unknown };
    this.remoteName = typeof remote?.remoteName === "string"
      ? remote.remoteName
      : undefined;
    this.remoteStack = typeof remote?.remoteStack === "string"
      ? remote.remoteStack
      : undefined;
  }

  /**
   * The error itself, to rethrow.
   *
   * @returns `cause` when it is an `Error`, or a new `Error` with the message.
   */
  toError(): Error {
    return this.cause instanceof Error
      ? this.cause
      : new Error(this.message, { cause: this.cause });
  }

  /**
   * `"Name: message"`, with the remote name when there is one.
   *
   * @returns A one-line description.
   */
  toString(): string {
    const name = this.remoteName ?? this.name;
    return `${name}: ${this.message}`;
  }

  /**
   * A plain object for `JSON.stringify`.
   *
   * @returns The host, names, message and remote stack.
   */
  toJSON(): ErrorResultJson {
    const json: ErrorResultJson = {
      host: this.host,
      name: this.name,
      message: this.message,
    };
    if (this.remoteName !== undefined) json.remoteName = this.remoteName;
    if (this.remoteStack !== undefined) json.remoteStack = this.remoteStack;
    return json;
  }
}
