/**
 * Wider pipes while a file streams through the channel.
 *
 * A Linux pipe holds 64 KiB, so 256 MiB cross each pipe of the channel
 * (the agent script's stdin, the input FIFO, the output) in 4,096 pieces,
 * each a wake-up of the process on the other end. At 1 MiB a put of 256 MiB
 * over a Local tunnel went from about 410 to 570 MB/s here, a fetch from
 * about 390 to 530.
 *
 * Only Linux lets a process resize a pipe (`fcntl(F_SETPIPE_SZ)`), and Deno
 * lets code do that only through FFI: an agent granted `ffi` widens the
 * pipes it can name, and any other goes on at 64 KiB. The pipes are widened
 * when the first streamed transfer begins and narrowed again a second
 * after the last one ended: the pipes of one user share a budget
 * (`/proc/sys/fs/pipe-user-pages-soft`, 64 MiB), past which the kernel
 * gives the user's new pipes 8 KiB. Failures change nothing: a pipe that
 * cannot be resized (another user's, the budget spent, a pipe holding more
 * than 64 KiB when it is narrowed) keeps its size.
 *
 * @module
 */

/** The size of a pipe during a transfer. */
const WIDE = 1024 * 1024;
/** Linux's default. */
const NARROW = 64 * 1024;
/** How long after the last transfer the pipes are narrowed. */
const LINGER = 1000;

const F_SETPIPE_SZ = 1031;
// Linux's flags on x86_64 and aarch64, the targets Deno runs on.
const O_RDONLY_NONBLOCK_NOCTTY_CLOEXEC = 0o4000 | 0o400 | 0o2000000;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

let libc: Deno.DynamicLibrary<typeof SYMBOLS> | null | undefined;
let streams = 0;
let widened: string[] = [];
let narrowing: ReturnType<typeof setTimeout> | undefined;
let narrowTries = 0;

/** libc, where this agent may call it; null elsewhere. */
function loadLibc(): Deno.DynamicLibrary<typeof SYMBOLS> | null {
  if (libc !== undefined) return libc;
  libc = null;
  try {
    if (
      Deno.build.os === "linux" &&
      Deno.permissions.querySync({ name: "ffi" }).state === "granted"
    ) {
      libc = Deno.dlopen("libc.so.6", SYMBOLS);
    }
  } catch {
    // No glibc: the pipes keep their size.
  }
  return libc;
}

/**
 * Sets the size of each pipe in `paths` (FIFOs, or `/proc/<pid>/fd/<n>`
 * links to pipes); true when every one took it.
 */
function resize(paths: string[], size: number): boolean {
  const c = loadLibc();
  if (!c) return true;
  let all = true;
  for (const path of paths) {
    // Opened for reading without waiting (a FIFO's open for reading never
    // waits then), and closed at once: no data is read.
    const fd = c.symbols.open(
      new TextEncoder().encode(path + "\0"),
      O_RDONLY_NONBLOCK_NOCTTY_CLOEXEC,
      0,
    );
    if (fd < 0) continue;
    if (c.symbols.fcntl(fd, F_SETPIPE_SZ, size) < 0) all = false;
    c.symbols.close(fd);
  }
  return all;
}

function narrowLater(): void {
  const timer = setTimeout(() => {
    narrowing = undefined;
    if (streams > 0) return;
    // Refused while a pipe holds more than its new size: tried again.
    if (!resize(widened, NARROW) && ++narrowTries < 10) return narrowLater();
    widened = [];
  }, LINGER);
  Deno.unrefTimer(timer);
  narrowing = timer;
}

/**
 * Marks a transfer that streams through the channel: widens the pipes that
 * `pipes` names (asked only when they are not wide yet). Returns the
 * function that marks its end; calling it again does nothing.
 *
 * @example
 * ```ts ignore
 * const done = streaming(() => ["/tmp/chopsticks.x/i"]);
 * try {
 *   // ... send or receive the file
 * } finally {
 *   done();
 * }
 * ```
 */
export function streaming(pipes: () => string[]): () => void {
  streams++;
  if (narrowing !== undefined) {
    clearTimeout(narrowing);
    narrowing = undefined;
  }
  if (widened.length === 0 && loadLibc()) {
    widened = pipes();
    resize(widened, WIDE);
  }
  narrowTries = 0;
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    if (--streams === 0 && widened.length > 0) narrowLater();
  };
}
