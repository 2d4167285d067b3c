/**
 * One operation on one host, as groups and queues run it: skipped with its
 * kept `ErrorResult` when the host could not connect before, and any error
 * turned into an `ErrorResult` (a connection failure is kept).
 *
 * @module
 */
import type { BaseTunnel } from "../tunnel/base_tunnel.ts";
import { ErrorResult } from "./error_result.ts";
import {
  forget,
  isConnectFailure,
  markUnreachable,
  unreachable,
} from "./_reachability.ts";

export { forget, unreachable };

/** The result of `op`, or an `ErrorResult`; never rejects. */
export async function attempt<T>(
  tunnel: BaseTunnel,
  op: () => Promise<T>,
  onStart: () => void = () => {},
): Promise<T | ErrorResult> {
  const known = unreachable(tunnel);
  if (known) return known;
  try {
    onStart();
    return await op();
  } catch (e) {
    const error = new ErrorResult(tunnel.host, e);
    if (isConnectFailure(e)) markUnreachable(tunnel, error);
    return error;
  }
}
