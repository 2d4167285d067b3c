/**
 * A tiny module for the benchmarks to call: its load time is not what they
 * measure.
 *
 * @module
 */

/** Adds two numbers. */
export function add(a: number, b: number): number {
  return a + b;
}
