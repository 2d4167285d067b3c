/**
 * Directory trees for `putTree`/`fetchTree`: listing a tree (paths, kinds,
 * modes, sizes, symlink targets), hashing chosen files, and making
 * directories and symlinks. The agent runs these as built-in handlers; the
 * controller uses the same code on its own side.
 *
 * @module
 */

import { lstatOrUndefined } from "./_sync_fs.ts";

/** One entry of a tree, by its path relative to the tree's root. */
export interface TreeEntry {
  /** Relative path, `/`-separated, never empty, `.` or `..` segments. */
  path: string;
  /** What it is. */
  type: "dir" | "file" | "link";
  /** Permission bits (files and directories). */
  mode: number;
  /** Size in bytes (files). */
  size: number;
  /** What a symlink points to (links). */
  target?: string;
}

/** A listed tree: its absolute root, and its entries (null if missing). */
export interface Tree {
  /** The root, absolute. */
  root: string;
  /** Permission bits of the root, when it is there. */
  mode?: number;
  /** The entries, parents before children; null when the root is missing. */
  entries: TreeEntry[] | null;
}

/** Throws unless `path` is a safe relative path. */
export function checkRelative(path: string): string {
  if (
    typeof path !== "string" || path === "" || path.startsWith("/") ||
    path.split("/").some((p) => p === "" || p === "." || p === "..") ||
    path.includes("\0")
  ) {
    throw new TypeError(
      `Cannot use tree path ${
        JSON.stringify(path)
      }: it must be relative, without "." or ".." parts`,
    );
  }
  return path;
}

/**
 * How long a tree job holds the event loop before it gives other work (calls,
 * transfers, the liveness ping) a turn.
 */
const SLICE_MS = 5;

/**
 * Returns the step a tree job takes between two file operations: once the
 * job held the event loop for SLICE_MS, it gives it up for a turn, then
 * throws if `signal` aborted meanwhile. File operations here are
 * synchronous, taken in such slices: an asynchronous one is a hop to a
 * thread and back, about 80 us on a small VM, and a tree of 5,000 files
 * took seconds of them.
 */
function slices(signal?: AbortSignal): () => Promise<void> | undefined {
  let start = performance.now();
  return () => {
    signal?.throwIfAborted();
    if (performance.now() - start < SLICE_MS) return undefined;
    return new Promise<void>((resolve) => setTimeout(resolve, 0)).then(() => {
      signal?.throwIfAborted();
      start = performance.now();
    });
  };
}

/** Lists the tree at `root` (absolute), not following symlinks. */
export async function listTree(root: string): Promise<Tree> {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(root);
  } catch {
    return { root, entries: null };
  }
  const rootMode = (info.mode ?? 0) & 0o7777;
  if (!info.isDirectory) {
    throw new TypeError(
      `Cannot copy the tree "${root}": it is not a directory`,
    );
  }
  const entries: TreeEntry[] = [];
  const step = slices();
  const walk = async (dir: string, prefix: string) => {
    const names: string[] = [];
    for (const e of Deno.readDirSync(dir)) names.push(e.name);
    names.sort();
    for (const name of names) {
      await step();
      const full = `${dir}/${name}`;
      const path = prefix + name;
      const st = Deno.lstatSync(full);
      const mode = (st.mode ?? 0) & 0o7777;
      if (st.isSymlink) {
        entries.push({
          path,
          type: "link",
          mode,
          size: 0,
          target: Deno.readLinkSync(full),
        });
      } else if (st.isDirectory) {
        entries.push({ path, type: "dir", mode, size: 0 });
        await walk(full, path + "/");
      } else if (st.isFile) {
        entries.push({ path, type: "file", mode, size: st.size });
      }
    }
  };
  await walk(root, "");
  return { root, mode: rootMode, entries };
}

/**
 * Hex sha256 of each file `paths` (relative to `root`), or null for one
 * that cannot be read or is not a regular file (it is then copied: a file
 * there that its user may not read is replaced, and one here gives the
 * copy's own clear error). Files are opened without waiting: a FIFO put in
 * a file's place is not read (its open would wait for a writer, and hold
 * the whole event loop). Stops, throwing its reason, once `signal` aborts.
 */
export async function hashFiles(
  root: string,
  paths: string[],
  signal?: AbortSignal,
): Promise<(string | null)[]> {
  const [{ createHash }, fs] = await Promise.all([
    import("node:crypto"),
    import("node:fs"),
  ]);
  // Not waiting on a FIFO, not following a symlink swapped in since the
  // listing, never taking a terminal as the controlling one.
  const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW, O_NOCTTY } = fs.constants;
  const flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY;
  const out: (string | null)[] = [];
  const buf = new Uint8Array(256 * 1024);
  const step = slices(signal);
  for (const path of paths) {
    await step();
    const full = `${root}/${checkRelative(path)}`;
    let hash: string | null = null;
    let fd: number | undefined;
    try {
      // What is opened must be the regular file the path named just before
      // (Deno ignores O_NOFOLLOW where reads are scoped).
      const named = Deno.lstatSync(full);
      fd = fs.openSync(full, flags);
      const opened = fs.fstatSync(fd);
      if (
        named.isFile && opened.isFile() && opened.ino === named.ino &&
        opened.dev === named.dev
      ) {
        const sha = createHash("sha256");
        for (let n; (n = fs.readSync(fd, buf)) > 0;) {
          sha.update(buf.subarray(0, n));
          await step();
        }
        hash = sha.digest("hex");
      }
    } catch (error) {
      if (signal?.aborted) throw error;
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    out.push(hash);
  }
  return out;
}

/**
 * Makes `root` (with `rootMode`, when given: the source tree's root's, if
 * the root is ours to change) and the directories and symlinks of
 * `entries` under it, and gets ready for its files (copied separately):
 * what is in the way of an entry of another kind is removed, and an
 * existing file gets the entry's mode. A symlink replaces what was at its
 * path, atomically. Refuses a path whose parent on disk is a symlink, so
 * nothing is ever written outside `root`. Stops, throwing its reason, once
 * `signal` aborts.
 */
export async function makeEntries(
  root: string,
  entries: TreeEntry[],
  signal?: AbortSignal,
  rootMode?: number,
): Promise<void> {
  Deno.mkdirSync(root, { recursive: true });
  if (
    rootMode !== undefined && (Deno.statSync(root).mode! & 0o7777) !== rootMode
  ) {
    // A root that is not ours (a shared directory the tree goes into)
    // keeps its mode: the tree's contents still go.
    try {
      Deno.chmodSync(root, rootMode);
    } catch (e) {
      if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    }
  }
  const step = slices(signal);
  for (const e of entries) {
    await step();
    const full = checkedPath(root, e.path);
    const st = lstatOrUndefined(full);
    // Something of another kind is in the way: remove it first.
    const kind = st?.isSymlink ? "link" : st?.isDirectory ? "dir" : "file";
    if (st && kind !== e.type) {
      // (A directory in the way may be big: not at once.)
      await Deno.remove(full, { recursive: true });
    } else if (st && e.type === "file") {
      if ((st.mode! & 0o7777) !== e.mode) Deno.chmodSync(full, e.mode);
    }
    if (e.type === "dir") {
      if (kind !== "dir" || !st) {
        // Another copy may be making the same tree at the same time.
        try {
          Deno.mkdirSync(full);
        } catch (e) {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        }
      }
      Deno.chmodSync(full, e.mode);
    } else if (e.type === "link") {
      let current: string | undefined;
      try {
        current = Deno.readLinkSync(full);
      } catch {
        // Not there (or not a link: removed above).
      }
      if (current === e.target) continue;
      const tmp = `${full}.chopsticks-${crypto.randomUUID().slice(0, 8)}.tmp`;
      Deno.symlinkSync(String(e.target), tmp);
      Deno.renameSync(tmp, full);
    }
  }
}

/** `root/path`, after checking that no parent of it is a symlink. */
export function safePath(root: string, path: string): Promise<string> {
  try {
    return Promise.resolve(checkedPath(root, path));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** What safePath checks, synchronously. */
function checkedPath(root: string, path: string): string {
  const parts = checkRelative(path).split("/");
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = `${dir}/${part}`;
    if (lstatOrUndefined(dir)?.isSymlink) {
      throw new TypeError(`Cannot write "${path}": "${dir}" is a symlink`);
    }
  }
  return `${root}/${path}`;
}
