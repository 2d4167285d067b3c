/**
 * Options of groups and their operations, and the progress events.
 *
 * @module
 */
import type { BaseTunnel } from "../tunnel/base_tunnel.ts";
import type { ErrorResult } from "./error_result.ts";

/**
 * What happens on one host during a group operation, for progress display:
 * `running` when it starts, then `ok` or `failed` (a skipped unreachable
 * host gives only `failed`).
 */
export type HostEvent =
  | { host: string; state: "running" }
  | { host: string; state: "ok"; value: unknown }
  | { host: string; state: "failed"; error: ErrorResult };

/** Options of one group operation. */
export interface RunOptions {
  /** At most this many hosts at once. Default: the group's, or no limit. */
  concurrency?: number;
  /**
   * Time limit of each host's operation, in milliseconds, from 0 to
   * 2,147,483,647 (connecting is bounded by the tunnel's `connectTimeout`
   * instead). A call past it is
   * cancelled on the agent; a transfer is stopped and its partial file
   * removed. Default: the group's.
   */
  timeout?: number;
  /** Aborts every host's operation, as `timeout` does. */
  signal?: AbortSignal;
  /**
   * Told when a host starts, succeeds or fails. Default: the group's. An
   * error it throws stops nothing: every host runs to its end, then the
   * operation rejects with that error (an AggregateError when it threw
   * more than once).
   */
  onHost?: (event: HostEvent) => void;
}

/** Options of a group: defaults for its operations, and the tunnel maker. */
export interface GroupOptions extends Omit<RunOptions, "signal"> {
  /** Makes the tunnel for a host given by name. Default: an SSH `Tunnel`. */
  tunnel?: (host: string) => BaseTunnel;
}

/** Options of `Group.filter()`. */
export interface FilterOptions extends RunOptions {
  /** Keep the hosts where the predicate returned falsy instead. */
  exclude?: boolean;
}
