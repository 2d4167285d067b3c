/**
 * Process checks for tests: whether a pid still runs, and waiting for pids
 * to be gone.
 *
 * @module
 */

/** True while `pid` runs (a zombie has ended: it does not count). */
export function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

/** Waits up to `ms` for every pid to end; true when they all have. */
export async function gone(pids: number[], ms = 2000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some(alive) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return !pids.some(alive);
}
