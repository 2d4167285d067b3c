/**
 * The result of an operation on every host of a group.
 *
 * @module
 */
import { ErrorResult } from "./error_result.ts";
import { GroupError } from "./group_error.ts";

/**
 * Per-host results of a group operation, in the group's order. Each value
 * is the host's result, or an {@linkcode ErrorResult} where it failed.
 * Iterating gives `[host, value]` pairs.
 *
 * @example Looking at the results of a group call
 * ```ts
 * import { ErrorResult, GroupResult } from "@chopsticks/chopsticks";
 * const result = new GroupResult<number>([
 *   ["web1", 1],
 *   ["web2", new ErrorResult("web2", new Error("no route to host"))],
 * ]);
 * console.log(result.ok); // false
 * console.log(result.successful()); // [["web1", 1]]
 * for (const [host, failure] of result.failures()) console.log(host, failure.message);
 * console.log(result.get("web1")); // 1
 * ```
 */
export class GroupResult<T> implements Iterable<[string, T | ErrorResult]> {
  #entries: [string, T | ErrorResult][];
  #index: Map<string, T | ErrorResult>;

  /**
   * Builds a result from `[host, value]` pairs (host names are unique).
   *
   * @param entries The per-host values, in order.
   */
  constructor(entries: Iterable<[string, T | ErrorResult]> = []) {
    this.#entries = [...entries].map(([host, value]) => [host, value]);
    this.#index = new Map(this.#entries);
    if (this.#index.size !== this.#entries.length) {
      const seen = new Set<string>();
      const dup = this.#entries.find(([h]) => seen.has(h) || !seen.add(h));
      throw new TypeError(
        `Cannot build a group result: host "${dup?.[0]}" appears twice`,
      );
    }
  }

  /** True when no host failed (also for an empty result). */
  get ok(): boolean {
    return this.#entries.every(([, v]) => !(v instanceof ErrorResult));
  }

  /** How many hosts there are. */
  get size(): number {
    return this.#entries.length;
  }

  /** The host names, in order. */
  get hosts(): string[] {
    return this.#entries.map(([host]) => host);
  }

  /**
   * The value of one host.
   *
   * @param host A host name.
   * @returns Its value or `ErrorResult`, or `undefined` when not in the result.
   */
  get(host: string): T | ErrorResult | undefined {
    return this.#index.get(host);
  }

  /**
   * The hosts that succeeded, with their values.
   *
   * @returns `[host, value]` pairs in the group's order.
   */
  successful(): [string, T][] {
    return this.#entries.filter((e): e is [string, T] =>
      !(e[1] instanceof ErrorResult)
    );
  }

  /**
   * The hosts that failed, with their errors.
   *
   * @returns `[host, ErrorResult]` pairs in the group's order.
   */
  failures(): [string, ErrorResult][] {
    return this.#entries.filter((e): e is [string, ErrorResult] =>
      e[1] instanceof ErrorResult
    );
  }

  /**
   * Throws a {@linkcode GroupError} naming every failed host and its
   * message, if any host failed.
   *
   * @returns This result, when every host succeeded.
   * @throws {GroupError} When at least one host failed.
   */
  raiseFailures(): this {
    const failures = this.failures();
    if (failures.length) throw new GroupError(failures, this.size);
    return this;
  }

  /**
   * The values of the hosts that succeeded, when all did.
   *
   * @returns A map from host to value, in the group's order.
   * @throws {GroupError} When at least one host failed.
   */
  values(): Map<string, T> {
    return new Map(this.raiseFailures().successful());
  }

  /** Iterates over `[host, value]` pairs in the group's order. */
  [Symbol.iterator](): Iterator<[string, T | ErrorResult]> {
    return this.#entries[Symbol.iterator]();
  }

  /**
   * A plain object for `JSON.stringify`: host to value (an `ErrorResult`
   * becomes its JSON form).
   *
   * @returns The entries as an object.
   */
  toJSON(): Record<string, unknown> {
    return Object.fromEntries(this.#entries);
  }
}
