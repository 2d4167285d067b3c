/**
 * A time limit and an abort signal around a file transfer on one host:
 * both stop the transfer itself, not only the wait for it.
 *
 * @module
 */
import { TimeoutError } from "../errors.ts";
import type { BaseTunnel } from "../tunnel/base_tunnel.ts";
import { unlessAborted } from "../tunnel/_transfer.ts";

/**
 * Connects `tunnel` (bounded by its `connectTimeout`, as a call's connect
 * is), then runs `op` with a signal that aborts after `timeout` ms (with a
 * TimeoutError that names the host and `what`) or when `options.signal`
 * aborts (with its reason). Settles like `op`: a transfer stops promptly
 * when its signal aborts, and one whose last byte was already sent
 * reports what really happened, so a result never says a file that landed
 * did not.
 */
export async function bounded<T>(
  tunnel: BaseTunnel,
  what: string,
  options: { timeout?: number; signal?: AbortSignal },
  op: (signal?: AbortSignal) => Promise<T>,
): Promise<T> {
  const { timeout, signal } = options;
  await unlessAborted(() => tunnel.connect(), signal);
  if (timeout === undefined && !signal) return await op();
  const limit = new AbortController();
  const timer = timeout === undefined ? undefined : setTimeout(
    () =>
      limit.abort(
        new TimeoutError(
          tunnel.host,
          `${what} timed out after ${timeout} ms`,
        ),
      ),
    timeout,
  );
  const onAbort = () => limit.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    if (signal?.aborted) onAbort();
    return await op(limit.signal);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
