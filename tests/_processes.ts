/**
 * Process checks for tests: whether a pid still runs, waiting for pids to
 * be gone, the CPU time a process used, the processes below this one, and
 * what a pending promise does once a process is killed.
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

/** Each process's pid and the fields of /proc/<pid>/stat after its name. */
function* processes(): Generator<
  { pid: number; comm: string; rest: string[] }
> {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      yield {
        pid: Number(entry.name),
        comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        rest: stat.slice(stat.lastIndexOf(")") + 2).split(" "),
      };
    } catch {
      // It has exited.
    }
  }
}

/** The parent of `pid`. */
export function parentOf(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** CPU time `pid` used so far (all its threads, user and system), in ms. */
export function cpuMs(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime, in clock ticks of 1/100 s.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * The running processes below `root` (this process by default), whoever
 * they run as, with their commands: parents before their children.
 */
export function descendants(
  root = Deno.pid,
): { pid: number; comm: string }[] {
  const all = [...processes()];
  const found: { pid: number; comm: string }[] = [];
  const parents = [root];
  while (parents.length > 0) {
    const parent = parents.shift()!;
    for (const { pid, comm, rest } of all) {
      if (Number(rest[1]) !== parent) continue;
      parents.push(pid);
      if (rest[0] !== "Z") found.push({ pid, comm });
    }
  }
  return found;
}

/** The pids of this process's children running `command`. */
export function children(command: string): number[] {
  const found: number[] = [];
  for (const { pid, comm, rest } of processes()) {
    if (Number(rest[1]) === Deno.pid && comm === command) found.push(pid);
  }
  return found;
}

/** `pid: command line` of the processes whose environment holds `mark`. */
export function marked(mark: string): string[] {
  const found: string[] = [];
  for (const { pid } of processes()) {
    try {
      if (!Deno.readTextFileSync(`/proc/${pid}/environ`).includes(mark)) {
        continue;
      }
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
      found.push(`${pid}: ${cmdline.replaceAll("\0", " ").trim()}`);
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/**
 * Kills `pid` with SIGKILL, then waits at most `ms` for `pending` to
 * settle. Returns what it settled with ("still pending" when it did not)
 * and how long that took after the kill.
 */
export async function afterKill(
  pid: number,
  pending: Promise<unknown>,
  ms = 5_000,
): Promise<{ outcome: unknown; took: number }> {
  const start = performance.now();
  Deno.kill(pid, "SIGKILL");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const outcome = await Promise.race([
    pending,
    new Promise((r) => timer = setTimeout(() => r("still pending"), ms)),
  ]);
  clearTimeout(timer);
  return { outcome, took: performance.now() - start };
}
