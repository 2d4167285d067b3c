/**
 * The transport process as a byte channel: frames written to its stdin in
 * batches, its stdout scanned for the handshake marker and then split into
 * frames, its stderr split into lines.
 *
 * @module
 */
import { FrameError, FrameReader } from "../wire/_frame.ts";
import { ChannelPipes } from "../wire/_pipes.ts";
import { Kind } from "../wire/_protocol.ts";
import { ProtocolError } from "../errors.ts";
import type { OutputLines } from "./_output.ts";
import type { SpawnSpec } from "./_connection.ts";

/** Bytes of a frame's head: its length (4), its kind (1). */
export const FRAME_HEAD = 5;

/** Parts at least this big are written on their own, not copied. */
const BIG_WRITE = 64 * 1024;

/** Bytes asked for by one read of stdout. */
const READ = 64 * 1024;

/**
 * A frame of at most DIRECT_MAX bytes that still lacks DIRECT is read
 * straight into a buffer of its own (a file chunk is 256 KiB).
 */
const DIRECT = 32 * 1024;
const DIRECT_MAX = 4 * 1024 * 1024;

/** How long `close()` waits for the process before stopping it. */
const CLOSE_GRACE_MS = 2000;

/** How long `close()` waits after SIGTERM before SIGKILL. */
const TERM_GRACE_MS = 1000;

/** A spawned transport process. */
export class ProcessChannel {
  #child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #queue: Uint8Array[] = [];
  #flushing = false;
  #closing: Promise<void> | undefined;
  #stderr: OutputLines;
  #stderrDone: Promise<void>;
  /**
   * Stops reading stderr once the channel is closed: a daemon the agent
   * started holds it open for as long as it lives, and a read left
   * pending would keep the program from exiting.
   */
  #stopStderr = new AbortController();
  #sawMarker = false;
  #host: string;
  /** Bytes queued or being written to stdin. */
  #backlog = 0;
  #roomWaiters: { limit: number; resolve: () => void }[] = [];
  #progress: PromiseWithResolvers<void> | undefined;
  /** The process's exit status. */
  readonly status: Promise<Deno.CommandStatus>;
  /**
   * The pipes to the process (its stdin and stdout, named through /proc),
   * widened while a file streams. (A Local script's stdin is /dev/null by
   * then, and left alone: the agent widens that pipe as the relay's stdin.)
   */
  readonly pipes: ChannelPipes;

  private constructor(
    child: Deno.ChildProcess,
    host: string,
    stderr: OutputLines,
  ) {
    this.#child = child;
    this.#host = host;
    this.#writer = child.stdin.getWriter();
    this.#writer.closed.catch(() => {});
    this.#stderr = stderr;
    this.#stderrDone = stderr.drain(child.stderr, this.#stopStderr.signal);
    this.status = child.status;
    this.pipes = new ChannelPipes(() => [
      `/proc/${child.pid}/fd/0`,
      `/proc/${child.pid}/fd/1`,
    ]);
    // Its pid may go to another process once it ended.
    this.status.finally(() => this.pipes.close()).catch(() => {});
  }

  /** Starts the process; throws when it cannot be started. */
  static spawn(
    spec: SpawnSpec,
    host: string,
    stderr: OutputLines,
  ): ProcessChannel {
    const child = new Deno.Command(spec.command, {
      args: spec.args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new ProcessChannel(child, host, stderr);
  }

  /** True once the agent's handshake marker was seen. */
  get sawMarker(): boolean {
    return this.#sawMarker;
  }

  /** The last lines of the process's stderr. */
  get stderrTail(): string[] {
    return this.#stderr.tail;
  }

  /** Bytes queued or being written to stdin. */
  get backlog(): number {
    return this.#backlog;
  }

  /** True once `close()` was called: nothing more is written. */
  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Resolves once at most `limit` bytes wait to be written to stdin, or
   * the channel is closing: lets work that only adds output (answers to
   * module requests) wait for a process that does not read its input.
   */
  drained(limit: number): Promise<void> {
    if (this.#backlog <= limit || this.#closing) return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push({ limit, resolve }));
  }

  /**
   * Resolves at the next write to stdin that ends (or the close); at once
   * when nothing waits to be written or the channel is closing.
   */
  progress(): Promise<void> {
    if (this.#backlog === 0 || this.#closing) return Promise.resolve();
    this.#progress ??= Promise.withResolvers<void>();
    return this.#progress.promise;
  }

  #wrote(bytes: number): void {
    this.#backlog = this.#closing ? 0 : Math.max(0, this.#backlog - bytes);
    const progress = this.#progress;
    this.#progress = undefined;
    progress?.resolve();
    if (this.#roomWaiters.length === 0) return;
    const waiting = this.#roomWaiters;
    this.#roomWaiters = [];
    for (const w of waiting) {
      if (this.#backlog <= w.limit || this.#closing) w.resolve();
      else this.#roomWaiters.push(w);
    }
  }

  /** Queues raw bytes (dropped once the channel is closing). */
  write(bytes: Uint8Array): void {
    if (this.#closing) return;
    this.#backlog += bytes.length;
    this.#queue.push(bytes);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /**
   * Queues `framed` as one frame of `kind`: its first FRAME_HEAD bytes are
   * left free for the frame's head, written here, so that a big frame goes
   * out in one write, uncopied.
   */
  writeFramed(kind: number, framed: Uint8Array): void {
    const head = new DataView(framed.buffer, framed.byteOffset, FRAME_HEAD);
    head.setUint32(0, framed.length - 4);
    head.setUint8(4, kind);
    this.write(framed);
  }

  /** Queues one frame of `kind` whose body is the concatenation of `parts`. */
  writeFrame(kind: number, ...parts: Uint8Array[]): void {
    let size = 1;
    for (const p of parts) size += p.length;
    // A small frame is copied whole into one buffer; a big one's parts are
    // queued as they are.
    const small = size + 4 < BIG_WRITE;
    const frame = new Uint8Array(small ? size + 4 : 5);
    frame[0] = size >>> 24;
    frame[1] = size >>> 16;
    frame[2] = size >>> 8;
    frame[3] = size;
    frame[4] = kind;
    if (small) {
      let at = 5;
      for (const p of parts) {
        frame.set(p, at);
        at += p.length;
      }
      return this.write(frame);
    }
    this.write(frame);
    for (const p of parts) this.write(p);
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closing) {
        const parts = this.#queue;
        this.#queue = [];
        // Small parts are joined into one write; big ones (file chunks) go
        // as they are, to save copying them.
        let batch: Uint8Array[] = [];
        let size = 0;
        const flushBatch = async () => {
          if (batch.length === 1) await this.#writer.write(batch[0]);
          else if (batch.length > 1) {
            const buf = new Uint8Array(size);
            let at = 0;
            for (const p of batch) {
              buf.set(p, at);
              at += p.length;
            }
            await this.#writer.write(buf);
          }
          this.#wrote(size);
          batch = [];
          size = 0;
        };
        for (const part of parts) {
          if (part.length >= BIG_WRITE) {
            await flushBatch();
            await this.#writer.write(part);
            this.#wrote(part.length);
          } else {
            batch.push(part);
            size += part.length;
          }
        }
        await flushBatch();
      }
    } catch {
      // The process is gone; the read side reports it.
      this.#queue = [];
      this.#backlog = 0;
      this.#wrote(0);
    }
    this.#flushing = false;
  }

  /**
   * Reads stdout: bytes before `marker` go to `noise` (at most `maxNoise`),
   * then frames go to `onFrame`. Resolves at the end of stdout; throws a
   * ProtocolError (or what `onFrame` throws) on a bad stream. Before each
   * read, `pause` may return a promise to wait for (backpressure).
   */
  async run(
    marker: Uint8Array,
    maxNoise: number,
    noise: OutputLines,
    onFrame: (kind: number, body: Uint8Array) => void,
    pause?: () => Promise<void> | undefined,
  ): Promise<void> {
    const frames = new FrameReader(onFrame);
    let seen = new Uint8Array(0);
    // Reads go into one reused buffer and what came is copied out at its
    // size (a reply to a call is a few dozen bytes, where a fresh 64 KiB
    // buffer per read would be zeroed and collected); the rest of a big
    // frame (a file chunk) is read straight into a buffer of its own. A
    // data frame is used up when `onFrame` returns (see StreamHandler), so
    // its buffer takes the next big frame: a fetch of 1 GiB made 4,096
    // chunks of garbage, which the collector let grow the process by 70 MiB.
    const reader = this.#child.stdout.getReader({ mode: "byob" });
    let scratch = new Uint8Array(READ);
    let spare: ArrayBuffer | undefined;
    try {
      while (true) {
        const wait = pause?.();
        if (wait) await wait;
        const big = this.#sawMarker
          ? frames.reserve(DIRECT, DIRECT_MAX, spare)
          : undefined;
        if (big) {
          spare = undefined;
          let { frame, have } = big;
          // (Each read takes the buffer over: `frame` is then empty.)
          const size = frame.length;
          while (have < size) {
            const { value, done } = await reader.read(frame.subarray(have));
            if (done) return;
            frame = new Uint8Array(value.buffer, 0, size);
            have += value.length;
          }
          frames.complete(frame);
          if (frame[0] === Kind.Data) spare = frame.buffer as ArrayBuffer;
          continue;
        }
        const { value, done } = await reader.read(scratch);
        if (done) break;
        scratch = new Uint8Array(value.buffer);
        const chunk = value.slice();
        if (this.#sawMarker) {
          frames.push(chunk);
          continue;
        }
        const joined = new Uint8Array(seen.length + chunk.length);
        joined.set(seen);
        joined.set(chunk, seen.length);
        const at = indexOf(joined, marker);
        if (at < 0) {
          const keep = Math.max(0, joined.length - marker.length + 1);
          noise.push(joined.subarray(0, keep));
          seen = joined.slice(keep);
          maxNoise -= keep;
          if (maxNoise < 0) {
            throw new ProtocolError(
              this.#host,
              "more than 1 MiB of output before the handshake",
            );
          }
          continue;
        }
        noise.push(joined.subarray(0, at));
        noise.end();
        this.#sawMarker = true;
        frames.push(joined.subarray(at + marker.length));
      }
    } catch (e) {
      if (e instanceof FrameError) {
        throw new ProtocolError(this.#host, e.message);
      }
      throw e;
    } finally {
      noise.end();
      reader.releaseLock();
    }
  }

  /**
   * Ends the channel: stdin is closed (the agent script then stops the
   * agent's process group). With `force` the process also gets SIGTERM at
   * once (for a connection that failed, where nothing is worth waiting
   * for). A process still running after a grace period gets SIGTERM, and
   * SIGKILL a second later. Resolves
   * when it has exited and its stderr has been read.
   */
  close(force = false): Promise<void> {
    this.pipes.close();
    if (force) this.#signal("SIGTERM");
    this.#closing ??= (async () => {
      const grace = deadline(CLOSE_GRACE_MS);
      // Closing stdin waits for the writes queued before it, which a
      // process that reads nothing holds up for ever: the grace period
      // bounds that wait too.
      await Promise.race([this.#writer.close().catch(() => {}), grace.late]);
      if (await Promise.race([this.status, grace.late]) === "late") {
        // SIGTERM first: the agent script stops the agent's process group
        // (an agent that reads nothing holds its input relay, which then
        // never sees the input end); SIGKILL would leave the agent running.
        this.#signal("SIGTERM");
        const term = deadline(TERM_GRACE_MS);
        if (await Promise.race([this.status, term.late]) === "late") {
          this.#signal("SIGKILL");
        }
        term.clear();
        await this.status;
      }
      grace.clear();
      const stderr = deadline(200);
      await Promise.race([this.#stderrDone, stderr.late]);
      stderr.clear();
      this.#stopStderr.abort();
    })();
    this.#wrote(0);
    return this.#closing;
  }

  #signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch {
      // It has exited already.
    }
  }
}

/** A promise of "late" after `ms`, and the way to stop its timer. */
function deadline(ms: number): { late: Promise<"late">; clear(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), ms);
  });
  return { late, clear: () => clearTimeout(timer) };
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0];
  const last = haystack.length - needle.length;
  outer: for (let i = 0; i <= last; i++) {
    if (haystack[i] !== first) continue;
    for (let j = 1; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}
