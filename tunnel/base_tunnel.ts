/**
 * The tunnel every transport shares: lazy connection, typed calls, and the
 * lifecycle. A transport only says how to start the agent script.
 *
 * @module
 */
import {
  type FunctionTarget,
  locatedBefore,
  locateFunction,
} from "../modules/_function_ref.ts";
import {
  type CallOptions,
  Connection,
  type Liveness,
  type Preamble,
  type SpawnSpec,
} from "./_connection.ts";
import { type OutputSink, prefixToStderr } from "./_output.ts";
import {
  fetchFile,
  type FetchResult,
  putFile,
  type PutOptions,
  type PutResult,
  type TransferOptions,
  unlessAborted,
} from "./_transfer.ts";
import { fetchTree, putTree, type TreeResult } from "./_tree.ts";
import {
  permissionFlags,
  type Permissions,
  type PermissionValue,
} from "./_permissions.ts";
import { ConnectError, ProtocolError } from "../errors.ts";
import { loadable } from "../modules/_import_map.ts";
import { toWire } from "../wire/_codec.ts";
import { uploadDeno } from "../transports/_upload.ts";
import { checkEnv } from "./_agent_script.ts";
import {
  checkCount,
  checkKind,
  checkLiveness,
  checkMilliseconds,
  checkMode,
  checkOrigin,
} from "./_option_checks.ts";

export type {
  CallOptions,
  FetchResult,
  Liveness,
  OutputSink,
  Permissions,
  PermissionValue,
  Preamble,
  PutOptions,
  PutResult,
  SpawnSpec,
  TransferOptions,
  TreeResult,
};

/**
 * Options every tunnel takes. The constructor refuses a bad value with a
 * TypeError or RangeError that names the option.
 */
export interface TunnelOptions {
  /**
   * The Deno permissions of the agent. Default: all of them, as a remote
   * shell would have. Give a set (`{ read: ["/etc"], net: false }`) to
   * narrow it; keys left out are denied.
   */
  permissions?: Permissions;
  /**
   * The deno binary on the target: a path, or a name looked up on PATH.
   * Default: `"deno"`, looked up on PATH, then in `~/.deno/bin`,
   * `/usr/local/bin` and `/usr/bin`, then among binaries uploaded before
   * (this controller's version first). `"upload"` ships this controller's
   * own binary over the tunnel once and keeps it in a per-user cache on
   * the target (same OS and architecture only; checked).
   */
  deno?: string;
  /**
   * How deep tunnels may nest, a whole number: a tunnel opened by a
   * function running on an agent is level 2. Default: 2.
   */
  maxDepth?: number;
  /**
   * Origins (such as `"https://deno.land"`) from which agents may load
   * `https:` modules through the controller, besides those this program
   * loaded modules from itself. The npm and JSR registries' redirects may
   * lead there too (a registry that serves its tarballs from a CDN).
   */
  remoteModules?: string[];
  /**
   * The project whose modules agents may load: a module URL, or a path of
   * a file or directory in it; its root is the nearest directory up from
   * there with a `deno.json`. Default: the main module's project.
   */
  project?: string;
  /**
   * How the agent is checked for life: when nothing has come from it for
   * `interval` ms it is pinged, and after `timeout` ms of silence the
   * connection counts as lost (pending calls reject, the process is
   * killed, the next call reconnects). `false` turns this off. Default:
   * `{ interval: 15_000, timeout: 60_000 }`. A function that blocks the
   * agent's event loop for longer than `timeout` looks dead too.
   */
  liveness?: Liveness | false;
  /**
   * Milliseconds to wait for the agent to start, from 0 to 2,147,483,647
   * (about 24.8 days). Default: 30,000.
   */
  connectTimeout?: number;
  /**
   * How many more times to try connecting after a failure that may pass:
   * the transport failed (ssh could not reach the host, the connection
   * dropped), no answer within `connectTimeout` (which bounds each
   * attempt), or a garbled handshake. A refused login or host key, an
   * unknown host, a missing or unsupported deno, sudo failures, and what
   * fails on the target before the agent is ready (a `cwd` that cannot be
   * entered, a tool of the agent script missing from PATH, deno refusing
   * a bad `permissions` entry) are never retried. Each retry is announced
   * on the output. Default: 0.
   *
   * @example Three more tries, after 0.5, 1 and 2 s
   * ```ts ignore
   * import { Tunnel } from "@chopsticks/chopsticks";
   * await using tun = new Tunnel("flaky", { retries: 3, retryDelay: 500 });
   * ```
   */
  retries?: number;
  /**
   * Milliseconds before the first retry; each later one waits twice as
   * long as the one before (at most 60 s). Default: 1,000.
   */
  retryDelay?: number;
  /**
   * Default time limit of each call, in milliseconds, from 0 to
   * 2,147,483,647. Default: none.
   */
  callTimeout?: number;
  /**
   * Environment variables set for the agent, sent through the channel
   * (never in an argument); values are strings. They are set for the
   * agent script too, before it looks for deno and starts it, so a `PATH`
   * here must still lead to the script's tools (`mktemp`, `mkfifo`,
   * `mkdir`, `rm`, `setsid`, `dd`, `cat`, `sleep`). The script's own
   * variables are named `_` followed by one or two letters (`_d`, `_Dx`):
   * such names, and `IFS`, are refused with a TypeError (`D`, `_abc` and
   * `_1` are fine).
   */
  env?: Record<string, string>;
  /** Working directory of the agent. Default: the transport's. */
  cwd?: string;
  /**
   * Receives each line the agent prints (stdout and stderr of the remote
   * code and its children). Default: `[host] line` on stderr.
   */
  output?: OutputSink;
}

/** Figures about a tunnel's agent. */
export interface TunnelStats {
  /** Bytes of module source sent to the agent. */
  moduleBytes: number;
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
  #closing = new AbortController();
  /**
   * The connect under way: its promise, how many wait for it (calls and
   * `connect()`; a refused call stops waiting), and how to give it up once
   * none does (see `#callLater`).
   */
  #attempt: Attempt | undefined;

  /** Makes a tunnel; nothing starts until the first call or `connect()`. */
  constructor(host: string, options: TunnelOptions = {}) {
    if (typeof host !== "string" || host === "") {
      throw new TypeError("Cannot make a tunnel: the host name is empty");
    }
    this.host = host;
    this.#options = { ...options };
    checkCount("retries", options.retries);
    checkMilliseconds("retryDelay", options.retryDelay);
    checkMilliseconds("connectTimeout", options.connectTimeout);
    checkMilliseconds("callTimeout", options.callTimeout);
    checkCount("maxDepth", options.maxDepth);
    checkLiveness(options.liveness);
    checkEnv(options.env);
    checkKind("cwd", options.cwd, "string");
    checkKind("deno", options.deno, "string");
    checkKind("project", options.project, "string");
    checkKind("output", options.output, "function");
    checkKind("remoteModules", options.remoteModules, "strings");
    for (const origin of options.remoteModules ?? []) checkOrigin(origin);
    checkKind("permissions", options.permissions, "object");
    // The flags themselves say what is wrong in a permission.
    permissionFlags(options.permissions, {});
  }

  /** How to start the agent script `script` (a POSIX shell script). */
  protected abstract spawnSpec(script: string): SpawnSpec;

  /**
   * A hint added when connecting fails in the transport (or times out).
   * Failures of the agent script, deno and the agent have hints of their
   * own. Default: none.
   */
  protected get connectHint(): string {
    return "";
  }

  /**
   * Lets a transport explain a failed connection better, from the error's
   * stderr tail (for example, naming an authentication failure). Default:
   * the error as it is.
   */
  protected explainConnectError(error: ConnectError): ConnectError {
    return error;
  }

  /**
   * Whether a failed connection may succeed if tried again (see the
   * `retries` option). Default: the stages "transport", "timeout" and
   * "handshake". Transports narrow it further from the stderr tail (a
   * refused login is never retried).
   */
  protected retryable(error: ConnectError): boolean {
    return ["transport", "timeout", "handshake"].includes(error.stage);
  }

  /**
   * Runs after the transport process has ended on `close()` or on a failed
   * connection, to remove what it may have left (such as a container).
   * Default: nothing.
   */
  protected cleanup(): Promise<void> {
    return Promise.resolve();
  }

  /** True while an agent is running and taking calls. */
  get connected(): boolean {
    return this.#connection?.open ?? false;
  }

  /**
   * Figures of the current (or last) agent: `moduleBytes` is how many bytes
   * of module source it was sent. An agent that finds a module unchanged in
   * its cache on the target is sent none.
   *
   * @example
   * ```ts
   * import { Local } from "@chopsticks/chopsticks";
   * await using tun = new Local();
   * await tun.call(Date.now);
   * console.log(tun.stats.moduleBytes);
   * ```
   */
  get stats(): TunnelStats {
    return { moduleBytes: this.#connection?.moduleBytes ?? 0 };
  }

  /** Starts the agent now (calls do this on their own when needed). */
  async connect(): Promise<void> {
    await this.#connect();
  }

  /** `preload`: the target of the call that connects, once located. */
  #connect(preload?: Promise<FunctionTarget>): Promise<Connection> {
    if (this.#connection?.open) return Promise.resolve(this.#connection);
    const current = this.#attempt;
    if (current && !current.giveUp.signal.aborted) {
      current.waiting++;
      return current.promise;
    }
    if (current) {
      // Given up, and still ending (its process, its cleanup): a fresh
      // connect once it has, for a call whose function was located (a
      // refused one wants none), unless the tunnel was closed meanwhile.
      const closed = this.#closing.signal;
      const ended = current.promise.then(() => {}, () => {});
      return (preload ? ended.then(() => preload) : ended).then(() => {
        if (closed.aborted) throw this.#closedWhileConnecting();
        return this.#connect(preload);
      });
    }
    const giveUp = new AbortController();
    // A connection that was lost (its agent died, or the liveness check
    // gave up on it) may have left what the transport made (a container
    // still running under the name the next one takes): cleaned first.
    const lost = this.#connection;
    this.#connection = undefined;
    const promise = this.#attempts(
      AbortSignal.any([this.#closing.signal, giveUp.signal]),
      preload,
      lost,
    ).then(
      async (connection) => {
        if (giveUp.signal.aborted) {
          // Given up as it succeeded: no one waits for it. (Calls that
          // came since wait until it is gone: see above; even should a
          // transport's cleanup() throw.)
          try {
            await connection.close();
            await this.cleanup();
          } finally {
            this.#connecting = undefined;
            this.#attempt = undefined;
          }
          throw this.#closedWhileConnecting();
        }
        this.#connection = connection;
        this.#connecting = undefined;
        this.#attempt = undefined;
        return connection;
      },
      (error) => {
        this.#connecting = undefined;
        this.#attempt = undefined;
        throw error;
      },
    );
    this.#attempt = { waiting: 1, giveUp, promise };
    return this.#connecting = promise;
  }

  #closedWhileConnecting(): ConnectError {
    return new ConnectError(
      this.host,
      "closed",
      `Cannot connect to "${this.host}": the tunnel was closed while it connected`,
    );
  }

  /** Connects, retrying as the options say, until `closed` aborts. */
  async #attempts(
    closed: AbortSignal,
    preload?: Promise<FunctionTarget>,
    lost?: Connection,
  ): Promise<Connection> {
    if (lost) {
      await lost.close();
      await this.cleanup();
    }
    const retries = this.#options.retries ?? 0;
    const output = this.#options.output ?? prefixToStderr;
    for (let attempt = 0;; attempt++) {
      let error: unknown;
      try {
        return await this.#open(closed, preload);
      } catch (e) {
        await this.cleanup();
        error = e instanceof ConnectError ? this.explainConnectError(e) : e;
      }
      if (!(error instanceof ConnectError)) throw error;
      if (attempt >= retries || closed.aborted || !this.retryable(error)) {
        throw attempt === 0 ? error : new ConnectError(
          error.host,
          error.stage,
          `${error.message} (after ${attempt + 1} attempts)`,
          {
            exitCode: error.exitCode,
            stderrTail: error.stderrTail,
            cause: error.cause,
          },
        );
      }
      const delay = Math.min(
        (this.#options.retryDelay ?? 1_000) * 2 ** attempt,
        60_000,
      );
      output(
        `chopsticks: connecting failed (stage ${error.stage}), retry ${
          attempt + 1
        } of ${retries} in ${delay} ms: ${error.message}`,
        this.host,
      );
      if (!await pause(delay, closed)) throw error;
    }
  }

  async #open(
    closed: AbortSignal,
    preload?: Promise<FunctionTarget>,
  ): Promise<Connection> {
    const spawn = (script: string) => this.spawnSpec(script);
    const connectTimeout = this.#options.connectTimeout ?? 30_000;
    const output = this.#options.output ?? prefixToStderr;
    const deno = this.#options.deno === "upload"
      ? await uploadDeno(this.host, spawn, {
        connectTimeout,
        output,
        hint: this.connectHint,
        closed,
      })
      : this.#options.deno ?? "deno";
    return await Connection.open({
      host: this.host,
      spawn,
      deno,
      permissions: this.#options.permissions,
      env: this.#options.env,
      cwd: this.#options.cwd,
      connectTimeout,
      output,
      hint: this.connectHint,
      maxDepth: this.#options.maxDepth,
      remoteModules: this.#options.remoteModules,
      project: this.#options.project,
      liveness: this.#options.liveness,
      preload,
      closed,
    });
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
  callWith<F extends AnyFunction>(
    options: CallOptions,
    fn: F,
    ...args: Parameters<F>
  ): Promise<Awaited<ReturnType<F>>> {
    try {
      checkMilliseconds("timeout", options.timeout);
      return this.#callNow(options, fn, args) ??
        this.#callLater(options, fn, args);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Targets this tunnel's agents may load (see `loadable`). */
  #checked = new WeakSet<FunctionTarget>();

  /** A call that may have to locate `fn` or connect first. */
  async #callLater<F extends AnyFunction>(
    options: CallOptions,
    fn: F,
    args: unknown[],
  ): Promise<Awaited<ReturnType<F>>> {
    // Refused before an agent starts (or loads the function's module).
    options.signal?.throwIfAborted();
    const wireArgs = toWire(args, "args");
    const located = locateFunction(fn).then((target) =>
      loadable(target, this.#options.project)
    );
    const connection = this.#connect(located);
    // The connect this call waits for, if it waits for one under way.
    const attempt = this.#attempt?.promise === connection
      ? this.#attempt
      : undefined;
    // Awaited below, unless locating fails: then its failure is not news.
    connection.catch(() => {});
    const target = await located.catch((error) => {
      // Refused: nothing is sent, and this call no longer waits. A connect
      // under way that no one else waits for is given up, so that the
      // refusal (a closure, say) leaves no agent running: on a group, one
      // on every host. (A call or connect() that comes meanwhile starts a
      // fresh one once it has ended.)
      if (attempt && --attempt.waiting === 0) attempt.giveUp.abort();
      throw error;
    });
    this.#checked.add(target);
    // An abort while the agent starts rejects at once (the connect goes on
    // for the tunnel's next call).
    const conn = await unlessAborted(connection, options.signal);
    return await this.#callOn(conn, target, options, wireArgs);
  }

  /**
   * A call to a function located before on an open connection: sent at
   * once, without the turns `callWith` waits for. Undefined otherwise.
   */
  #callNow<F extends AnyFunction>(
    options: CallOptions,
    fn: F,
    args: unknown[],
  ): Promise<Awaited<ReturnType<F>>> | undefined {
    const target = locatedBefore(fn);
    const connection = this.#connection;
    if (!target || !this.#checked.has(target) || !connection?.open) {
      return undefined;
    }
    return this.#callOn(connection, target, options, toWire(args, "args"));
  }

  #callOn<R>(
    connection: Connection,
    target: FunctionTarget,
    options: CallOptions,
    wireArgs: unknown,
  ): Promise<R> {
    return connection.callWire(target, wireArgs, {
      signal: options.signal,
      timeout: options.timeout ?? this.#options.callTimeout,
    }) as Promise<R>;
  }

  /**
   * Copies the local file `localPath` to `remotePath` on the target (a
   * relative path is taken from the agent's working directory; without one,
   * a fresh file in the agent's `TMPDIR`; its directory must exist). The
   * data streams in chunks; the target writes a temporary file beside the
   * destination, checks its sha256, applies `mode` (default: the local
   * file's), syncs it to disk, and only then renames it into place, so
   * neither a failure nor a crash of the target leaves a partial file
   * there. `signal` stops the transfer (see {@linkcode TransferOptions}).
   *
   * @example
   * ```ts
   * import { Local } from "@chopsticks/chopsticks";
   * await using tun = new Local();
   * const { remotePath, sha256 } = await tun.put("deno.json", "/tmp/copy.json");
   * ```
   */
  async put(
    localPath: string,
    remotePath?: string,
    options: PutOptions = {},
  ): Promise<PutResult> {
    checkMode(options.mode);
    return await this.#transfer(
      options.signal,
      (conn) => putFile(conn, localPath, remotePath, options),
    );
  }

  /**
   * Copies `remotePath` from the target to `localPath` (default: the file's
   * name in the current directory; an existing directory receives the file
   * inside it; missing directories of the path are made), checked by
   * sha256, synced to disk and renamed into place only when whole. A failed
   * fetch never touches a file already at `localPath`. `signal` stops the
   * transfer (see {@linkcode TransferOptions}).
   *
   * @example
   * ```ts
   * import { Local } from "@chopsticks/chopsticks";
   * await using tun = new Local();
   * const { localPath, size } = await tun.fetch("/etc/hostname", "/tmp/hostname");
   * ```
   */
  async fetch(
    remotePath: string,
    localPath?: string,
    options: TransferOptions = {},
  ): Promise<FetchResult> {
    return await this.#transfer(
      options.signal,
      (conn) => fetchFile(conn, remotePath, localPath, options),
    );
  }

  /**
   * Copies the local directory tree `localDir` to `remoteDir` on the
   * target, keeping modes and symlinks (copied as links). On a second run
   * only what changed is sent: files whose size or sha256 differs. Each
   * file is written as by {@linkcode put}, so atomically. Files that exist
   * only on the target are left alone. `signal` stops the copy between or
   * within files (see {@linkcode TransferOptions}).
   *
   * @example Deploy a directory, then again after an edit
   * ```ts
   * import { Local } from "@chopsticks/chopsticks";
   * await using tun = new Local();
   * const first = await tun.putTree("examples", "/tmp/examples-copy");
   * const again = await tun.putTree("examples", "/tmp/examples-copy");
   * console.log(first.copied, again.copied); // e.g. 1 0
   * ```
   */
  async putTree(
    localDir: string,
    remoteDir: string,
    options: TransferOptions = {},
  ): Promise<TreeResult> {
    return await this.#transfer(
      options.signal,
      (conn) => putTree(conn, localDir, remoteDir, options),
    );
  }

  /**
   * Copies the directory tree `remoteDir` from the target to `localDir`,
   * keeping modes and symlinks; a second run copies only what changed.
   * Nothing is ever written outside `localDir`, whatever the target's
   * listing says. `signal` stops the copy between or within files.
   *
   * @example
   * ```ts
   * import { Local } from "@chopsticks/chopsticks";
   * await using tun = new Local();
   * const { files, copied } = await tun.fetchTree("/etc/apt", "/tmp/apt-copy");
   * ```
   */
  async fetchTree(
    remoteDir: string,
    localDir: string,
    options: TransferOptions = {},
  ): Promise<TreeResult> {
    return await this.#transfer(
      options.signal,
      (conn) => fetchTree(conn, remoteDir, localDir, options),
    );
  }

  /**
   * Runs a transfer on the connection, unless `signal` aborts first (the
   * connection is still made then). An agent that broke the protocol on
   * the way loses its connection, as it would for a call.
   */
  async #transfer<T>(
    signal: AbortSignal | undefined,
    run: (conn: Connection) => Promise<T>,
  ): Promise<T> {
    const conn = await unlessAborted(() => this.#connect(), signal);
    try {
      return await run(conn);
    } catch (error) {
      if (error instanceof ProtocolError) conn.broke(error);
      throw error;
    }
  }

  /**
   * Stops the agent (and a connection under way, with its retries). A
   * later call starts a fresh one.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#closing = new AbortController();
    const connecting = this.#connecting;
    const connection = this.#connection;
    this.#connection = undefined;
    await connection?.close();
    if (connecting) {
      await connecting.then((c) => c.close(), () => {});
    }
    await this.cleanup();
  }

  /** Closes the tunnel: `await using tun = new Local()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** A connect under way (see `BaseTunnel.#connect`). */
interface Attempt {
  promise: Promise<Connection>;
  waiting: number;
  giveUp: AbortController;
}

/** Waits `ms`; resolves to false at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (waited: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
      resolve(waited);
    };
    const stop = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", stop, { once: true });
  });
}
