/**
 * What happened on one host, as the CLI reports it.
 *
 * @module
 */
import type { ErrorResult } from "../group/error_result.ts";

/** One host's outcome. */
export type Outcome =
  | { host: string; ok: true; value: unknown; ms: number }
  | { host: string; ok: false; error: ErrorResult; ms: number };

/** Counts for the progress line. */
export interface Counts {
  /** Hosts in the group. */
  total: number;
  /** Hosts that succeeded. */
  ok: number;
  /** Hosts that failed. */
  failed: number;
  /** Hosts running now. */
  running: number;
}
