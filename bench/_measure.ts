/**
 * Small helpers for the benchmarks: medians of repeated timings, and
 * running a baseline command.
 *
 * @module
 */

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Runs `fn` `times` times and returns the median wall time in ms. */
export async function medianMs(
  times: number,
  fn: () => Promise<unknown>,
): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

/** Runs `command` quietly; throws with its stderr when it fails. */
export async function run(command: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${command} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}
