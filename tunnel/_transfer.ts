/**
 * The controller's side of `put` and `fetch`: files stream in chunks, no
 * more than a window ahead of what the other side has written, are checked
 * by sha256 on arrival, and are renamed into place only when whole. A
 * failed transfer never leaves a partial file at the destination, and a
 * failed fetch never touches a file already there.
 *
 * @module
 */
import { createHash } from "node:crypto";
import * as scratch from "./_scratch.ts";
import { CHUNK, FLUSH, WINDOW } from "../wire/_protocol.ts";
import {
  type Connection,
  DATA_HEAD,
  type StreamHandler,
} from "./_connection.ts";
import { readUpTo, statOrUndefined } from "../agent/_sync_fs.ts";
import { ProtocolError } from "../errors.ts";

/** Chunks of a put queued for the channel at most. */
const DEPTH = 4;

/** What `put` resolves to. */
export interface PutResult {
  /** The absolute path the file now has on the target. */
  remotePath: string;
  /** Hex sha256 of the content, checked on both sides. */
  sha256: string;
  /** Size in bytes. */
  size: number;
}

/** What `fetch` resolves to. */
export interface FetchResult {
  /** The absolute path the file now has here. */
  localPath: string;
  /** The absolute path it had on the target. */
  remotePath: string;
  /** Hex sha256 of the content, checked on both sides. */
  sha256: string;
  /** Size in bytes. */
  size: number;
}

/**
 * Options of `fetch`, `putTree` and `fetchTree` (and, with `mode`, of
 * `put`).
 *
 * @example Give up on a transfer after a minute
 * ```ts
 * import { Local, type TransferOptions } from "@chopsticks/chopsticks";
 * await using tun = new Local();
 * const options: TransferOptions = { signal: AbortSignal.timeout(60_000) };
 * await tun.fetch("/etc/hostname", "/tmp/hostname", options);
 * ```
 */
export interface TransferOptions {
  /**
   * Stops the transfer when it aborts: the promise rejects with the
   * signal's reason, nothing more is sent, and the partial file is removed
   * on the side that was writing it. A transfer whose last byte was
   * already sent finishes instead, and resolves or rejects by what really
   * happened: a rejected transfer never leaves a file in place.
   */
  signal?: AbortSignal;
}

/**
 * Options of `put`.
 *
 * @example
 * ```ts
 * import { Local, type PutOptions } from "@chopsticks/chopsticks";
 * await using tun = new Local();
 * const options: PutOptions = { mode: 0o600 };
 * await tun.put("deno.json", "/tmp/private.json", options);
 * ```
 */
export interface PutOptions extends TransferOptions {
  /**
   * Permission bits of the new file, from 0 to 0o7777, written in octal
   * (`0o644`, not `644` or `"644"`), without the sticky bit (0o1000, which
   * a mode written in decimal by mistake nearly always has: it is
   * refused). Default: those of the local file.
   */
  mode?: number;
}

/**
 * Settles like `work`, or rejects with the reason of `signal` as soon as it
 * aborts (what `work` stands for goes on). Given as a function, the work is
 * not started at all when `signal` has already aborted.
 */
export function unlessAborted<T>(
  work: Promise<T> | (() => Promise<T>),
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  const promise = typeof work === "function" ? work() : work;
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() =>
      signal.removeEventListener("abort", onAbort)
    );
  });
}

/** A signal that aborts when either does. */
function either(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}

function basename(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() || "file";
}

function absoluteHere(path: string): string {
  return path.startsWith("/") ? path : `${Deno.cwd()}/${path}`;
}

/** A temporary path beside `path`, in the same directory. */
function besides(path: string): string {
  const cut = path.lastIndexOf("/");
  return `${path.slice(0, cut)}/.${path.slice(cut + 1)}.chopsticks-${
    crypto.randomUUID().slice(0, 8)
  }.tmp`;
}

/**
 * A copy of `error`, of its class and with its fields, saying `message`: a
 * lost connection fails everything under way with one error, which each
 * transfer tells in its own words.
 */
function withMessage<E extends Error>(error: E, message: string): E {
  const copy = Object.create(Object.getPrototypeOf(error)) as E;
  for (const key of Reflect.ownKeys(error)) {
    if (key === "stack") continue;
    Object.defineProperty(
      copy,
      key,
      Object.getOwnPropertyDescriptor(error, key)!,
    );
  }
  Object.defineProperty(copy, "message", {
    value: message,
    writable: true,
    configurable: true,
  });
  Object.defineProperty(copy, "stack", {
    value: String(error.stack).replace(error.message, () => message),
    writable: true,
    configurable: true,
  });
  return copy;
}

/** Sends `localPath` to `remotePath` (a fresh temporary file if omitted). */
export async function putFile(
  conn: Connection,
  localPath: string,
  remotePath: string | undefined,
  options: PutOptions = {},
): Promise<PutResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  const notRegular = () =>
    new TypeError(`Cannot put "${localPath}": it is not a regular file`);
  let file: Deno.FsFile;
  try {
    // Looked at before the open too: opening a FIFO waits for a writer, so
    // a put of one hung for ever. (The short file operations of a transfer
    // are synchronous here and on the agent: an asynchronous one is a hop
    // to a thread and back, which cost a tree of small files most of its
    // time. Opens stay asynchronous: a FIFO put there since the stat would
    // hold only this transfer, and making a file, like syncing it, can wait
    // for the file system's journal.)
    if (!Deno.statSync(localPath).isFile) throw notRegular();
    // (A FIFO swapped in between holds the open: the signal still stops
    // the put, and the file is closed should the open end later.)
    const opening = Deno.open(localPath, { read: true });
    file = await unlessAborted(opening, signal).catch((error) => {
      opening.then((f) => f.close(), () => {});
      throw error;
    });
  } catch (error) {
    if (error instanceof TypeError) throw error;
    if (signal?.aborted && error === signal.reason) throw error;
    throw new (error instanceof Deno.errors.NotFound
      ? Deno.errors.NotFound
      : Error)(
      `Cannot put "${localPath}": ${(error as Error).message}`,
      { cause: error },
    );
  }
  let id = 0;
  let streamed: (() => void) | undefined;
  try {
    const info = file.statSync();
    if (!info.isFile) throw notRegular();
    const mode = options.mode ??
      (info.mode === null ? null : info.mode & 0o7777);
    let acked = 0;
    let failed: Error | undefined;
    let wake: (() => void) | undefined;
    const stream = new AbortController();
    id = conn.openStream({
      ack(bytes) {
        acked = bytes;
        wake?.();
      },
      abort(error) {
        failed = error;
        stream.abort(error);
        wake?.();
      },
    });
    await conn.call({ kind: "builtin", name: "putBegin" }, [
      id,
      remotePath ?? null,
    ], { signal: either(signal, stream.signal) });
    // Once the last byte is out, the put finishes and reports what
    // happened, whatever the signal says now (a timed-out put never lands
    // later), unless the stream fails (the agent never answers: see
    // openStream).
    const end = async (size: number, sha256: string, data?: Uint8Array) => {
      const answer = await conn.call(
        { kind: "builtin", name: "putEnd" },
        [id, size, sha256, mode, ...(data ? [data] : [])],
        { signal: stream.signal },
      );
      conn.closeStream(id);
      return putResult(conn, id, answer, sha256, size);
    };
    const whole = info.size <= CHUNK ? readWhole(file, info.size) : undefined;
    if (whole) {
      // A small file goes whole with its end: no data frames, no
      // acknowledgements.
      signal?.throwIfAborted();
      const sha256 = createHash("sha256").update(whole).digest("hex");
      return await end(whole.length, sha256, whole);
    }
    streamed = conn.streaming();
    const hash = createHash("sha256");
    // Chunk k goes out only once chunk k - WINDOW/CHUNK was acknowledged,
    // so WINDOW/CHUNK + 1 buffers, reused in turn, are enough. They are no
    // bigger than the file and a byte (the read that finds its end): two
    // zeroed buffers of 256 KiB for each of a tree's small files took about
    // a third of the controller's CPU. A file that grew since goes on in
    // whole chunks.
    const buffers: Uint8Array[] = [];
    let size = Math.min(CHUNK, info.size + 1);
    let sent = 0;
    for (let k = 0;; k++) {
      while (sent - acked >= WINDOW && !failed) {
        await unlessAborted(
          new Promise<void>((resolve) => wake = resolve),
          signal,
        );
      }
      // A few chunks wait to be written while the next is read and hashed.
      await unlessAborted(conn.drained(DEPTH * CHUNK), signal);
      if (failed) throw failed;
      const slot = k % (WINDOW / CHUNK + 1);
      // Each with room for the frame's head in front: one write a chunk.
      if (!(buffers[slot]?.length >= DATA_HEAD + size)) {
        buffers[slot] = new Uint8Array(DATA_HEAD + size);
      }
      const framed = buffers[slot];
      const chunk = framed.subarray(DATA_HEAD, DATA_HEAD + size);
      // A synchronous read: a chunk of a local file takes well under a
      // millisecond, a third of what the same read costs through a thread.
      const n = file.readSync(chunk);
      if (n === null) break;
      if (n === chunk.length) size = CHUNK;
      hash.update(chunk.subarray(0, n));
      conn.sendData(id, framed.subarray(0, DATA_HEAD + n));
      sent += n;
    }
    return await end(sent, hash.digest("hex"));
  } catch (error) {
    if (id) conn.closeStream(id, String(error));
    if (signal?.aborted && error === signal.reason) throw error;
    if (error instanceof Error && !error.message.startsWith("Cannot put")) {
      throw withMessage(
        error,
        `Cannot put "${localPath}" to "${conn.host}": ${error.message}`,
      );
    }
    throw error;
  } finally {
    streamed?.();
    file.close();
  }
}

/**
 * What put stream `id` resolves to, from the agent's answer: the agent only
 * says where the file went; the sha256 and size are what was sent, and an
 * answer that says otherwise breaks the protocol.
 */
function putResult(
  conn: Connection,
  id: number,
  answer: unknown,
  sha256: string,
  size: number,
): PutResult {
  const { remotePath, sha256: theirs, size: got } =
    (typeof answer === "object" && answer !== null ? answer : {}) as Record<
      string,
      unknown
    >;
  if (typeof remotePath !== "string" || theirs !== sha256 || got !== size) {
    throw new ProtocolError(conn.host, `put stream ${id}: a bad answer`);
  }
  return { remotePath, sha256, size };
}

/**
 * The whole of `file`, whose size was `size`, unless it grew meanwhile:
 * then undefined, with `file` back at its start. (Read synchronously, a
 * small local file, into a buffer of its size and a byte: a zeroed buffer
 * of 256 KiB for each of a tree's small files took about a third of the
 * controller's CPU.)
 */
function readWhole(file: Deno.FsFile, size: number): Uint8Array | undefined {
  const data = readUpTo(file, size + 1);
  if (data.length <= size) return data;
  file.seekSync(0, Deno.SeekMode.Start);
  return undefined;
}

/**
 * How `fetchTree` fetches one of its files: to `localPath` exactly, never
 * into a directory there, and only over a regular file or nothing.
 */
export interface TreeFile {
  /** Permission bits of the new file, from the tree's listing. */
  mode: number;
}

/**
 * Fetches `remotePath` into `localPath` (default: its name in the current
 * directory; an existing directory gets the file inside it, unless it is a
 * tree's file).
 */
export async function fetchFile(
  conn: Connection,
  remotePath: string,
  localPath?: string,
  options: TransferOptions = {},
  treeFile?: TreeFile,
): Promise<FetchResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  let target = absoluteHere(localPath ?? basename(remotePath));
  if (treeFile) {
    // Not followed: a symlink there would lead outside the tree. (The
    // rename at the end replaces a link made meanwhile, never follows it.)
    let info: Deno.FileInfo | undefined;
    try {
      info = Deno.lstatSync(target);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (info && !info.isFile) {
      throw new TypeError(
        `Cannot fetch "${remotePath}" to "${target}": what is there is not a regular file`,
      );
    }
  } else {
    // Nothing there, or nothing we may look at (the open then says so).
    const info = statOrUndefined(target);
    // A directory, there or named by a final "/", gets the file inside it.
    if (info?.isDirectory || target.endsWith("/")) {
      target = `${target.replace(/\/+$/, "")}/${basename(remotePath)}`;
    }
    if (!info) {
      // A path of the user's own machine: its directories are made, as
      // for a tree (`logs/{host}.log` on a group).
      const dir = target.slice(0, target.lastIndexOf("/")) || "/";
      await Deno.mkdir(dir, { recursive: true }).catch((e) => {
        throw new Error(
          `Cannot fetch "${remotePath}" to "${target}": cannot make its directory: ${e.message}`,
          { cause: e },
        );
      });
    }
  }
  const tmp = besides(target);
  const file = await Deno.open(tmp, {
    write: true,
    createNew: true,
    mode: 0o600,
  }).catch((e) => {
    throw withMessage(
      e,
      `Cannot fetch "${remotePath}" to "${target}": cannot write its directory: ${e.message}`,
    );
  });
  scratch.writing(tmp);
  const hash = createHash("sha256");
  let written = 0;
  let flushed = 0;
  let flushing = Promise.resolve();
  let flusher: Deno.FsFile | undefined;
  let writeError: Error | undefined;
  let settle!: { resolve: (sha: string) => void; reject: (e: Error) => void };
  const ended = new Promise<string>((resolve, reject) =>
    settle = { resolve, reject }
  );
  ended.catch(() => {});
  // The size the agent announced; more data than that breaks the protocol.
  let announced = Infinity;
  let received = 0;
  const onAbort = () => settle.reject(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let closed = false;
  let renamed = false;
  let id = 0;
  /** The file came whole with its begin: nothing to acknowledge. */
  let whole = false;
  let streamed: (() => void) | undefined;
  const stream = new AbortController();
  try {
    // Inside the try: a connection that ended meanwhile throws here, and
    // the temporary file goes.
    const handlers = {
      data(chunk) {
        received += chunk.length;
        if (received > announced) {
          throw new ProtocolError(
            conn.host,
            `fetch stream ${id} sent more than the ${announced} bytes it announced`,
          );
        }
        hash.update(chunk);
        if (writeError || closed) return;
        try {
          // Written synchronously, as the agent writes a put: a chunk goes
          // to the page cache in well under a millisecond, where a write
          // through Deno's thread pool cost a fetch about 7% of its speed.
          for (let done = 0; done < chunk.length;) {
            done += file.writeSync(chunk.subarray(done));
          }
          written += chunk.length;
          if (written - flushed >= FLUSH) {
            // Through a handle of its own, so that the flush and the writes
            // do not wait for each other.
            flushed = written;
            flushing = flushing.then(async () => {
              flusher ??= await Deno.open(tmp, { read: true });
              await flusher.syncData();
            });
            flushing.catch(() => {});
          }
          if (!whole) conn.ack(id, written);
        } catch (error) {
          writeError = error as Error;
          conn.closeStream(id, String(error));
          settle.reject(writeError);
        }
      },
      end: (sha) => settle.resolve(sha),
      abort: (error) => {
        settle.reject(error);
        stream.abort(error);
      },
    } satisfies StreamHandler;
    id = conn.openStream(handlers);
    const begun = await conn.call({ kind: "builtin", name: "fetchBegin" }, [
      id,
      remotePath,
    ], { signal: either(signal, stream.signal) }) as {
      path: string;
      size: number;
      mode: number | null;
      whole?: [Uint8Array, string];
    } | null;
    if (typeof begun !== "object" || begun === null) {
      throw new ProtocolError(conn.host, `fetch stream ${id}: a bad answer`);
    }
    if (typeof begun.path !== "string") {
      throw new ProtocolError(conn.host, `fetch stream ${id}: a bad path`);
    }
    if (!(Number.isSafeInteger(begun.size) && begun.size >= 0)) {
      throw new ProtocolError(conn.host, `fetch stream ${id}: a bad size`);
    }
    // The mode, if any, comes from the agent: an integer, and never with
    // the setuid, setgid or sticky bit here.
    if (
      begun.mode !== null &&
      !(Number.isSafeInteger(begun.mode) && begun.mode >= 0)
    ) {
      throw new ProtocolError(conn.host, `fetch stream ${id}: a bad mode`);
    }
    announced = begun.size;
    if (received > announced) {
      throw new ProtocolError(
        conn.host,
        `fetch stream ${id} sent more than the ${announced} bytes it announced`,
      );
    }
    if (begun.whole !== undefined) {
      // A small file came whole with the answer: its data and its end, as
      // the stream would have brought them.
      const [data, sha] = Array.isArray(begun.whole) ? begun.whole : [];
      if (
        !(data instanceof Uint8Array) || typeof sha !== "string" ||
        begun.size > CHUNK
      ) {
        throw new ProtocolError(conn.host, `fetch stream ${id}: a bad file`);
      }
      whole = true;
      handlers.data(data);
      handlers.end(sha);
    } else streamed = conn.streaming();
    const theirs = await ended;
    if (writeError) throw writeError;
    const ours = hash.digest("hex");
    if (written < begun.size) {
      throw new Error(
        `the file shrank on the host while it was read: ${written} of its ${begun.size} bytes came`,
      );
    }
    if (ours !== theirs || written !== begun.size) {
      throw new Error(
        `received ${written} bytes with sha256 ${ours}, expected ${begun.size} bytes with ${theirs}`,
      );
    }
    // On disk before it takes the destination's name: after a crash the
    // destination holds the old file or the whole new one.
    await flushing;
    await file.sync();
    file.close();
    closed = true;
    const mode = treeFile ? treeFile.mode : begun.mode;
    if (mode !== null) Deno.chmodSync(tmp, mode & 0o777);
    Deno.renameSync(tmp, target);
    renamed = true;
    return {
      localPath: target,
      remotePath: begun.path,
      sha256: ours,
      size: written,
    };
  } catch (error) {
    if (id) conn.closeStream(id, String(error));
    if (signal?.aborted && error === signal.reason) throw error;
    if (error instanceof Error && !error.message.startsWith("Cannot fetch")) {
      throw withMessage(
        error,
        `Cannot fetch "${remotePath}" from "${conn.host}": ${error.message}`,
      );
    }
    throw error;
  } finally {
    // Done with (a failed one was told to the agent above).
    if (id) conn.closeStream(id);
    streamed?.();
    signal?.removeEventListener("abort", onAbort);
    if (!closed) file.close();
    // Not waited for: a failed fetch rejects without waiting for a flush.
    void flushing.catch(() => {}).then(() => flusher?.close());
    if (!renamed) await Deno.remove(tmp).catch(() => {});
    scratch.written(tmp);
  }
}
