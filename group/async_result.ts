/**
 * A value that a {@linkcode Queue} sets later.
 *
 * @module
 */

const unset: unique symbol = Symbol("unset");

/**
 * The result of a queued operation: empty until the queue has run it. Read
 * `value` once it is set (it throws before), or pass a callback to
 * `withCallback` to act on it as soon as it is set. A failed operation sets
 * an `ErrorResult`, never throws.
 *
 * @example Acting on a queued result
 * ```ts
 * import { AsyncResult } from "@chopsticks/chopsticks";
 * let set: (value: number) => void = () => {};
 * const result = new AsyncResult<number>((s) => set = s);
 * result.withCallback((n) => console.log("got", n));
 * console.log(result.done); // false
 * set(42); // prints "got 42"
 * console.log(result.value); // 42
 * ```
 */
export class AsyncResult<T> {
  #value: T | typeof unset = unset;
  #callbacks: ((value: T) => void)[] = [];

  /**
   * Makes an empty result. `executor`, if given, is called at once with the
   * function that sets the value (once).
   *
   * @param executor Receives the setter, as with `new Promise`.
   */
  constructor(executor?: (set: (value: T) => void) => void) {
    executor?.((value) => this.#set(value));
  }

  /** True once the value is set. */
  get done(): boolean {
    return this.#value !== unset;
  }

  /**
   * The value.
   *
   * @throws {Error} When it is not set yet (run the queue first).
   */
  get value(): T {
    if (this.#value === unset) {
      throw new Error(
        "Cannot read the value of an AsyncResult: it is not set yet; await queue.run() first",
      );
    }
    return this.#value;
  }

  /**
   * Calls `callback` with the value once it is set, or at once if it is
   * set already. Callbacks run in the order they were added; a callback may
   * queue more work on the queue that is running. When callbacks throw,
   * the others still run and the setter (the queue) gets the error.
   *
   * @param callback Receives the value.
   * @returns This result, for chaining.
   */
  withCallback(callback: (value: T) => void): this {
    if (this.#value === unset) this.#callbacks.push(callback);
    else callback(this.#value);
    return this;
  }

  #set(value: T): void {
    if (this.#value !== unset) {
      throw new Error("Cannot set an AsyncResult twice");
    }
    this.#value = value;
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    const errors: unknown[] = [];
    for (const callback of callbacks) {
      try {
        callback(value);
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length) {
      throw new AggregateError(errors, "Callbacks of an AsyncResult threw");
    }
  }
}
