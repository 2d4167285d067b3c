/**
 * A group of hosts: one operation on all of them, in parallel.
 *
 * @module
 */
import type {
  AnyFunction,
  BaseTunnel,
  FetchResult,
  PutOptions,
  PutResult,
  TreeResult,
} from "../tunnel/base_tunnel.ts";
import { ErrorResult } from "./error_result.ts";
import type { GroupResult } from "./group_result.ts";
import { checkConcurrency } from "./_limiter.ts";
import {
  checkKind,
  checkMilliseconds,
  checkMode,
  showValue,
} from "../tunnel/_option_checks.ts";
import { forget, unreachable } from "./_attempt.ts";
import { runOnHosts } from "./_run_on_hosts.ts";
import type { FilterOptions, GroupOptions, RunOptions } from "./run_options.ts";
import { bounded } from "./_bounded.ts";
import { unlessAborted } from "../tunnel/_transfer.ts";
import { fetchPaths } from "./_fetch_paths.ts";
import { sshTunnel } from "./_ssh.ts";
import { locateFunction } from "../modules/_function_ref.ts";

/** A group, or a tunnel as a one-host group. */
export type HostSet = Group | BaseTunnel;

/**
 * Many hosts at once. `call`, `put` and `fetch` run on every host in
 * parallel and resolve to a {@linkcode GroupResult} in the group's order;
 * a host that fails gives an {@linkcode ErrorResult} instead of throwing. A
 * host whose connection failed is skipped by later operations (keeping its
 * `ErrorResult`) until `connect()` is called again. Groups made from a group
 * (`filter`, set operations) share its tunnels.
 *
 * @example Calling a function on every host
 * ```ts
 * import { Group, Local } from "@chopsticks/chopsticks";
 * await using group = new Group([new Local("a"), new Local("b")]);
 * const result = await group.call(Deno.hostname);
 * for (const [host, value] of result.raiseFailures()) console.log(host, value);
 * ```
 */
export class Group implements AsyncDisposable, Iterable<BaseTunnel> {
  #tunnels: BaseTunnel[];
  #options: GroupOptions;
  /** Aborted by `close()`, for the operations under way then. */
  #closing = new AbortController();

  /**
   * Builds a group. A string is an SSH host (or what `options.tunnel`
   * makes of it); a tunnel is used as it is. Host names must be unique.
   *
   * @param hostsOrTunnels Host names, tunnels, or another group.
   * @param options Defaults for every operation, and the tunnel maker.
   * @throws {TypeError} When a host name appears twice, when
   * `hostsOrTunnels` is a single string (`["web1"]` is a group of one) or
   * not a list, or when an option is of the wrong kind.
   */
  constructor(
    // (`& object`: a single string, iterable too, is refused by the types.)
    hostsOrTunnels: Iterable<string | BaseTunnel> & object = [],
    options: GroupOptions = {},
  ) {
    checkHostList(hostsOrTunnels);
    checkConcurrency(options.concurrency);
    checkMilliseconds("timeout", options.timeout);
    checkKind("tunnel", options.tunnel, "function");
    checkKind("onHost", options.onHost, "function");
    this.#options = { ...options };
    const make = options.tunnel ?? sshTunnel;
    this.#tunnels = [...hostsOrTunnels].map((h) =>
      typeof h === "string" ? make(h) : h
    );
    const seen = new Set<string>();
    for (const tunnel of this.#tunnels) {
      if (typeof tunnel?.host !== "string") {
        throw new TypeError(
          `Cannot build a group: ${String(tunnel)} is not a host or a tunnel`,
        );
      }
      if (seen.has(tunnel.host)) {
        throw new TypeError(
          `Cannot build a group: host "${tunnel.host}" appears twice; host names must be unique`,
        );
      }
      seen.add(tunnel.host);
    }
  }

  /** The host names, in order. */
  get hosts(): string[] {
    return this.#tunnels.map((t) => t.host);
  }

  /** The tunnels, in order. */
  get tunnels(): BaseTunnel[] {
    return [...this.#tunnels];
  }

  /** How many hosts the group has. */
  get size(): number {
    return this.#tunnels.length;
  }

  /** The hosts whose connection failed, with their errors. */
  get unreachable(): Map<string, ErrorResult> {
    const out = new Map<string, ErrorResult>();
    for (const tunnel of this.#tunnels) {
      const failure = unreachable(tunnel);
      if (failure) out.set(tunnel.host, failure);
    }
    return out;
  }

  /**
   * The tunnel of one host.
   *
   * @param host A host name.
   * @returns Its tunnel, or `undefined` when not in the group.
   */
  get(host: string): BaseTunnel | undefined {
    return this.#tunnels.find((t) => t.host === host);
  }

  /** Iterates over the tunnels. */
  [Symbol.iterator](): Iterator<BaseTunnel> {
    return this.#tunnels[Symbol.iterator]();
  }

  /**
   * Connects every host (again, for hosts that failed before).
   *
   * @param options Concurrency, progress, and a signal that stops the wait
   * for every host still connecting (their connects go on, as for a call).
   * @returns `undefined` per host, or its `ErrorResult`.
   */
  connect(options: RunOptions = {}): Promise<GroupResult<void>> {
    for (const tunnel of this.#tunnels) forget(tunnel);
    return this.#run(
      (tunnel) => unlessAborted(() => tunnel.connect(), options.signal),
      options,
    );
  }

  /**
   * Runs `fn(...args)` on every host. `fn` must be exported from a module,
   * or be a built-in, as for `BaseTunnel.call`.
   *
   * @returns Each host's result, or its `ErrorResult`.
   */
  call<F extends AnyFunction>(
    fn: F,
    ...args: Parameters<F>
  ): Promise<GroupResult<Awaited<ReturnType<F>>>> {
    return this.callWith({}, fn, ...args);
  }

  /**
   * Like {@linkcode call}, with options for this call.
   *
   * @returns Each host's result, or its `ErrorResult`.
   * @throws {RangeError} When `timeout` or `concurrency` is out of range
   * (a TypeError when not a number), before any host starts.
   */
  callWith<F extends AnyFunction>(
    options: RunOptions,
    fn: F,
    ...args: Parameters<F>
  ): Promise<GroupResult<Awaited<ReturnType<F>>>> {
    const timeout = checkMilliseconds(
      "timeout",
      options.timeout ?? this.#options.timeout,
    );
    const signal = options.signal;
    return this.#run(
      (tunnel) => tunnel.callWith({ timeout, signal }, fn, ...args),
      options,
    );
  }

  /**
   * Copies a local file to every host.
   *
   * @param localPath The file on this machine.
   * @param remotePath Where to write it on each host (default: the tunnel's).
   * @param options The file mode, and options of the operation.
   * @returns What each host wrote, or its `ErrorResult`.
   * @throws {RangeError} When `mode` or `timeout` is out of range (a
   * TypeError when not a number), before any host starts.
   */
  put(
    localPath: string,
    remotePath?: string,
    options: PutOptions & RunOptions = {},
  ): Promise<GroupResult<PutResult>> {
    const mode = options.mode === undefined
      ? {}
      : { mode: checkMode(options.mode) };
    const limits = this.#limits(options);
    return this.#run(
      (tunnel) =>
        bounded(
          tunnel,
          `Put of "${localPath}"`,
          limits,
          (signal) => tunnel.put(localPath, remotePath, { ...mode, signal }),
        ),
      options,
    );
  }

  /**
   * Copies a file from every host to this machine. `{host}` in
   * `localTemplate` becomes the host's name; a template that would write
   * two hosts to one file is refused before anything is transferred.
   *
   * @param remotePath The file on each host.
   * @param localTemplate The local path, e.g. `"logs/{host}.log"`.
   * @param options Options of the operation.
   * @returns What each host's fetch wrote, or its `ErrorResult`.
   * @throws {TypeError} When two hosts map to one local path.
   */
  fetch(
    remotePath: string,
    localTemplate: string,
    options: RunOptions = {},
  ): Promise<GroupResult<FetchResult>> {
    const paths = fetchPaths(localTemplate, this.hosts, remotePath);
    const limits = this.#limits(options);
    return this.#run(
      (tunnel) =>
        bounded(
          tunnel,
          `Fetch of "${remotePath}"`,
          limits,
          (signal) =>
            tunnel.fetch(remotePath, paths.get(tunnel.host), { signal }),
        ),
      options,
    );
  }

  /**
   * Copies a local directory tree to every host in parallel, keeping modes
   * and symlinks; each host is sent only what it lacks or has different
   * (see `BaseTunnel.putTree`).
   *
   * @example
   * ```ts ignore
   * import { Group } from "@chopsticks/chopsticks";
   * await using web = new Group(["web1", "web2"]);
   * (await web.putTree("site", "/srv/site")).raiseFailures();
   * ```
   *
   * @param localDir The directory here.
   * @param remoteDir The directory on each host.
   * @param options Options of the operation.
   * @returns What each host's copy did, or its `ErrorResult`.
   */
  putTree(
    localDir: string,
    remoteDir: string,
    options: RunOptions = {},
  ): Promise<GroupResult<TreeResult>> {
    const limits = this.#limits(options);
    return this.#run(
      (tunnel) =>
        bounded(
          tunnel,
          `Tree copy of "${localDir}"`,
          limits,
          (signal) => tunnel.putTree(localDir, remoteDir, { signal }),
        ),
      options,
    );
  }

  /**
   * Copies a directory tree from every host to this machine; `{host}` in
   * `localTemplate` becomes the host's name (two hosts may not map to one
   * directory).
   *
   * @example
   * ```ts ignore
   * import { Group } from "@chopsticks/chopsticks";
   * await using web = new Group(["web1", "web2"]);
   * await web.fetchTree("/etc/nginx", "backup/{host}/nginx");
   * ```
   *
   * @param remoteDir The directory on each host.
   * @param localTemplate The local directory, e.g. `"backup/{host}"`.
   * @param options Options of the operation.
   * @returns What each host's copy did, or its `ErrorResult`.
   * @throws {TypeError} When two hosts map to one local directory.
   */
  fetchTree(
    remoteDir: string,
    localTemplate: string,
    options: RunOptions = {},
  ): Promise<GroupResult<TreeResult>> {
    const paths = fetchPaths(localTemplate, this.hosts, remoteDir);
    const limits = this.#limits(options);
    return this.#run(
      (tunnel) =>
        bounded(
          tunnel,
          `Tree fetch of "${remoteDir}"`,
          limits,
          (signal) =>
            tunnel.fetchTree(remoteDir, paths.get(tunnel.host)!, { signal }),
        ),
      options,
    );
  }

  /**
   * Runs `predicate` on every host and gives a group of the hosts where it
   * returned truthy (falsy with `exclude`). Hosts where it failed are in
   * neither.
   *
   * @param predicate An exported function, called with no arguments.
   * @param options `exclude`, and options of the call.
   * @returns A group of this group's kind, sharing its tunnels.
   * @throws {TypeError} When `predicate` cannot be called on a host (a
   * closure, a function no module exports), before any host starts: every
   * host would fail, and the group would be empty.
   */
  async filter(
    predicate: () => unknown,
    options: FilterOptions = {},
  ): Promise<this> {
    await locateFunction(predicate);
    const result = await this.callWith(options, predicate);
    const exclude = Boolean(options.exclude);
    return this.#derive(this.#tunnels.filter((tunnel) => {
      const value = result.get(tunnel.host);
      return !(value instanceof ErrorResult) && Boolean(value) !== exclude;
    }));
  }

  /**
   * The hosts of this group, then those of `other` not in it (by name).
   *
   * @returns A group of this group's kind.
   */
  union(other: HostSet): this {
    const mine = new Set(this.hosts);
    return this.#derive([
      ...this.#tunnels,
      ...tunnelsOf(other).filter((t) => !mine.has(t.host)),
    ]);
  }

  /**
   * The hosts of this group that are also in `other` (by name).
   *
   * @returns A group of this group's kind.
   */
  intersection(other: HostSet): this {
    const theirs = new Set(tunnelsOf(other).map((t) => t.host));
    return this.#derive(this.#tunnels.filter((t) => theirs.has(t.host)));
  }

  /**
   * The hosts of this group that are not in `other` (by name).
   *
   * @returns A group of this group's kind.
   */
  difference(other: HostSet): this {
    const theirs = new Set(tunnelsOf(other).map((t) => t.host));
    return this.#derive(this.#tunnels.filter((t) => !theirs.has(t.host)));
  }

  /**
   * The hosts in exactly one of the two groups (by name).
   *
   * @returns A group of this group's kind.
   */
  symmetricDifference(other: HostSet): this {
    const mine = new Set(this.hosts);
    const them = tunnelsOf(other);
    const theirs = new Set(them.map((t) => t.host));
    return this.#derive([
      ...this.#tunnels.filter((t) => !theirs.has(t.host)),
      ...them.filter((t) => !mine.has(t.host)),
    ]);
  }

  /**
   * Closes every tunnel (also those shared with other groups). Hosts of
   * this group's operations under way that have not started yet (waiting
   * for `concurrency`) do not start: they fail with a `ConnectError` of
   * stage `"closed"`. The group may be used again after.
   */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#closing = new AbortController();
    await Promise.allSettled(this.#tunnels.map((t) => t.close()));
  }

  /** Closes every tunnel: `await using group = new Group(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #derive(tunnels: BaseTunnel[]): this {
    const Kind = this.constructor as new (
      tunnels: Iterable<BaseTunnel>,
      options: GroupOptions,
    ) => this;
    return new Kind(tunnels, this.#options);
  }

  #limits(options: RunOptions): { timeout?: number; signal?: AbortSignal } {
    const timeout = checkMilliseconds(
      "timeout",
      options.timeout ?? this.#options.timeout,
    );
    return { timeout, signal: options.signal };
  }

  #run<T>(
    op: (tunnel: BaseTunnel) => Promise<T>,
    options: RunOptions,
  ): Promise<GroupResult<T>> {
    checkKind("onHost", options.onHost, "function");
    return runOnHosts(this.#tunnels, op, {
      concurrency: checkConcurrency(
        options.concurrency ?? this.#options.concurrency,
      ),
      onHost: options.onHost ?? this.#options.onHost ?? (() => {}),
      signal: options.signal,
      closed: this.#closing.signal,
    });
  }
}

/**
 * Refuses what is not a list of hosts: a single string (iterable, it would
 * make a host of each letter) or anything not iterable.
 */
function checkHostList(hosts: unknown): void {
  if (typeof hosts === "string") {
    throw new TypeError(
      `Cannot build a group from the string ${
        showValue(hosts)
      }: give a list of host names or tunnels, such as [${showValue(hosts)}]`,
    );
  }
  const iterable = typeof hosts === "object" && hosts !== null &&
    Symbol.iterator in hosts;
  if (!iterable) {
    throw new TypeError(
      `Cannot build a group from ${
        showValue(hosts)
      }: give a list of host names or tunnels, such as ["web1", "web2"]`,
    );
  }
}

function tunnelsOf(other: HostSet): BaseTunnel[] {
  return other instanceof Group ? other.tunnels : [other];
}
