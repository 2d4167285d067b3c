/**
 * A time limit and an abort signal around a file transfer: both stop the
 * transfer itself, not only the wait for it.
 *
 * @module
 */
import { TimeoutError } from "../errors.ts";

/**
 * Runs `op` with a signal that aborts after `timeout` ms (with a
 * TimeoutError that names `host` and `what`) or when `options.signal`
 * aborts (with its reason); settles like `op`'s promise, or with that
 * reason as soon as the signal aborts.
 */
export function bounded<T>(
  op: (signal?: AbortSignal) => Promise<T>,
  host: string,
  what: string,
  options: { timeout?: number; signal?: AbortSignal },
): Promise<T> {
  const { timeout, signal } = options;
  if (timeout === undefined && !signal) return op();
  const limit = new AbortController();
  const timer = timeout === undefined ? undefined : setTimeout(
    () =>
      limit.abort(
        new TimeoutError(host, `${what} timed out after ${timeout} ms`),
      ),
    timeout,
  );
  const onAbort = () => limit.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted) onAbort();
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(limit.signal.reason);
    limit.signal.addEventListener("abort", stop, { once: true });
    if (limit.signal.aborted) stop();
    else {
      op(limit.signal).then(resolve, reject).finally(() => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        limit.signal.removeEventListener("abort", stop);
      });
    }
  });
}
