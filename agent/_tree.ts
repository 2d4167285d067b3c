/**
 * Directory trees for `putTree`/`fetchTree`: listing a tree (paths, kinds,
 * modes, sizes, symlink targets), hashing chosen files, and making
 * directories and symlinks. The agent runs these as built-in handlers; the
 * controller uses the same code on its own side.
 *
 * @module
 */

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

/** Lists the tree at `root` (absolute), not following symlinks. */
export async function listTree(root: string): Promise<Tree> {
  const info = await Deno.lstat(root).catch(() => undefined);
  if (!info) return { root, entries: null };
  const rootMode = (info.mode ?? 0) & 0o7777;
  if (!info.isDirectory) {
    throw new TypeError(
      `Cannot copy the tree "${root}": it is not a directory`,
    );
  }
  const entries: TreeEntry[] = [];
  const walk = async (dir: string, prefix: string) => {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    names.sort();
    for (const name of names) {
      const full = `${dir}/${name}`;
      const path = prefix + name;
      const st = await Deno.lstat(full);
      const mode = (st.mode ?? 0) & 0o7777;
      if (st.isSymlink) {
        entries.push({
          path,
          type: "link",
          mode,
          size: 0,
          target: await Deno.readLink(full),
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
 * that cannot be read (it is then copied: a file there that its user may
 * not read is replaced, and one here gives the copy's own clear error).
 * Stops, throwing its reason, once `signal` aborts.
 */
export async function hashFiles(
  root: string,
  paths: string[],
  signal?: AbortSignal,
): Promise<(string | null)[]> {
  const { createHash } = await import("node:crypto");
  const out: (string | null)[] = [];
  const buf = new Uint8Array(256 * 1024);
  for (const path of paths) {
    signal?.throwIfAborted();
    const hash = createHash("sha256");
    try {
      using file = await Deno.open(`${root}/${checkRelative(path)}`, {
        read: true,
      });
      for (let n; (n = await file.read(buf)) !== null;) {
        signal?.throwIfAborted();
        hash.update(buf.subarray(0, n));
      }
      out.push(hash.digest("hex"));
    } catch (error) {
      if (signal?.aborted) throw error;
      out.push(null);
    }
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
  await Deno.mkdir(root, { recursive: true });
  if (
    rootMode !== undefined &&
    ((await Deno.stat(root)).mode! & 0o7777) !== rootMode
  ) {
    // A root that is not ours (a shared directory the tree goes into)
    // keeps its mode: the tree's contents still go.
    await Deno.chmod(root, rootMode).catch((e) => {
      if (!(e instanceof Deno.errors.PermissionDenied)) throw e;
    });
  }
  for (const e of entries) {
    signal?.throwIfAborted();
    const full = await safePath(root, e.path);
    const st = await Deno.lstat(full).catch(() => undefined);
    // Something of another kind is in the way: remove it first.
    const kind = st?.isSymlink ? "link" : st?.isDirectory ? "dir" : "file";
    if (st && kind !== e.type) {
      await Deno.remove(full, { recursive: true });
    } else if (st && e.type === "file") {
      await Deno.chmod(full, e.mode);
    }
    if (e.type === "dir") {
      if (kind !== "dir" || !st) {
        // Another copy may be making the same tree at the same time.
        await Deno.mkdir(full).catch((e) => {
          if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
        });
      }
      await Deno.chmod(full, e.mode);
    } else if (e.type === "link") {
      const current = await Deno.readLink(full).catch(() => undefined);
      if (current === e.target) continue;
      const tmp = `${full}.chopsticks-${crypto.randomUUID().slice(0, 8)}.tmp`;
      await Deno.symlink(String(e.target), tmp);
      await Deno.rename(tmp, full);
    }
  }
}

/** `root/path`, after checking that no parent of it is a symlink. */
export async function safePath(root: string, path: string): Promise<string> {
  const parts = checkRelative(path).split("/");
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = `${dir}/${part}`;
    const st = await Deno.lstat(dir).catch(() => undefined);
    if (st?.isSymlink) {
      throw new TypeError(`Cannot write "${path}": "${dir}" is a symlink`);
    }
  }
  return `${root}/${path}`;
}
