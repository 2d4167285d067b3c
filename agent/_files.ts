/**
 * The agent's side of file transfers. `putBegin`/`putEnd` receive a file
 * into a temporary file beside the destination, check its sha256, and only
 * then rename it into place; `fetchBegin` sends a file in chunks as the
 * controller's acknowledgements allow. See wire/PROTOCOL.md.
 *
 * @module
 */
import type { Hash } from "node:crypto";
import { CHUNK, FLUSH, Kind, Msg, WINDOW } from "../wire/_protocol.ts";
import { readUpTo, statOrUndefined } from "./_sync_fs.ts";

/** What the file handlers need from the agent. */
export interface FileChannel {
  /** Sends a msgpack message. */
  message(message: unknown[]): void;
  /** Sends a frame; `done` is called once `body` may be reused. */
  frame(kind: number, body: Uint8Array, done?: () => void): void;
  /** The agent's working directory. */
  cwd: string;
  /** Where to list temporary files for the agent script to remove. */
  tempList?: string;
  /** Where a put with no remote path makes its file (the agent's TMPDIR). */
  tempDir: string;
  /**
   * Marks a transfer that streams through the channel (its pipes are
   * widened meanwhile: see `wire/_pipes.ts`); returns the function that
   * marks its end.
   */
  streaming?: () => () => void;
}

interface Incoming {
  file: Deno.FsFile;
  tmp: string;
  path: string;
  hash: Hash;
  written: number;
  /** Bytes handed to `flushing` so far. */
  flushed: number;
  /** Flushes of the file to disk under way while data arrives. */
  flushing: Promise<void>;
  error?: unknown;
  /** Ends its mark as a streaming transfer, once data frames came. */
  streamed?: () => void;
}

interface Outgoing {
  acked: number;
  wake?: () => void;
  aborted: boolean;
}

/** Nothing to mark: a channel without pipes to widen. */
const unmarked = () => () => {};

/** Bytes of a fetch queued for the channel at most. */
const DEPTH = 4 * 1024 * 1024;

const incoming = new Map<number, Incoming>();
const outgoing = new Map<number, Outgoing>();

/** sha256 from node:crypto, loaded on first use: it costs start-up time. */
async function sha256(): Promise<Hash> {
  const { createHash } = await import("node:crypto");
  return createHash("sha256");
}

/** Makes `path` absolute against the agent's working directory. */
export function absolute(path: string, cwd: string): string {
  if (typeof path !== "string" || path === "") {
    throw new TypeError("Cannot use the remote path: it is empty");
  }
  return path.startsWith("/") ? path : `${cwd.replace(/\/$/, "")}/${path}`;
}

function split(path: string): [string, string] {
  const cut = path.lastIndexOf("/");
  return [path.slice(0, cut) || "/", path.slice(cut + 1)];
}

/** Set once the agent is ending: no put may begin after that. */
let ending = false;
/**
 * Transfers still opening their file, by stream id: dropping one (the
 * agent ends, or the controller gave up on it) waits for that first.
 */
const beginning = new Map<number, Promise<unknown>>();

/** Registers the begin of stream `id`, for `drop` to wait for. */
function starting<T>(id: number, begun: Promise<T>): Promise<T> {
  beginning.set(id, begun);
  begun.finally(() => beginning.delete(id)).catch(() => {});
  return begun;
}

/** Starts receiving stream `id` into a temporary file beside the target. */
export function putBegin(
  files: FileChannel,
  id: number,
  target: string | null,
): Promise<{ path: string }> {
  if (ending) {
    return Promise.reject(new Error("Cannot put: the agent is ending"));
  }
  return starting(id, begin(files, id, target));
}

/** Closes `file`, which may be closed already. */
function closeQuietly(file: Deno.FsFile): void {
  try {
    file.close();
  } catch {
    // Already closed.
  }
}

/** Writes `chunk` to the file of `s` and hashes it; throws if it cannot. */
function take(s: Incoming, chunk: Uint8Array): void {
  for (let done = 0; done < chunk.length;) {
    done += s.file.writeSync(chunk.subarray(done));
  }
  s.hash.update(chunk);
  s.written += chunk.length;
}

async function begin(
  files: FileChannel,
  id: number,
  target: string | null,
): Promise<{ path: string }> {
  if (target !== null) {
    return await open(files, id, absolute(target, files.cwd));
  }
  // No remote path: a fresh name in the agent's TMPDIR, of 128 random bits,
  // not made until the rename (a file made for it in advance would outlive
  // an agent killed mid-way). The temporary file does not show it, so that
  // no one who can list TMPDIR can take the name first.
  const random = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
  const dir = absolute(files.tempDir, files.cwd).replace(/\/+$/, "");
  return await open(
    files,
    id,
    `${dir}/chopsticks-put-${random}`,
    "chopsticks-put",
  );
}

/**
 * Opens the temporary file beside `path` for stream `id`, named after
 * `label` (default: the name of `path`).
 */
async function open(
  files: FileChannel,
  id: number,
  path: string,
  label?: string,
): Promise<{ path: string }> {
  if (path.endsWith("/")) {
    throw new TypeError(`Cannot put to "${path}": it is a directory`);
  }
  // The short file operations of a put are synchronous: each asynchronous
  // one is a hop to a thread and back, which cost a tree of small files
  // most of its time. Making the file and syncing it stay asynchronous: they
  // can wait for the file system's journal, which other files' syncs keep
  // busy.
  if (statOrUndefined(path)?.isDirectory) {
    throw new TypeError(
      `Cannot put to "${path}": it is a directory; give the file's path`,
    );
  }
  const [dir, name] = split(path);
  const tmp = `${dir}/.${label ?? name}.chopsticks-${
    crypto.randomUUID().slice(0, 8)
  }.tmp`;
  // Listed before it exists: should this agent be killed at any point, the
  // agent script removes the file.
  if (files.tempList && !tmp.includes("\n")) {
    try {
      Deno.writeTextFileSync(files.tempList, tmp + "\n", { append: true });
    } catch {
      // Not listed: only a killed agent would leave it.
    }
  }
  const file = await Deno.open(tmp, {
    write: true,
    createNew: true,
    mode: 0o600,
  }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw statOrUndefined(dir)?.isDirectory ? error : new Deno.errors.NotFound(
      `Cannot put to "${path}": its directory ${dir} does not exist; make it first (putTree makes the directories of a tree)`,
    );
  });
  incoming.set(id, {
    file,
    tmp,
    path,
    hash: await sha256(),
    written: 0,
    flushed: 0,
    flushing: Promise.resolve(),
  });
  return { path };
}

/**
 * Takes one chunk of stream `id` and acknowledges it. The chunk is a view of
 * the channel's read buffer, so it is written synchronously, before the
 * buffer is reused; writes go to the page cache and are short.
 */
export function putData(
  files: FileChannel,
  id: number,
  chunk: Uint8Array,
): void {
  const s = incoming.get(id);
  if (!s || s.error) return;
  s.streamed ??= (files.streaming ?? unmarked)();
  try {
    take(s, chunk);
    if (s.written - s.flushed >= FLUSH) {
      s.flushed = s.written;
      const file = s.file;
      // Each flush done is acknowledged again: the controller sees the put
      // move while a slow disk catches up, at its end too.
      s.flushing = s.flushing.then(() => file.syncData()).then(() =>
        files.message([Msg.Ack, id, s.written])
      );
      s.flushing.catch(() => {});
    }
    files.message([Msg.Ack, id, s.written]);
  } catch (error) {
    // Keep the failure for putEnd; remove the partial file now.
    s.error = error;
    files.message([Msg.Abort, id, describe(error)]);
    closeQuietly(s.file);
    void Deno.remove(s.tmp).catch(() => {});
  }
}

/** What a put resolves to on the agent. */
export interface PutDone {
  /** The file's absolute path. */
  remotePath: string;
  /** Its sha256, as received. */
  sha256: string;
  /** Its size. */
  size: number;
}

/**
 * Finishes stream `id`: checks size and sha256, applies `mode`, and renames
 * the temporary file into place. On any mismatch the file is removed. A
 * small file comes whole as `data` here, with no data frames before (one
 * exchange less, and no acknowledgement).
 */
export async function putEnd(
  id: number,
  size: number,
  sha256: string,
  mode: number | null,
  data?: Uint8Array,
): Promise<PutDone> {
  const s = incoming.get(id);
  if (!s) throw new Error(`Cannot finish transfer ${id}: it was dropped`);
  try {
    if (s.error) throw s.error;
    if (data !== undefined) {
      if (!(data instanceof Uint8Array)) {
        throw new TypeError(`Cannot put "${s.path}": its data is not bytes`);
      }
      take(s, data);
    }
    const got = s.hash.digest("hex");
    if (s.written !== size || got !== sha256) {
      throw new Error(
        `Cannot put "${s.path}": received ${s.written} bytes with sha256 ${got}, expected ${size} bytes with ${sha256}`,
      );
    }
    // On disk before it takes the destination's name: after a crash the
    // destination holds the old file or the whole new one.
    await s.flushing;
    await s.file.sync();
    s.file.close();
    if (mode !== null) Deno.chmodSync(s.tmp, mode);
    Deno.renameSync(s.tmp, s.path);
    incoming.delete(id);
    s.streamed?.();
    return { remotePath: s.path, sha256: got, size };
  } catch (error) {
    await drop(id);
    throw error;
  }
}

/** Drops stream `id`, removing its temporary file. */
export async function drop(id: number): Promise<void> {
  await beginning.get(id)?.catch(() => {});
  const s = incoming.get(id);
  if (s) {
    incoming.delete(id);
    s.streamed?.();
    closeQuietly(s.file);
    await Deno.remove(s.tmp).catch(() => {});
  }
  const o = outgoing.get(id);
  if (o) {
    o.aborted = true;
    o.wake?.();
    outgoing.delete(id);
  }
}

/** Removes every half-received file: the agent is ending. */
export async function dropAll(): Promise<void> {
  ending = true;
  await Promise.allSettled(beginning.values());
  await Promise.all([...incoming.keys(), ...outgoing.keys()].map(drop));
}

/** The controller acknowledged `bytes` of stream `id`. */
export function fetchAck(id: number, bytes: number): void {
  const o = outgoing.get(id);
  if (o && bytes > o.acked) {
    o.acked = bytes;
    o.wake?.();
  }
}

/** What fetchBegin answers. */
export interface FetchBegun {
  /** The file's absolute path. */
  path: string;
  /** Its size: the bytes that will be sent. */
  size: number;
  /** Its permission bits, if known. */
  mode: number | null;
  /** A file of up to CHUNK bytes, whole: its bytes and their sha256. */
  whole?: [data: Uint8Array, sha256: string];
}

/**
 * Opens `target` and starts sending it as stream `id`; resolves once it is
 * open with its absolute path, size and mode. The data follows in `Data`
 * frames and an `End` message with the sha256 (or `Abort`), unless the
 * file is small: then it comes whole with the answer, and nothing follows.
 */
export function fetchBegin(
  files: FileChannel,
  id: number,
  target: string,
): Promise<FetchBegun> {
  return starting(id, openOutgoing(files, id, target));
}

async function openOutgoing(
  files: FileChannel,
  id: number,
  target: string,
): Promise<FetchBegun> {
  const path = absolute(target, files.cwd);
  // Looked at before the open too: opening a FIFO waits for a writer, so a
  // fetch of one hung for ever.
  const before = await Deno.stat(path);
  const file = before.isFile ? await Deno.open(path, { read: true }) : null;
  const info = file ? await file.stat() : before;
  if (!file || !info.isFile) {
    file?.close();
    throw new TypeError(
      `Cannot fetch "${path}": it is ${
        info.isDirectory ? "a directory" : "not a regular file"
      }`,
    );
  }
  const begun = {
    path,
    size: info.size,
    mode: info.mode === null ? null : info.mode & 0o7777,
  };
  if (info.size <= CHUNK) {
    try {
      // The first `size` bytes (fewer if it shrank: the controller then
      // refuses them).
      const data = readUpTo(file, info.size);
      const hash = await sha256();
      return { ...begun, whole: [data, hash.update(data).digest("hex")] };
    } finally {
      file.close();
    }
  }
  const o: Outgoing = { acked: 0, aborted: false };
  outgoing.set(id, o);
  const done = (files.streaming ?? unmarked)();
  void pump(files, id, file, info.size, o).finally(done);
  return begun;
}

/**
 * Sends the first `size` bytes of `file`, the size announced: a file that
 * grows meanwhile (a log) comes as it was when the fetch began.
 */
async function pump(
  files: FileChannel,
  id: number,
  file: Deno.FsFile,
  size: number,
  o: Outgoing,
): Promise<void> {
  const hash = await sha256();
  // Up to DEPTH bytes wait for the channel while the next are read and
  // hashed; buffers come back once copied for their write. Reads are
  // synchronous: a chunk of a local file takes well under a millisecond, a
  // third of what the same read costs through a thread.
  const spare: Uint8Array[] = [];
  let queued = 0;
  let sent = 0;
  try {
    while (!o.aborted) {
      while ((queued >= DEPTH || sent - o.acked >= WINDOW) && !o.aborted) {
        await new Promise<void>((resolve) => o.wake = resolve);
      }
      if (o.aborted) break;
      if (sent === size) break;
      const chunk = spare.pop() ?? new Uint8Array(4 + CHUNK);
      const n = file.readSync(
        chunk.subarray(4, 4 + Math.min(CHUNK, size - sent)),
      );
      if (n === null) break;
      new DataView(chunk.buffer).setUint32(0, id);
      hash.update(chunk.subarray(4, 4 + n));
      queued += n;
      files.frame(Kind.Data, chunk.subarray(0, 4 + n), () => {
        queued -= n;
        spare.push(chunk);
        o.wake?.();
      });
      sent += n;
    }
    if (!o.aborted) files.message([Msg.End, id, hash.digest("hex")]);
  } catch (error) {
    files.message([Msg.Abort, id, describe(error)]);
  } finally {
    outgoing.delete(id);
    file.close();
  }
}

function describe(error: unknown): string {
  return error instanceof Error
    ? `${error.name}: ${error.message}`
    : String(error);
}
