/**
 * A time limit and an abort signal around an operation that has neither
 * (file transfers).
 *
 * @module
 */
import { TimeoutError } from "../errors.ts";

/**
 * Settles like `promise`, or rejects with a TimeoutError after `timeout`
 * ms, or with the signal's reason when it aborts. The operation itself is
 * not stopped.
 */
export function bounded<T>(
  promise: Promise<T>,
  host: string,
  what: string,
  options: { timeout?: number; signal?: AbortSignal },
): Promise<T> {
  const { timeout, signal } = options;
  if (timeout === undefined && !signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = timeout === undefined ? undefined : setTimeout(
      () =>
        reject(
          new TimeoutError(host, `${what} timed out after ${timeout} ms`),
        ),
      timeout,
    );
    const onAbort = () => reject(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    if (signal?.aborted) onAbort();
    promise.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    });
  });
}
