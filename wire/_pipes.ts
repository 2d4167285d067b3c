/**
 * Wider pipes while a file streams through the channel, on both sides.
 *
 * A Linux pipe holds 64 KiB, so 256 MiB cross each pipe of the channel
 * (the agent script's stdin, the input FIFO, the output; the pipes between
 * the controller and `ssh`) in 4,096 pieces, each a wake-up of the process
 * on the other end. At 1 MiB a put of 256 MiB over a Local tunnel went from
 * about 410 to 570 MB/s here, a fetch from about 390 to 530, and a fetch
 * over SSH from about 200 to 300.
 *
 * Only Linux lets a process resize a pipe (`fcntl(F_SETPIPE_SZ)`), and Deno
 * lets code do that only through FFI: a process granted `ffi` (an agent, or
 * the controller) widens the pipes it can name, and any other goes on at
 * 64 KiB. The pipes are widened when the first streamed transfer on the
 * channel begins and narrowed again a second after the last one ended:
 * the pipes of one user share a budget (`/proc/sys/fs/pipe-user-pages-soft`,
 * 64 MiB), past which the kernel gives the user's new pipes 8 KiB. For the
 * same reason a process widens at most 16 pipes at a time (a controller
 * fetching from many hosts at once widens the first eight's, and the others
 * go on at 64 KiB, where the CPU bounds them anyway). Failures change nothing: a pipe that
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
/** Pipes this process may have widened at a time. */
let wideLeft = 16;

const F_SETPIPE_SZ = 1031;
// Linux's flags on x86_64 and aarch64, the targets Deno runs on.
const O_RDONLY_NONBLOCK_NOCTTY_CLOEXEC = 0o4000 | 0o400 | 0o2000000;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

let libc: Deno.DynamicLibrary<typeof SYMBOLS> | null | undefined;

/** libc, where this process may call it; null elsewhere. */
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
 * links to pipes); returns those that took it, and those that are gone
 * (their process ended).
 */
function resize(
  paths: string[],
  size: number,
): { took: string[]; gone: string[] } {
  const took: string[] = [];
  const gone: string[] = [];
  const c = loadLibc();
  if (!c) return { took, gone };
  for (const path of paths) {
    // Opened for reading without waiting (a FIFO's open for reading never
    // waits then), and closed at once: no data is read. (What is not a
    // pipe, such as /dev/null, refuses the size and is left alone.)
    const fd = c.symbols.open(
      new TextEncoder().encode(path + "\0"),
      O_RDONLY_NONBLOCK_NOCTTY_CLOEXEC,
      0,
    );
    if (fd < 0) {
      gone.push(path);
      continue;
    }
    if (c.symbols.fcntl(fd, F_SETPIPE_SZ, size) >= 0) took.push(path);
    c.symbols.close(fd);
  }
  return { took, gone };
}

/**
 * The pipes of one channel, as one side sees them: widened while transfers
 * stream through it.
 *
 * @example
 * ```ts ignore
 * const pipes = new ChannelPipes(() => ["/tmp/chopsticks.x/i"]);
 * const done = pipes.streaming();
 * try {
 *   // ... send or receive the file
 * } finally {
 *   done();
 * }
 * ```
 */
export class ChannelPipes {
  #paths: () => string[];
  #streams = 0;
  #widened: string[] = [];
  #narrowing: ReturnType<typeof setTimeout> | undefined;
  #tries = 0;

  /** `paths` names the pipes, asked each time they are widened. */
  constructor(paths: () => string[]) {
    this.#paths = paths;
  }

  /**
   * Marks a transfer that streams through the channel, widening its pipes
   * if they are not wide yet. Returns the function that marks its end;
   * calling it again does nothing.
   */
  streaming(): () => void {
    this.#streams++;
    if (this.#narrowing !== undefined) {
      clearTimeout(this.#narrowing);
      this.#narrowing = undefined;
    }
    if (this.#widened.length === 0 && wideLeft > 0 && loadLibc()) {
      this.#widened = resize(this.#paths().slice(0, wideLeft), WIDE).took;
      wideLeft -= this.#widened.length;
    }
    this.#tries = 0;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.#streams === 0 && this.#widened.length > 0) {
        this.#narrowLater();
      }
    };
  }

  #narrowLater(): void {
    const timer = setTimeout(() => {
      this.#narrowing = undefined;
      if (this.#streams > 0) return;
      // Refused while a pipe holds more than its new size: tried again.
      const { took, gone } = resize(this.#widened, NARROW);
      const left = this.#widened.filter((path) =>
        !took.includes(path) && !gone.includes(path)
      );
      if (left.length > 0 && ++this.#tries < 10) {
        wideLeft += this.#widened.length - left.length;
        this.#widened = left;
        this.#narrowLater();
      } else {
        // (One still wide after ten tries is counted back too: a reader
        // that stopped holds more than 64 KiB in it.)
        wideLeft += this.#widened.length;
        this.#widened = [];
      }
    }, LINGER);
    Deno.unrefTimer(timer);
    this.#narrowing = timer;
  }
}
