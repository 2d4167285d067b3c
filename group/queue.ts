/**
 * A queue of operations: in order on each host, in parallel across hosts.
 *
 * @module
 */
import type {
  AnyFunction,
  BaseTunnel,
  FetchResult,
  PutOptions,
  PutResult,
  TransferOptions,
} from "../tunnel/base_tunnel.ts";
import { AsyncResult } from "./async_result.ts";
import type { ErrorResult } from "./error_result.ts";
import { Group } from "./group.ts";
import { GroupResult } from "./group_result.ts";
import { checkConcurrency, type Limiter, limiter } from "./_limiter.ts";
import { attempt } from "./_attempt.ts";
import { bounded } from "./_bounded.ts";
import { fetchPaths } from "./_fetch_paths.ts";
import {
  checkMilliseconds,
  checkMode,
  showValue,
} from "../tunnel/_option_checks.ts";

/** Options of a queue. */
export interface QueueOptions {
  /** At most this many operations (so hosts) at once. Default: no limit. */
  concurrency?: number;
  /**
   * Time limit of each operation, in milliseconds, from 0 to
   * 2,147,483,647: a call past it is cancelled on the agent, a transfer
   * stopped. Default: none.
   */
  timeout?: number;
}

type Job = () => Promise<void>;

/**
 * Operations queued per host and run by `await queue.run()`: those on one
 * host run one after another in the order queued, different hosts run in
 * parallel. Each operation gives an {@linkcode AsyncResult} at once; it is
 * set when the operation ends, to its value or to an `ErrorResult` (errors
 * are never thrown by `run()`). A callback may queue more work while the
 * queue runs, and `run()` waits for it too. On a {@linkcode Group}, an
 * operation is queued on each of its hosts and its result is a
 * `GroupResult`. A target that is neither a tunnel nor a group is refused
 * with a TypeError. A tunnel whose connection failed is skipped, as by
 * groups: its later operations get that `ErrorResult` at once, until it
 * connects again (`tun.connect()`, or a group's `connect()`).
 *
 * @example Deploying in steps, in parallel across hosts
 * ```ts
 * import { Local, Queue } from "@chopsticks/chopsticks";
 * await using web1 = new Local("web1");
 * await using web2 = new Local("web2");
 * const queue = new Queue();
 * for (const tun of [web1, web2]) {
 *   queue.call(tun, Deno.hostname).withCallback((name) => {
 *     queue.call(tun, Date.now).withCallback((now) => console.log(name, now));
 *   });
 * }
 * await queue.run();
 * ```
 */
export class Queue implements AsyncDisposable {
  #queues = new Map<BaseTunnel, Job[]>();
  #workers = new Map<BaseTunnel, Promise<void>>();
  #running: Promise<void> | undefined;
  #limit: Limiter;
  #timeout: number | undefined;
  #callbackErrors: unknown[] = [];
  /** Aborts when the queue is closed; each operation queued holds it. */
  #closing = new AbortController();

  /**
   * Makes an empty queue.
   *
   * @param options Concurrency and a time limit per operation.
   */
  constructor(options: QueueOptions = {}) {
    this.#limit = limiter(checkConcurrency(options.concurrency));
    this.#timeout = checkMilliseconds("timeout", options.timeout);
  }

  /**
   * Queues `fn(...args)` on a host.
   *
   * @returns The result: the value or an `ErrorResult`.
   */
  call<F extends AnyFunction>(
    target: BaseTunnel,
    fn: F,
    ...args: Parameters<F>
  ): AsyncResult<Awaited<ReturnType<F>> | ErrorResult>;
  /**
   * Queues `fn(...args)` on every host of a group.
   *
   * @returns The group's result, set when every host is done.
   */
  call<F extends AnyFunction>(
    target: Group,
    fn: F,
    ...args: Parameters<F>
  ): AsyncResult<GroupResult<Awaited<ReturnType<F>>>>;
  call<F extends AnyFunction>(
    target: BaseTunnel | Group,
    fn: F,
    ...args: Parameters<F>
    // deno-lint-ignore no-explicit-any
  ): AsyncResult<any> {
    const timeout = this.#timeout;
    const signal = this.#closing.signal;
    return this.#queue(target, (tunnel) => ({
      op: () => tunnel.callWith({ timeout, signal }, fn, ...args),
    }));
  }

  /**
   * Queues copying a local file to a host.
   *
   * @returns What was written, or an `ErrorResult`.
   */
  put(
    target: BaseTunnel,
    localPath: string,
    remotePath?: string,
    options?: PutOptions,
  ): AsyncResult<PutResult | ErrorResult>;
  /**
   * Queues copying a local file to every host of a group.
   *
   * @returns The group's result, set when every host is done.
   */
  put(
    target: Group,
    localPath: string,
    remotePath?: string,
    options?: PutOptions,
  ): AsyncResult<GroupResult<PutResult>>;
  put(
    target: BaseTunnel | Group,
    localPath: string,
    remotePath?: string,
    options: PutOptions = {},
    // deno-lint-ignore no-explicit-any
  ): AsyncResult<any> {
    checkMode(options.mode);
    const signal = this.#stopping(options.signal);
    return this.#queue(target, (tunnel) => ({
      op: () =>
        bounded(
          tunnel,
          `Put of "${localPath}"`,
          { timeout: this.#timeout, signal },
          (signal) => tunnel.put(localPath, remotePath, { ...options, signal }),
        ),
    }));
  }

  /**
   * Queues copying a file from a host to this machine; `{host}` in
   * `localPath` becomes the host's name, as for a group.
   *
   * @returns What was written, or an `ErrorResult`.
   */
  fetch(
    target: BaseTunnel,
    remotePath: string,
    localPath?: string,
    options?: TransferOptions,
  ): AsyncResult<FetchResult | ErrorResult>;
  /**
   * Queues copying a file from every host of a group to this machine.
   * `localTemplate` has `{host}`; it is checked at once: two hosts mapping
   * to one file are refused with a TypeError before anything runs.
   *
   * @returns The group's result, set when every host is done.
   */
  fetch(
    target: Group,
    remotePath: string,
    localTemplate: string,
    options?: TransferOptions,
  ): AsyncResult<GroupResult<FetchResult>>;
  fetch(
    target: BaseTunnel | Group,
    remotePath: string,
    localPath?: string,
    options: TransferOptions = {},
    // deno-lint-ignore no-explicit-any
  ): AsyncResult<any> {
    checkTarget(target);
    // `{host}` is the host's name on a tunnel too: queued per host in a
    // loop, each one wrote a file named "{host}" over the last.
    const paths = target instanceof Group
      ? fetchPaths(localPath ?? "", target.hosts, remotePath)
      : localPath?.includes("{host}")
      ? fetchPaths(localPath, [(target as BaseTunnel).host], remotePath)
      : undefined;
    const signal = this.#stopping(options.signal);
    return this.#queue(target, (tunnel) => ({
      op: () =>
        bounded(
          tunnel,
          `Fetch of "${remotePath}"`,
          { timeout: this.#timeout, signal },
          (signal) =>
            tunnel.fetch(
              remotePath,
              paths ? paths.get(tunnel.host) : localPath,
              { signal },
            ),
        ),
    }));
  }

  /**
   * Runs everything queued, and everything queued while it runs, until
   * every host's queue is empty. Failed operations set `ErrorResult`
   * values; this only rejects, once all work is done, when a callback
   * threw (with that error).
   */
  run(): Promise<void> {
    return this.#running ??= this.#runAll().finally(() => {
      this.#running = undefined;
      // Closed: what was queued until now (callbacks included) has failed;
      // what comes next runs.
      if (this.#closing.signal.aborted) this.#closing = new AbortController();
    });
  }

  /**
   * Stops the queue: operations not started yet, and those queued until it
   * resolves (by a callback too), fail without starting anything (their
   * result is an `ErrorResult` whose cause says the queue was closed);
   * those under way are stopped as by their signal (a call is cancelled on
   * the agent, a transfer stopped, nothing lands later); and `run()`
   * settles. Resolves once it has (and rejects as `run()` does when a
   * callback threw). Tunnels are left open; the queue takes new operations
   * afterwards.
   *
   * @example Stop a deployment that takes too long
   * ```ts
   * import { Local, Queue } from "@chopsticks/chopsticks";
   * await using web1 = new Local("web1");
   * await using queue = new Queue();
   * queue.call(web1, Deno.hostname);
   * const timer = setTimeout(() => queue.close(), 60_000);
   * await queue.run();
   * clearTimeout(timer);
   * ```
   */
  async close(): Promise<void> {
    // Work queued until run() settles, by a callback too, fails at once: a
    // callback that queues again (polling, retrying) cannot keep it going.
    this.#closing.abort(new Error("The queue was closed"));
    await this.run();
  }

  /** Closes the queue: `await using queue = new Queue()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** The signal an operation queued now runs under: its own and close(). */
  #stopping(own: AbortSignal | undefined): AbortSignal {
    const closing = this.#closing.signal;
    return own ? AbortSignal.any([own, closing]) : closing;
  }

  async #runAll(): Promise<void> {
    this.#callbackErrors = [];
    for (const tunnel of this.#queues.keys()) this.#startWorker(tunnel);
    while (this.#workers.size) await Promise.all(this.#workers.values());
    const errors = this.#callbackErrors;
    if (errors.length === 1) throw errors[0];
    if (errors.length) {
      throw new AggregateError(errors, "Callbacks of queued operations threw");
    }
  }

  #queue(
    target: BaseTunnel | Group,
    make: (tunnel: BaseTunnel) => { op: () => Promise<unknown> },
    // deno-lint-ignore no-explicit-any
  ): AsyncResult<any> {
    checkTarget(target);
    if (!(target instanceof Group)) {
      return this.#queueOne(target, make(target).op, () => {});
    }
    const tunnels = target.tunnels;
    let setGroup!: (value: GroupResult<unknown>) => void;
    const result = new AsyncResult<GroupResult<unknown>>((s) => setGroup = s);
    const values = new Array<unknown>(tunnels.length);
    let left = tunnels.length;
    const finish = () =>
      setGroup(new GroupResult(tunnels.map((t, i) => [t.host, values[i]])));
    if (left === 0) finish();
    tunnels.forEach((tunnel, i) => {
      this.#queueOne(tunnel, make(tunnel).op, (value) => {
        values[i] = value;
        if (--left === 0) finish();
      });
    });
    return result;
  }

  #queueOne(
    tunnel: BaseTunnel,
    op: () => Promise<unknown>,
    after: (value: unknown) => void,
    // deno-lint-ignore no-explicit-any
  ): AsyncResult<any> {
    let set!: (value: unknown) => void;
    const result = new AsyncResult<unknown>((s) => set = s);
    const job = async () => {
      const value = await attempt(tunnel, () => this.#limit(op));
      for (const fn of [() => set(value), () => after(value)]) {
        try {
          fn();
        } catch (e) {
          this.#callbackErrors.push(e);
        }
      }
    };
    const jobs = this.#queues.get(tunnel);
    if (jobs) jobs.push(job);
    else this.#queues.set(tunnel, [job]);
    if (this.#running) this.#startWorker(tunnel);
    return result;
  }

  #startWorker(tunnel: BaseTunnel): void {
    if (this.#workers.has(tunnel)) return;
    const jobs = this.#queues.get(tunnel)!;
    const worker = Promise.resolve().then(async () => {
      while (jobs.length) await jobs.shift()!();
      this.#workers.delete(tunnel);
      this.#queues.delete(tunnel);
    });
    this.#workers.set(tunnel, worker);
  }
}

/**
 * Refuses a target that is neither a tunnel nor a group (a host name: a
 * queue does not make tunnels), before anything is queued.
 */
function checkTarget(target: unknown): void {
  if (target instanceof Group) return;
  const t = target as Partial<BaseTunnel> | null | undefined;
  if (typeof t?.host === "string" && typeof t.callWith === "function") return;
  const hint = typeof target === "string"
    ? `, such as new Tunnel(${showValue(target)})`
    : "";
  throw new TypeError(
    `Cannot queue an operation on ${
      showValue(target)
    }: expected a tunnel or a Group${hint}`,
  );
}
