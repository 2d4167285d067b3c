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
 * go on at 64 KiB, where the CPU bounds them anyway), and a widening that
 * leaves the user too little of that budget (new pipes made then would get
 * less than 64 KiB: many agents of one user streaming at once) is undone at
 * once. Failures change nothing: a pipe that cannot be resized (another
 * user's, the budget spent, a pipe holding more than 64 KiB when it is
 * narrowed) keeps its size.
 *
 * @module
 */

/** The size of a pipe during a transfer. */
const WIDE = 1024 * 1024;
/** Linux's default. */
const NARROW = 64 * 1024;
/** How long after the last transfer the pipes are narrowed. */
const LINGER = 1000;
/**
 * How many fresh pipes of 64 KiB the user must still be able to make after
 * a widening.
 */
const HEADROOM = 8;
/** Pipes this process may have widened at a time. */
let wideLeft = 16;

const F_SETPIPE_SZ = 1031;
const F_GETPIPE_SZ = 1032;
// Linux's flags on x86_64 and aarch64, the targets Deno runs on.
const O_RDONLY_NONBLOCK_NOCTTY_CLOEXEC = 0o4000 | 0o400 | 0o2000000;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  pipe: { parameters: ["buffer"], result: "i32" },
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
 * What `path` links to (`pipe:[<inode>]` for a `/proc/<pid>/fd/<n>` link
 * to a pipe), or null when it is not a symbolic link (a FIFO's path) or
 * cannot be read.
 */
function linkOf(
  c: NonNullable<typeof libc>,
  cPath: Uint8Array,
): string | null {
  const buf = new Uint8Array(256);
  const n = Number(c.symbols.readlink(cPath, buf, BigInt(buf.length)));
  return n > 0 ? new TextDecoder().decode(buf.subarray(0, n)) : null;
}

/** `pipes` less those whose path is among `gone`. */
function without(pipes: Pipe[], ...gone: Pipe[][]): Pipe[] {
  const paths = new Set(gone.flat().map((pipe) => pipe.path));
  return pipes.filter((pipe) => !paths.has(pipe.path));
}

/** A pipe as it was widened: its path, and what the path linked to then. */
interface Pipe {
  path: string;
  link: string | null;
}

/**
 * Sets the size of each pipe in `pipes` (FIFOs, or `/proc/<pid>/fd/<n>`
 * links to pipes); returns those that took it, and those that are gone
 * (their process ended, or the link names another file now: a process
 * that took the pid of one that ended). A link that does not name a pipe
 * (`/dev/null`, a terminal, a device, a file) is never opened: an open can
 * wait (a file on a network file system) or act (a serial line).
 */
function resize(
  pipes: (string | Pipe)[],
  size: number,
): { took: Pipe[]; gone: Pipe[] } {
  const took: Pipe[] = [];
  const gone: Pipe[] = [];
  const c = loadLibc();
  if (!c) return { took, gone };
  for (const pipe of pipes) {
    const path = typeof pipe === "string" ? pipe : pipe.path;
    const cPath = new TextEncoder().encode(path + "\0");
    const link = linkOf(c, cPath);
    if (typeof pipe === "string") {
      if (path.startsWith("/proc/") && !link?.startsWith("pipe:[")) continue;
    } else if (link !== pipe.link) {
      gone.push(pipe);
      continue;
    }
    // Opened for reading without waiting (a FIFO's open for reading never
    // waits then), and closed at once: no data is read.
    const fd = c.symbols.open(cPath, O_RDONLY_NONBLOCK_NOCTTY_CLOEXEC, 0);
    if (fd < 0) {
      gone.push({ path, link });
      continue;
    }
    if (c.symbols.fcntl(fd, F_SETPIPE_SZ, size) >= 0) took.push({ path, link });
    c.symbols.close(fd);
  }
  return { took, gone };
}

/**
 * Whether the user can still make HEADROOM pipes of 64 KiB: the kernel
 * makes a new pipe smaller once the user's pipes would pass their budget.
 */
function roomLeft(c: NonNullable<typeof libc>): boolean {
  const fds: number[] = [];
  try {
    for (let i = 0; i < HEADROOM; i++) {
      const pair = new Int32Array(2);
      if (c.symbols.pipe(pair) < 0) return false;
      fds.push(pair[0], pair[1]);
      if (c.symbols.fcntl(pair[0], F_GETPIPE_SZ, 0) < NARROW) return false;
    }
    return true;
  } finally {
    for (const fd of fds) c.symbols.close(fd);
  }
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
  #widened: Pipe[] = [];
  /** Widened for the transfers under way (until a narrowing begins). */
  #wide = false;
  #closed = false;
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
    const c = !this.#wide && !this.#closed && wideLeft > 0 && loadLibc();
    if (c) {
      // Those still wide (they refused to narrow) are not counted twice.
      const more = this.#paths().filter((path) =>
        !this.#widened.some((pipe) => pipe.path === path)
      );
      let { took } = resize(more.slice(0, wideLeft), WIDE);
      if (took.length > 0 && !roomLeft(c)) {
        // Too close to the user's budget: undone (and tried again by the
        // next transfer). One that filled meanwhile stays wide, counted.
        took = without(took, resize(took, NARROW).took);
      }
      this.#widened.push(...took);
      wideLeft -= took.length;
      this.#wide = took.length > 0;
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

  /**
   * The channel ended: its pipes went with its process, and their paths
   * may soon name another process's. Nothing is resized from now on.
   */
  close(): void {
    this.#closed = true;
    // (Only a timer there is cleared: the first use of timers costs an
    // agent's end about 6 ms.)
    if (this.#narrowing !== undefined) clearTimeout(this.#narrowing);
    this.#narrowing = undefined;
    wideLeft += this.#widened.length;
    this.#widened = [];
    this.#wide = false;
  }

  #narrowLater(): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#narrowing = undefined;
      if (this.#streams > 0 || this.#closed) return;
      this.#wide = false;
      // Refused while a pipe holds more than its new size: tried again.
      const { took, gone } = resize(this.#widened, NARROW);
      const left = without(this.#widened, took, gone);
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
