/**
 * At most N tasks at once, started in the order they asked.
 *
 * @module
 */

/** Runs a task when a slot is free. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

/**
 * Makes a limiter that runs at most `max` tasks at once (`Infinity` for no
 * limit). Tasks start in the order they were handed in.
 */
export function limiter(max: number): Limiter {
  if (max === Infinity) return (task) => task();
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= max) await new Promise<void>((r) => waiting.push(r));
    else running++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/** Checks a `concurrency` option: a positive integer or `Infinity`. */
export function checkConcurrency(value: number | undefined): number {
  if (value === undefined) return Infinity;
  if (value === Infinity || (Number.isInteger(value) && value > 0)) {
    return value;
  }
  throw new RangeError(
    `Cannot use concurrency ${value}: expected a positive integer`,
  );
}

/** Checks a `timeout` option: a positive number of milliseconds. */
export function checkTimeout(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number" && value > 0) return value;
  throw new RangeError(
    `Cannot use timeout ${value}: expected a positive number of milliseconds`,
  );
}
