/**
 * At most N tasks at once, started in the order they asked.
 *
 * @module
 */
import { refuse } from "../tunnel/_option_checks.ts";

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
export function checkConcurrency(value: unknown): number {
  if (value === undefined) return Infinity;
  const expected = "a whole number, 1 or more, or Infinity";
  if (typeof value !== "number") refuse("concurrency", value, expected, false);
  if (value === Infinity || (Number.isInteger(value) && value > 0)) {
    return value;
  }
  refuse("concurrency", value, expected, true);
}
