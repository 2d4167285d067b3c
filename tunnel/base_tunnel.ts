/**
 * The tunnel every transport shares: lazy connection, typed calls, and the
 * lifecycle. A transport only says how to start the agent script.
 *
 * @module
 */
import { locateFunction } from "../modules/_function_ref.ts";
import { type CallOptions, Connection, type SpawnSpec } from "./_connection.ts";
import { type OutputSink, prefixToStderr } from "./_output.ts";
import type { Permissions, PermissionValue } from "./_permissions.ts";

export type {
  CallOptions,
  OutputSink,
  Permissions,
  PermissionValue,
  SpawnSpec,
};

/** Options every tunnel takes. */
export interface TunnelOptions {
  /**
   * The Deno permissions of the agent. Default: all of them, as a remote
   * shell would have. Give a set (`{ read: ["/etc"], net: false }`) to
   * narrow it; keys left out are denied.
   */
  permissions?: Permissions;
  /** The deno binary on the target. Default: `"deno"` (found on PATH). */
  deno?: string;
  /** Milliseconds to wait for the agent to start. Default: 30,000. */
  connectTimeout?: number;
  /** Default time limit of each call, in milliseconds. Default: none. */
  callTimeout?: number;
  /** Environment variables set for the agent. */
  env?: Record<string, string>;
  /** Working directory of the agent. Default: the transport's. */
  cwd?: string;
  /**
   * Receives each line the agent prints (stdout and stderr of the remote
   * code and its children). Default: `[host] line` on stderr.
   */
  output?: OutputSink;
}

/** Any function a tunnel can call. */
// deno-lint-ignore no-explicit-any
export type AnyFunction = (...args: any[]) => any;

/**
 * The base of every tunnel. Subclasses implement {@linkcode spawnSpec}.
 *
 * @example A custom transport
 * ```ts
 * import { BaseTunnel, type SpawnSpec } from "@chopsticks/chopsticks";
 * class Nice extends BaseTunnel {
 *   protected spawnSpec(script: string): SpawnSpec {
 *     return { command: "nice", args: ["sh", "-c", script] };
 *   }
 * }
 * await using tun = new Nice("nice-local");
 * console.log(await tun.call(Date.now));
 * ```
 */
export abstract class BaseTunnel implements AsyncDisposable {
  /** The host name shown in output and errors. */
  readonly host: string;
  #options: TunnelOptions;
  #connection: Connection | undefined;
  #connecting: Promise<Connection> | undefined;

  /** Makes a tunnel; nothing starts until the first call or `connect()`. */
  constructor(host: string, options: TunnelOptions = {}) {
    if (typeof host !== "string" || host === "") {
      throw new TypeError("Cannot make a tunnel: the host name is empty");
    }
    this.host = host;
    this.#options = { ...options };
  }

  /** How to start the agent script `script` (a POSIX shell script). */
  protected abstract spawnSpec(script: string): SpawnSpec;

  /** A hint shown when connecting fails. */
  protected get connectHint(): string {
    return "check that deno is installed on the target";
  }

  /** True while an agent is running and taking calls. */
  get connected(): boolean {
    return this.#connection?.open ?? false;
  }

  /** Starts the agent now (calls do this on their own when needed). */
  async connect(): Promise<void> {
    await this.#connect();
  }

  #connect(): Promise<Connection> {
    if (this.#connection?.open) return Promise.resolve(this.#connection);
    return this.#connecting ??= Connection.open({
      host: this.host,
      spawn: (script) => this.spawnSpec(script),
      deno: this.#options.deno ?? "deno",
      permissions: this.#options.permissions,
      env: this.#options.env,
      cwd: this.#options.cwd,
      connectTimeout: this.#options.connectTimeout ?? 30_000,
      output: this.#options.output ?? prefixToStderr,
      hint: this.connectHint,
    }).then(
      (connection) => {
        this.#connection = connection;
        this.#connecting = undefined;
        return connection;
      },
      (error) => {
        this.#connecting = undefined;
        throw error;
      },
    );
  }

  /**
   * Runs `fn(...args)` on the target and resolves to its result. `fn` must
   * be exported from a module of this program, or be a built-in such as
   * `Date.now`. Arguments and results are copied (see the README for the
   * types that can be sent).
   *
   * @example
   * ```ts
   * import { Local } from "@chopsticks/chopsticks";
   * await using tun = new Local();
   * const now: number = await tun.call(Date.now);
   * ```
   */
  call<F extends AnyFunction>(
    fn: F,
    ...args: Parameters<F>
  ): Promise<Awaited<ReturnType<F>>> {
    return this.callWith({}, fn, ...args);
  }

  /**
   * Like {@linkcode call}, with a time limit or an abort signal for this
   * call. A call that times out or is aborted rejects at once, and the
   * agent is told to drop it.
   *
   * @example
   * ```ts
   * import { Local } from "@chopsticks/chopsticks";
   * await using tun = new Local();
   * await tun.callWith({ timeout: 5_000 }, Deno.hostname);
   * ```
   */
  async callWith<F extends AnyFunction>(
    options: CallOptions,
    fn: F,
    ...args: Parameters<F>
  ): Promise<Awaited<ReturnType<F>>> {
    const located = locateFunction(fn);
    const connection = this.#connect();
    const target = await located;
    const timeout = options.timeout ?? this.#options.callTimeout;
    return await (await connection).call(target, args, {
      signal: options.signal,
      timeout,
    }) as Awaited<ReturnType<F>>;
  }

  /** Stops the agent. A later call starts a fresh one. */
  async close(): Promise<void> {
    const connecting = this.#connecting;
    const connection = this.#connection;
    this.#connection = undefined;
    await connection?.close();
    if (connecting) {
      await connecting.then((c) => c.close(), () => {});
    }
  }

  /** Closes the tunnel: `await using tun = new Local()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
