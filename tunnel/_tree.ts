/**
 * The controller's side of `putTree` and `fetchTree`: both sides list the
 * tree, files whose size matches are compared by sha256, and only what
 * differs is copied (each file through `put`/`fetch`, so atomically, a few
 * at a time on the one tunnel); directories keep their modes, symlinks are
 * copied as links.
 *
 * @module
 */
import {
  checkRelative,
  hashFiles,
  listTree,
  makeEntries,
  safePath,
  type Tree,
  type TreeEntry,
} from "../agent/_tree.ts";
import { ProtocolError } from "../errors.ts";
import { WINDOW } from "../wire/_protocol.ts";
import type { Connection } from "./_connection.ts";
import { fetchFile, putFile, type TransferOptions } from "./_transfer.ts";

/**
 * Files of a tree copied at once: each file costs round trips (its begin
 * and its end) and a sync to disk before its rename, which then overlap.
 */
export const FILES_AT_ONCE = 16;

/** What `putTree` and `fetchTree` resolve to. */
export interface TreeResult {
  /** The destination root, absolute. */
  root: string;
  /** Files in the tree. */
  files: number;
  /** Files copied because they were new or different. */
  copied: number;
  /** Bytes copied. */
  bytes: number;
}

const builtin = (name: string) => ({ kind: "builtin" as const, name });

function absoluteHere(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/**
 * Checks a tree listed by an agent, which may come from a hostile host, and
 * returns a clean copy: each entry is an object of a known type, with a safe
 * relative path listed once, below a directory listed before it, a size and
 * a mode that are integers, and a link's target a string. Throws a
 * ProtocolError otherwise. Modes lose the setuid, setgid and sticky bits:
 * what fetchTree makes never gets them from an agent.
 */
function checkTree(tree: unknown, host: string, dir: string): Tree {
  const bad = (why: string) =>
    new ProtocolError(host, `its listing of "${dir}" ${why}`);
  const t = tree as Tree;
  if (
    !t || typeof t !== "object" || typeof t.root !== "string" ||
    (t.entries !== null && !Array.isArray(t.entries))
  ) {
    throw bad("is malformed");
  }
  if (t.entries === null) return { root: t.root, entries: null };
  if (!Number.isSafeInteger(t.mode) || t.mode! < 0) {
    throw bad("gives the root a bad mode");
  }
  const entries: TreeEntry[] = [];
  const paths = new Set<string>();
  const dirs = new Set<string>([""]);
  for (const e of t.entries as unknown[]) {
    const { path, type, mode, size, target } = (e ?? {}) as TreeEntry;
    // Checked before it is shown: String() of what an agent sent may
    // throw, or walk shared references for minutes.
    if (typeof path !== "string") throw bad(`holds a path that is not text`);
    const at = JSON.stringify(path.slice(0, 200));
    try {
      checkRelative(path);
    } catch {
      throw bad(`holds a bad path ${at}`);
    }
    if (paths.has(path)) throw bad(`lists ${at} twice`);
    paths.add(path);
    const parent = path.includes("/")
      ? path.slice(0, path.lastIndexOf("/"))
      : "";
    if (
      !dirs.has(parent) || !["dir", "file", "link"].includes(type) ||
      !Number.isSafeInteger(size) || size < 0 ||
      (type === "link" && (typeof target !== "string" || target === ""))
    ) {
      throw bad(`is malformed at ${at}`);
    }
    if (!Number.isSafeInteger(mode) || mode < 0) {
      throw bad(`gives ${at} a bad mode`);
    }
    if (type === "dir") dirs.add(path);
    entries.push({
      path,
      type,
      mode: mode & 0o777,
      size,
      ...(type === "link" ? { target } : {}),
    });
  }
  return { root: t.root, mode: t.mode! & 0o777, entries };
}

/**
 * Which files of `from` must be copied over `to`: new ones, and those whose
 * size or sha256 differs.
 */
async function changedFiles(
  from: Tree,
  to: Tree,
  hashFrom: (paths: string[]) => Promise<(string | null)[]>,
  hashTo: (paths: string[]) => Promise<(string | null)[]>,
): Promise<TreeEntry[]> {
  const there = new Map((to.entries ?? []).map((e) => [e.path, e]));
  const files = (from.entries ?? []).filter((e) => e.type === "file");
  const same = files.filter((e) => {
    const t = there.get(e.path);
    return t?.type === "file" && t.size === e.size;
  });
  const paths = same.map((e) => e.path);
  const [a, b] = paths.length
    ? await Promise.all([hashFrom(paths), hashTo(paths)])
    : [[], []];
  // A file either side could not read (null) is copied.
  const unchanged = new Set(
    paths.filter((_, i) => typeof a[i] === "string" && a[i] === b[i]),
  );
  return files.filter((e) => !unchanged.has(e.path));
}

/**
 * Runs `copy` on each of `files`, in order, up to FILES_AT_ONCE at a time
 * and, so that memory stays bounded as for one file, with at most a
 * window's worth of their bytes (WINDOW) in flight: a file that big goes
 * alone. The first failure stops the others (through the signal each
 * `copy` gets) and no file starts after it; either way this settles only
 * once no copy is under way, rejecting with the first failure, or with
 * the reason of `signal` when it aborted.
 */
async function copyEach(
  files: TreeEntry[],
  signal: AbortSignal | undefined,
  copy: (e: TreeEntry, signal: AbortSignal) => Promise<unknown>,
): Promise<void> {
  const stop = new AbortController();
  const either = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  const running = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let inFlight = 0;
  for (const e of files) {
    const cost = Math.min(e.size, WINDOW);
    while (
      running.size >= FILES_AT_ONCE ||
      (running.size > 0 && inFlight + cost > WINDOW)
    ) {
      await Promise.race(running);
    }
    if (failure || either.aborted) break;
    inFlight += cost;
    const copying: Promise<void> = copy(e, either).then(
      () => {},
      (error) => {
        if (failure) return;
        failure = { error };
        stop.abort(error);
      },
    ).finally(() => {
      inFlight -= cost;
      running.delete(copying);
    });
    running.add(copying);
  }
  await Promise.all(running);
  if (failure) throw failure.error;
  signal?.throwIfAborted();
}

/** Copies the local tree `localDir` to `remoteDir` on the target. */
export async function putTree(
  conn: Connection,
  localDir: string,
  remoteDir: string,
  options: TransferOptions = {},
): Promise<TreeResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  // Both sides list at once.
  const listing = conn.call(builtin("treeList"), [remoteDir], { signal });
  listing.catch(() => {}); // awaited below, unless the local tree is missing
  const local = await listTree(absoluteHere(localDir));
  if (local.entries === null) {
    throw new Deno.errors.NotFound(
      `Cannot put the tree "${localDir}": it does not exist`,
    );
  }
  const remote = checkTree(await listing, conn.host, remoteDir);
  const changed = await changedFiles(
    local,
    remote,
    (paths) => hashFiles(local.root, paths, signal),
    async (paths) =>
      await conn.call(builtin("treeHash"), [remote.root, paths], {
        signal,
      }) as (string | null)[],
  );
  await conn.call(builtin("treeMake"), [
    remote.root,
    local.entries,
    local.mode,
  ], { signal });
  await copyEach(changed, signal, async (e, signal) => {
    await putFile(conn, `${local.root}/${e.path}`, `${remote.root}/${e.path}`, {
      mode: e.mode,
      signal,
    });
  });
  const bytes = changed.reduce((sum, e) => sum + e.size, 0);
  const files = local.entries.filter((e) => e.type === "file").length;
  return { root: remote.root, files, copied: changed.length, bytes };
}

/** Copies the tree `remoteDir` from the target to `localDir`. */
export async function fetchTree(
  conn: Connection,
  remoteDir: string,
  localDir: string,
  options: TransferOptions = {},
): Promise<TreeResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  // Both sides list at once.
  const listing = conn.call(builtin("treeList"), [remoteDir], { signal });
  const root = absoluteHere(localDir).replace(/\/+$/, "");
  const local = await listTree(root).catch((error) => {
    listing.catch(() => {}); // the local error is the news
    throw error;
  });
  const remote = checkTree(await listing, conn.host, remoteDir);
  if (remote.entries === null) {
    throw new Deno.errors.NotFound(
      `Cannot fetch the tree "${remoteDir}": it does not exist`,
    );
  }
  const changed = await changedFiles(
    remote,
    local,
    async (paths) =>
      await conn.call(builtin("treeHash"), [remote.root, paths], {
        signal,
      }) as (string | null)[],
    (paths) => hashFiles(root, paths, signal),
  );
  await makeEntries(root, remote.entries, signal, remote.mode);
  await copyEach(changed, signal, async (e, signal) => {
    // Exactly there, never into what is in the way, and with its mode set
    // before it takes its name (a chmod of the name would follow a link).
    const target = await safePath(root, e.path);
    await fetchFile(conn, `${remote.root}/${e.path}`, target, { signal }, {
      mode: e.mode,
    });
  });
  const bytes = changed.reduce((sum, e) => sum + e.size, 0);
  const files = remote.entries.filter((e) => e.type === "file").length;
  return { root, files, copied: changed.length, bytes };
}
