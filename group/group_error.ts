/**
 * The error `GroupResult.raiseFailures()` throws.
 *
 * @module
 */
import type { ErrorResult } from "./error_result.ts";

/**
 * One or more hosts of a group failed. The message names every failed host
 * and its error; `failures` has them as `[host, ErrorResult]` pairs and
 * `errors` (from `AggregateError`) the original errors.
 *
 * @example Catching the failures of a group call
 * ```ts
 * import { ErrorResult, GroupError } from "@chopsticks/chopsticks";
 * const error = new GroupError([["web1", new ErrorResult("web1", new Error("disk full"))]], 3);
 * console.log(error.message); // 1 of 3 hosts failed: web1: Error: disk full
 * console.log(error.failures.map(([host]) => host)); // ["web1"]
 * ```
 */
export class GroupError extends AggregateError {
  /** Always `"GroupError"`. */
  override name = "GroupError";
  /** The failed hosts and their errors, in the group's order. */
  readonly failures: [string, ErrorResult][];

  /**
   * Builds the error.
   *
   * @param failures The failed hosts, as `[host, ErrorResult]` pairs.
   * @param total How many hosts the operation ran on.
   */
  constructor(failures: [string, ErrorResult][], total: number) {
    const list = failures.length > 1;
    const lines = failures.map(([host, failure]) =>
      `${host}: ${
        failure.toString().replaceAll("\n", list ? "\n    " : "\n  ")
      }`
    );
    const head = `${failures.length} of ${total} ${
      total === 1 ? "host" : "hosts"
    } failed`;
    super(
      failures.map(([, failure]) => failure.toError()),
      list ? `${head}:\n  ${lines.join("\n  ")}` : `${head}: ${lines[0]}`,
    );
    this.failures = failures;
  }
}
