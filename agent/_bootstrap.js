// The agent's first module. The controller sends it as a `data:` URL main
// module, so it cannot import anything: it sets up the channel and the
// loopback module server by itself, then imports the rest of the agent
// through that server.
// Deno.args: [input fifo, output (a fifo, or /proc/<pid>/fd/1: the agent
// script's stdout), working dir, cache dir or "", TMPDIR].
//
// @ts-check
// Frames: [u32 big-endian length][u8 kind][body]; see wire/PROTOCOL.md.

const MSG = 1, MOD_REQ = 2, MOD_RES = 3, HELLO = 4, FAIL = 5, DATA = 6;
const MAX_FRAME = 64 * 1024 * 1024;
const NPM_PLACEHOLDER = "http://npm.chopsticks.invalid/";
const TYPES = [
  "text/plain",
  "application/typescript",
  "application/javascript",
  "application/json",
  "text/tsx",
  "text/jsx",
  "application/octet-stream",
];

/** @typedef {{ port: number, secret: string, nonce: string, agent: string, agentHash: string, agentSize: number, context: object, version: string }} Hello */
/** @typedef {(kind: number, body: Uint8Array) => void} Handler */

// Each open waits for the relay on the other end, which the agent script
// started with this process; synchronous opens spare the start of Deno's
// thread pool.
/** @param {string} path @param {Deno.OpenOptions} how */
function channelEnd(path, how) {
  try {
    return Deno.openSync(path, how);
  } catch (e) {
    // Said on one line: the controller shows the last line of stderr.
    console.error(
      `chopsticks: the agent cannot open its channel (${path}): ${e}`,
    );
    Deno.exit(125);
  }
}
const input = channelEnd(Deno.args[0], { read: true });
/** The agent's private directory on the target (the input FIFO is in it). */
const ownDir = Deno.args[0].replace(/\/i$/, "");
const output = channelEnd(Deno.args[1], { write: true });
const utf8 = new TextEncoder();

// Outgoing frames are queued and written together, one write per turn:
// the channel is a FIFO, and one big write keeps it full without a turn of
// this thread per chunk. `done` is called once a body was copied for its
// write and its buffer may be reused.
// A turn that queues many small frames (replies to a batch of calls) writes
// them every EARLY bytes, so the controller reads the first while this
// thread makes the rest.
/** @type {(Uint8Array | (() => void))[]} */
let queue = [];
let queued = 0;
let flushing = false;
/** An asynchronous write is under way: what is queued must wait for it. */
let waiting = false;
const EARLY = 2 * 1024;
const SYNC_WRITE = 64 * 1024;
/**
 * @param {number} kind @param {Uint8Array} body @param {() => void} [done]
 */
function send(kind, body, done) {
  if (broken) return;
  const size = body.length + 1;
  const head = new Uint8Array([
    size >>> 24,
    size >>> 16,
    size >>> 8,
    size,
    kind,
  ]);
  queue.push(head, body);
  if (done) queue.push(done);
  queued += size + 4;
  // (The `done` callbacks run in take(): they must not send.)
  if (queued >= EARLY && queued <= SYNC_WRITE && !waiting) {
    try {
      writeSyncAll(take());
    } catch {
      return lost();
    }
  }
  if (!flushing && queue.length > 0) {
    flushing = true;
    queueMicrotask(flush);
  }
}
/** Empties the queue into one buffer. */
function take() {
  const parts = queue;
  queue = [];
  // One buffer, reused: what take() returned is written before it is
  // called again (the synchronous path waits for no asynchronous write),
  // and a fresh one per write (up to 4 MiB during a fetch) left the
  // collector behind by tens of MiB.
  // (A batch bigger than a fetch's, a big result, gets its own: the one
  // kept stays small.)
  if (outBuf.length < queued && queued <= KEEP_OUT) {
    outBuf = new Uint8Array(queued);
  }
  const buf = queued <= outBuf.length
    ? outBuf.subarray(0, queued)
    : new Uint8Array(queued);
  queued = 0;
  let at = 0;
  for (const p of parts) {
    if (typeof p === "function") p();
    else {
      buf.set(p, at);
      at += p.length;
    }
  }
  return buf;
}
/** What take() fills, up to KEEP_OUT bytes. */
let outBuf = new Uint8Array(64 * 1024);
const KEEP_OUT = 8 * 1024 * 1024;
/** @param {Uint8Array} buf */
function writeSyncAll(buf) {
  for (let done = 0; done < buf.length;) {
    done += output.writeSync(buf.subarray(done));
  }
}
/**
 * Writes `buf` to the channel. Up to a pipe's worth, synchronously: the
 * relay drains the FIFO at once, and an asynchronous write would cost a
 * trip through Deno's thread pool on every reply.
 * @param {Uint8Array} buf
 */
async function writeAll(buf) {
  if (buf.length <= SYNC_WRITE) return writeSyncAll(buf);
  waiting = true;
  try {
    for (let done = 0; done < buf.length;) {
      done += await output.write(buf.subarray(done));
    }
  } finally {
    waiting = false;
  }
}
/**
 * Writes what is queued now, when it is small and no asynchronous write is
 * under way: the read loop calls it once the frames of a read were handled,
 * so that the replies of calls that finished at once go out before the next
 * read is asked for (see the read loop).
 */
function flushNow() {
  if (waiting || broken || queued === 0 || queued > SYNC_WRITE) return;
  try {
    writeSyncAll(take());
  } catch {
    lost();
  }
}
async function flush() {
  try {
    while (queue.length > 0) await writeAll(take());
  } catch {
    lost();
  }
  flushing = false;
}
/** A write failed: nobody reads the channel. */
let broken = false;
/**
 * The controller is gone, or the relay to it: nothing more is sent, and
 * the agent ends as when the channel closes (removing what it made).
 */
function lost() {
  broken = true;
  queue = [];
  queued = 0;
  void exit(70);
}

// The end: the channel closed, the agent script asked us to stop, or the
// controller no longer reads what we write. Hooks remove what the agent
// made (half-written files), then the process exits.
let exiting = false;
/** @param {number} code */
async function exit(code) {
  if (!exiting) {
    exiting = true;
    await Promise.allSettled(closeHooks.map((hook) => hook()));
    markBigDenoCache();
    removeOwnFiles();
    Deno.exit(code);
  }
}
Deno.addSignalListener("SIGTERM", () => exit(143));

// Deno's cache databases on the target (in the cache's deno/): one that
// grew past 64 MiB is marked, and the agent script of the next agent
// removes them all before Deno starts (a check here costs nothing at
// start-up; the shell would need a process for it).
function markBigDenoCache() {
  const dir = `${Deno.args[3] ?? ""}/deno`;
  try {
    for (const entry of Deno.readDirSync(dir)) {
      const path = `${dir}/${entry.name}`;
      if (
        entry.name.includes("_cache_v2") &&
        Deno.statSync(path).size > 64 * 1024 * 1024
      ) {
        return Deno.writeTextFileSync(`${dir}/reset`, "");
      }
    }
  } catch {
    // No cache, or not ours to mark.
  }
}

// What this agent made on the target: its private directory (FIFOs,
// import map) and what Deno cached under its loopback port (remote
// modules, their transpiled code, the npm packages it unpacked). Removed
// here so that the agent script, which removes what is left when the agent
// is killed, has nothing to start a process for. The port is this agent's
// only once it listens on it: an agent that found it taken must leave the
// other's files alone.
let ownPort = 0;
function removeOwnFiles() {
  const remove = (/** @type {string} */ path, recursive = false) => {
    try {
      Deno.removeSync(path, { recursive });
    } catch {
      // Not there, or left to the agent script.
    }
  };
  try {
    // Temporary files of puts, by their names only: code on a scoped
    // agent can write this list.
    for (const path of Deno.readTextFileSync(`${ownDir}/t`).split("\n")) {
      if (/^\/.*\/\.[^/]*\.chopsticks-[^/]{8}\.tmp$/.test(path)) remove(path);
    }
  } catch {
    // No put made one.
  }
  remove(ownDir, true);
  if (ownPort) {
    for (const [dir, name] of PORT_DIRS) {
      remove(`${Deno.args[3]}/deno/${dir}/${name(ownPort)}`, true);
    }
  }
}

/**
 * Where Deno caches what an agent loads from its loopback port, under the
 * cache's deno/: a directory, and the name the port gives there. (The agent
 * script's EXIT trap names the same three.)
 * @type {[string, (port: number) => string][]}
 */
const PORT_DIRS = [
  ["npm", (port) => String(port)],
  ["remote/http", (port) => `127.0.0.1_PORT${port}`],
  ["gen/http", (port) => `127.0.0.1_PORT${port}`],
];

// Incoming frames: read loop with a growable buffer.
/** @type {Handler | undefined} */
let onFrame;
/** @type {[number, Uint8Array][]} */
const early = [];
/** @type {(() => void | Promise<void>)[]} */
const closeHooks = [];
/** @typedef {{ status: number, type: string, hash: string, body: Uint8Array<ArrayBuffer> }} Answer */
/** @type {Map<number, (a: Answer) => void>} */
const modules = new Map();
/** @type {(h: Hello) => void} */
let hello = () => {};
/** @type {Promise<Hello>} */
const gotHello = new Promise((resolve) => hello = resolve);

/** @param {number} kind @param {Uint8Array} body */
function dispatch(kind, body) {
  if (kind === MSG || kind === DATA) {
    // The read buffer is reused. Messages are copied (decoded values may be
    // views of them); file chunks are not, since they are written to disk
    // synchronously, before the buffer is reused.
    const mine = kind === MSG ? body.slice() : body;
    if (onFrame) onFrame(kind, mine);
    else early.push([kind, body.slice()]);
  } else if (kind === MOD_RES) {
    const view = new DataView(body.buffer, body.byteOffset, body.length);
    const id = view.getUint32(0);
    const status = view.getUint16(4);
    const type = TYPES[body[6]] ?? "text/plain";
    // Copied before decoding: the body may be in shared memory (see READER).
    const hash = new TextDecoder().decode(body.slice(8, 8 + body[7]));
    const done = modules.get(id);
    modules.delete(id);
    done?.({ status, type, hash, body: body.slice(8 + body[7]) });
  } else if (kind === HELLO) {
    hello(JSON.parse(new TextDecoder().decode(body.slice())));
  }
}

// A worker thread that reads the channel in a tight loop and hands over
// whole frames. Frames up to `SLOT` bytes go in slots of a shared pool,
// given back once handled; a bigger one is transferred, one at a time. It
// starts with the bytes of a partial frame already read here.
const SLOT = 512 * 1024;
const SLOTS = 16;
const READER = `const MAX_FRAME = ${MAX_FRAME}, SLOT = ${SLOT};
self.onmessage = ({ data: [path, leftover, pool, shared] }) => {
  self.onmessage = null;
  const input = Deno.openSync(path, { read: true });
  // [free slots, big frames out, state of each slot (1: in use)]
  const state = new Int32Array(shared);
  const slots = state.length - 2;
  let next = 0;
  let stage = new Uint8Array(Math.max(256 * 1024, leftover.length));
  stage.set(leftover);
  let have = leftover.length;
  const fill = (buf, from, min) => {
    while (from < min) {
      const n = input.readSync(buf.subarray(from));
      if (n === null) return -1;
      from += n;
    }
    return from;
  };
  const wait = (i, busy) => {
    for (let now; (now = Atomics.load(state, i)) === busy;) {
      Atomics.wait(state, i, now);
    }
  };
  try {
    while (true) {
      if (have < 4 && (have = fill(stage, have, 4)) < 0) break;
      const len = new DataView(stage.buffer).getUint32(0);
      if (len === 0 || len > MAX_FRAME) return self.postMessage("bad");
      let slot = -1;
      let frame;
      if (len <= SLOT) {
        wait(0, 0);
        while (state[2 + next] !== 0) next = (next + 1) % slots;
        slot = next;
        next = (next + 1) % slots;
        Atomics.store(state, 2 + slot, 1);
        Atomics.sub(state, 0, 1);
        frame = new Uint8Array(pool, slot * SLOT, len);
      } else {
        wait(1, 1);
        Atomics.store(state, 1, 1);
        frame = new Uint8Array(len);
      }
      const got = Math.min(len, have - 4);
      frame.set(stage.subarray(4, 4 + got));
      stage.copyWithin(0, 4 + got, have);
      have -= 4 + got;
      if (got < len && fill(frame, got, len) < 0) break;
      if (slot >= 0) self.postMessage([slot, len]);
      else self.postMessage(frame, [frame.buffer]);
    }
    self.postMessage(null);
  } catch (e) {
    self.postMessage(String(e));
  }
};
self.postMessage("ready");`;

/**
 * Starts the reader thread; resolves once it can take over.
 * @returns {Promise<(leftover: Uint8Array) => void>}
 */
function readerThread() {
  const url = URL.createObjectURL(
    new Blob([READER], { type: "application/javascript" }),
  );
  const worker = new Worker(url, { type: "module" });
  const pool = new SharedArrayBuffer(SLOTS * SLOT);
  const state = new Int32Array(new SharedArrayBuffer(4 * (2 + SLOTS)));
  state[0] = SLOTS;
  return new Promise((resolve) => {
    worker.onmessage = ({ data }) => {
      if (Array.isArray(data)) {
        const [slot, len] = data;
        const frame = new Uint8Array(pool, slot * SLOT, len);
        dispatch(frame[0], frame.subarray(1));
        Atomics.store(state, 2 + slot, 0);
        Atomics.add(state, 0, 1);
        Atomics.notify(state, 0);
      } else if (data instanceof Uint8Array) {
        dispatch(data[0], data.subarray(1));
        Atomics.store(state, 1, 0);
        Atomics.notify(state, 1);
      } else if (data === "ready") {
        URL.revokeObjectURL(url);
        resolve((leftover) => {
          worker.postMessage([Deno.args[0], leftover, pool, state.buffer]);
        });
      } else if (data === null) exit(0); // the controller closed the channel
      else void exit(data === "bad" ? 71 : 70);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      void exit(70);
    };
  });
}

/** A read of at least this many bytes is taken for a streaming transfer. */
const STREAMING = 32 * 1024;

/** Once this many bytes came in, a big transfer is on: reading moves to a thread. */
const THREAD_AFTER = 16 * 1024 * 1024;

// Reads are double-buffered: the next read is already running while the
// frames of the last one are handled (file chunks are hashed and written
// to disk synchronously), so the pipe keeps flowing. Once much came in,
// a worker thread takes the reading over, so that the pipe keeps flowing
// even while this thread is busy.
(async () => {
  const READ = 256 * 1024;
  let scratch = new Uint8Array(READ);
  let spare = new Uint8Array(READ);
  let buf = new Uint8Array(2 * 1024 * 1024);
  let end = 0;
  let total = 0;
  /** @type {((leftover: Uint8Array) => void) | undefined} */
  let handOver;
  // The first read (the handshake, sent as the agent starts) is
  // synchronous: it spares the wait for Deno's thread pool to start.
  /** @type {Promise<number | null>} */
  let reading = Promise.resolve(input.readSync(scratch));
  while (true) {
    const n = await reading;
    if (n === null) return await exit(0); // the controller closed the channel
    const got = scratch;
    [scratch, spare] = [spare, scratch];
    total += n;
    if (total >= THREAD_AFTER && total - n < THREAD_AFTER) {
      readerThread().then((start) => handOver = start, () => {});
    }
    // A big read (a file streams) asks for the next at once, so that the
    // pipe keeps flowing while its frames are handled; after a small one
    // (calls), the replies go out first: asking for a read wakes a thread
    // of Deno's pool, which on two cores is the other core, and the
    // controller then waits for that wake-up too.
    const streaming = n >= STREAMING;
    if (!handOver && streaming) reading = input.read(scratch);
    if (end + n > buf.length) {
      const bigger = new Uint8Array(Math.max(buf.length * 2, end + n));
      bigger.set(buf.subarray(0, end));
      buf = bigger;
    }
    buf.set(got.subarray(0, n), end);
    end += n;
    let at = 0;
    while (end - at >= 4) {
      const len = new DataView(buf.buffer, at, 4).getUint32(0);
      if (len === 0 || len > MAX_FRAME) return await exit(71);
      if (end - at - 4 < len) break;
      dispatch(buf[at + 4], buf.subarray(at + 5, at + 4 + len));
      at += 4 + len;
    }
    if (handOver) return handOver(buf.slice(at, end));
    if (!streaming) {
      flushNow();
      reading = input.read(scratch);
    }
    if (at > 0) {
      buf.copyWithin(0, at, end);
      end -= at;
    }
  }
})();

const boot = await gotHello;

const npmHere = `http://127.0.0.1:${boot.port}/${boot.secret}/p/npm/`;
let nextModule = 1;

/**
 * Asks the controller for `path` (which starts with the secret), telling it
 * the sha256 of the answer cached here, if any; 304 means "still the same".
 * @param {string} path @param {string} known @returns {Promise<Answer>}
 */
function ask(path, known) {
  const id = nextModule++;
  const p = utf8.encode(path);
  const k = utf8.encode(known);
  const body = new Uint8Array(5 + k.length + p.length);
  new DataView(body.buffer).setUint32(0, id);
  body[4] = k.length;
  body.set(k, 5);
  body.set(p, 5 + k.length);
  send(MOD_REQ, body);
  return new Promise((resolve) => modules.set(id, resolve));
}

// A per-user cache of answers on the target, validated on every use: the
// agent tells the controller the sha256 of what it has, and an unchanged
// module costs a round trip, not its bytes; a changed one is always sent.
// i/<hash of key> holds "sha256 type key"; b/<sha256> holds the bytes. The
// controller computes every sha256.
const cacheDir = Deno.args[3] ?? "";
/** FNV-1a of `key`, as a file name (the key itself is checked on read). */
/** @param {string} key */
function indexName(key) {
  let h1 = 0x811c9dc5, h2 = 0x01000193;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, "0") + h2.toString(16).padStart(8, "0");
}
/**
 * What the cache holds for `key`: its sha256 and type (the body is read
 * only once the controller says it is still the same). Read synchronously:
 * small files, and no trip through Deno's thread pool.
 * @param {string} key @returns {{ hash: string, type: string } | undefined}
 */
function cached(key) {
  if (!cacheDir) return undefined;
  try {
    const line = Deno.readTextFileSync(`${cacheDir}/i/${indexName(key)}`);
    const [hash, type] = line.split(" ", 2);
    if (line.slice(hash.length + type.length + 2) !== key) return undefined;
    return { hash, type };
  } catch {
    return undefined;
  }
}
/** @param {{ hash: string, type: string }} hit @returns {Answer | undefined} */
function cachedBody(hit) {
  try {
    const body = Deno.readFileSync(`${cacheDir}/b/${hit.hash}`);
    return { status: 200, type: hit.type, hash: hit.hash, body };
  } catch {
    return undefined;
  }
}
/** Cache writes under way: the agent's end waits for them. */
/** @type {Set<Promise<unknown>>} */
const remembering = new Set();
closeHooks.push(async () => {
  await Promise.allSettled(remembering);
  // Whether this agent prunes is known at once (the mark is read); a
  // pruning under way then gets a moment to finish, and one cut off is
  // taken up again by an agent ten minutes later (see pruneCache). (No
  // timer otherwise: the first one costs an agent's end milliseconds.)
  const work = (await pruning?.catch(() => undefined))?.work;
  if (work) {
    await Promise.race([
      work,
      new Promise((resolve) => setTimeout(resolve, 250)),
    ]);
  }
});
/** @param {string} key @param {Answer} answer */
function remember(key, answer) {
  const writing = write(key, answer);
  remembering.add(writing);
  writing.finally(() => remembering.delete(writing));
  if (!pruning) pruning = writing.then(pruneCache);
}
/**
 * Settles once the mark is read: with the work of the pruning this agent
 * does, if it does one.
 * @type {Promise<{ work: Promise<void> } | undefined> | undefined}
 */
let pruning;
const DAY = 24 * 3600 * 1000;
/** Bytes of bodies the cache holds at most, once pruned. */
const CACHE_MAX = 512 * 1024 * 1024;
/**
 * Once a day, the first agent that adds to the cache removes its entries
 * written more than 30 days ago, so that it does not grow for ever, and,
 * when the bodies left hold more than CACHE_MAX bytes, the oldest of them
 * until three quarters of it are left (so that the next additions do not
 * bring it back at once). One still in use is sent again, once; an index
 * whose body is gone counts as a miss (see answerFor); what Deno cached
 * for agents that did not remove it goes too (see removeOrphans). The mark
 * `pruned` says when the last pruning ended; while one runs it claims the
 * next ten minutes, so that one cut off (its agent ended) is taken up again
 * then.
 */
async function pruneCache() {
  if (!cacheDir) return undefined;
  const mark = `${cacheDir}/pruned`;
  const at = (/** @type {number} */ time) => new Date(time);
  try {
    const last = (await Deno.stat(mark).catch(() => undefined))?.mtime;
    if (last && Date.now() - last.getTime() < DAY) return undefined;
    await Deno.writeFile(mark, new Uint8Array());
    const claim = at(Date.now() - DAY + 10 * 60 * 1000);
    await Deno.utime(mark, claim, claim);
  } catch {
    return undefined; // Not ours to tidy.
  }
  // Wrapped, so that the caller gets it without waiting for it.
  return {
    work: (async () => {
      await removeOld(`${cacheDir}/b`, () => true, CACHE_MAX);
      await removeOld(`${cacheDir}/i`);
      await removeOrphans(`${cacheDir}/deno`);
      await Deno.utime(mark, at(Date.now()), at(Date.now())).catch(() => {});
    })(),
  };
}
/**
 * Removes the regular files in `dir` written more than 30 days ago whose
 * names `drop` accepts (all by default); then, when those left hold more
 * than `max` bytes, the oldest until three quarters of `max` are left.
 * @param {string} dir @param {(name: string) => boolean} [drop]
 * @param {number} [max]
 */
async function removeOld(dir, drop = () => true, max = Infinity) {
  const old = Date.now() - 30 * DAY;
  try {
    /** @type {{ path: string, size: number, time: number }[]} */
    const kept = [];
    let total = 0;
    for await (const entry of Deno.readDir(dir)) {
      if (!drop(entry.name)) continue;
      const path = `${dir}/${entry.name}`;
      const info = await Deno.lstat(path);
      if (!info.isFile) continue;
      const time = info.mtime?.getTime() ?? Date.now();
      if (time < old) await Deno.remove(path).catch(() => {});
      else {
        kept.push({ path, size: info.size, time });
        total += info.size;
      }
    }
    if (total <= max) return;
    kept.sort((a, b) => a.time - b.time);
    for (const file of kept) {
      if (total <= max * 0.75) break;
      await Deno.remove(file.path).catch(() => {});
      total -= file.size;
    }
  } catch {
    // Not ours to tidy, or tidied by another agent meanwhile.
  }
}
/**
 * Removes what Deno cached under the loopback port of an agent that did not
 * remove it itself (its script was killed, or an earlier version left it):
 * entries not changed for a day whose port nothing listens on. The port is
 * held while its files go, so that no agent can take it meanwhile (one that
 * tries starts on another port). Skipped where this agent may not listen.
 * @param {string} deno
 */
async function removeOrphans(deno) {
  const old = Date.now() - DAY;
  for (const [sub, name] of PORT_DIRS) {
    const dir = `${deno}/${sub}`;
    /** @type {string[]} */
    let names = [];
    try {
      names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    } catch {
      continue; // Nothing cached there.
    }
    for (const entry of names) {
      const port = Number(/(\d{1,5})$/.exec(entry)?.[1]);
      if (!(port > 0 && port < 65536) || port === ownPort) continue;
      if (name(port) !== entry) continue;
      /** @type {Deno.Listener | undefined} */
      let held;
      try {
        const info = await Deno.lstat(`${dir}/${entry}`);
        if ((info.mtime?.getTime() ?? Date.now()) > old) continue;
        held = Deno.listen({ hostname: "127.0.0.1", port });
        await Deno.remove(`${dir}/${entry}`, { recursive: true });
      } catch {
        // Gone meanwhile, in use, or not ours to listen on or remove.
      } finally {
        held?.close();
      }
    }
  }
}
/** @param {string} key @param {Answer} answer */
async function write(key, answer) {
  if (!cacheDir || !/^[0-9a-f]{64}$/.test(answer.hash)) return;
  // A cache that cannot be written only costs bytes.
  await keep(`${cacheDir}/b/${answer.hash}`, answer.body) &&
    await keep(
      `${cacheDir}/i/${indexName(key)}`,
      utf8.encode(`${answer.hash} ${answer.type} ${key}`),
    );
}

/**
 * Answers one request target (`/<secret>/...`): from the controller, or
 * from the cache when the controller says it is unchanged.
 * @param {string} path @returns {Promise<Answer>}
 */
async function answerFor(path) {
  const key = path.slice(path.indexOf("/", 1) + 1);
  const hit = cached(key);
  let answer = await ask(path, hit?.hash ?? "");
  const kept = answer.status === 304 && hit ? cachedBody(hit) : undefined;
  if (kept) answer = kept;
  else {
    if (answer.status === 304) answer = await ask(path, "");
    if (answer.status === 200) remember(key, answer);
  }
  if (key.startsWith("p/npm/") && answer.type === "application/json") {
    // npm metadata names tarballs at a placeholder: point them here.
    const body = utf8.encode(
      new TextDecoder().decode(answer.body).replaceAll(
        NPM_PLACEHOLDER,
        npmHere,
      ),
    );
    return { ...answer, body };
  }
  return answer;
}

// A small HTTP/1.1 server on loopback: GET requests with keep-alive, which
// is all Deno's module loader and fetch() ask of it. (Deno.serve would cost
// the agent about 10 ms more at start-up.)
const HEAD_END = utf8.encode("\r\n\r\n");
/** @param {Deno.Conn} conn */
async function http(conn) {
  /** @type {Deno.TcpConn} */ (conn).setNoDelay(true);
  const buf = new Uint8Array(16 * 1024);
  let have = 0;
  try {
    while (true) {
      let end = indexOf(buf.subarray(0, have), HEAD_END);
      while (end < 0) {
        if (have === buf.length) return; // headers too long
        const n = await conn.read(buf.subarray(have));
        if (n === null) return;
        have += n;
        end = indexOf(buf.subarray(0, have), HEAD_END);
      }
      const head = new TextDecoder().decode(buf.subarray(0, end));
      buf.copyWithin(0, end + 4, have);
      have -= end + 4;
      const [method, target] = head.slice(0, head.indexOf("\r\n")).split(" ");
      const answer = method === "GET" && target?.startsWith("/")
        ? await answerFor(target)
        : {
          status: 405,
          type: "text/plain",
          hash: "",
          body: utf8.encode("GET only"),
        };
      const close = /^connection:\s*close/im.test(head);
      const top = utf8.encode(
        `HTTP/1.1 ${answer.status} -\r\ncontent-type: ${answer.type}\r\n` +
          `content-length: ${answer.body.length}\r\n` +
          (close ? "connection: close\r\n" : "") + "\r\n",
      );
      // One write: a header segment then a body segment would wait for a
      // delayed ACK (Nagle), 40 ms a request.
      const whole = new Uint8Array(top.length + answer.body.length);
      whole.set(top);
      whole.set(answer.body, top.length);
      for (let done = 0; done < whole.length;) {
        done += await conn.write(whole.subarray(done));
      }
      if (close) return;
    }
  } catch {
    // The client went away.
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}
/** @param {Uint8Array} hay @param {Uint8Array} needle */
function indexOf(hay, needle) {
  outer: for (let i = 0; i <= hay.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (hay[i + j] !== needle[j]) continue outer;
    }
    return i;
  }
  return -1;
}

/**
 * Tells the controller why this agent cannot start, and exits.
 * @param {string} code @param {string} message
 */
async function fail(code, message) {
  await output.write(utf8.encode(`\u0000chopsticks-ready:${boot.nonce}\n`));
  send(FAIL, utf8.encode(JSON.stringify({ code, message })));
  await new Promise((r) => setTimeout(r, 100));
  Deno.exit(1);
}

// The agent's code is written for the controller's Deno: the major
// version must match.
const [mine, theirs] = [Deno.version.deno, boot.version].map((v) =>
  String(v).split(".")[0]
);
if (mine !== theirs) {
  await fail(
    "version",
    `unsupported Deno version ${Deno.version.deno} on the target (this controller runs ${boot.version})`,
  );
}

try {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: boot.port });
  ownPort = boot.port;
  // Tells the agent script, should this agent be killed, that the files
  // under the port are this agent's to remove.
  Deno.writeFileSync(`${ownDir}/bound`, new Uint8Array());
  (async () => {
    for await (const conn of listener) void http(conn);
  })();
} catch (e) {
  await fail(e instanceof Deno.errors.AddrInUse ? "port" : "listen", String(e));
}
await output.write(utf8.encode(`\u0000chopsticks-ready:${boot.nonce}\n`))
  .catch(lost);

const base = `http://127.0.0.1:${boot.port}/${boot.secret}/`;

const agent = await loadAgent();

/**
 * Imports the agent's code: from a file in the cache named by its sha256
 * (a file: URL: no round trip, and parsed faster than a data: URL), or
 * else asked for and written there first. A file of the wrong size or
 * that fails to load (a crash mid-write, an edit) is written again, and
 * this agent loads the code as a data: URL, as it does without a cache.
 * @returns {Promise<{ start: (channel: object) => void }>}
 */
async function loadAgent() {
  const valid = /^[0-9a-f]{64}$/.test(boot.agentHash) && cacheDir;
  const file = valid ? `${cacheDir}/agent-${boot.agentHash}.js` : "";
  const url = "file://" + file.split("/").map(encodeURIComponent).join("/");
  let damaged = false;
  if (file && sizeOf(file) === boot.agentSize) {
    try {
      return usable(await import(url));
    } catch {
      damaged = true;
    }
  }
  const code = await ask(`/${boot.secret}/${boot.agent}`, "");
  if (code.status !== 200 || code.hash !== boot.agentHash) {
    await fail("agent", `cannot load the agent's code: ${code.status}`);
  }
  if (file && await keep(file, code.body)) {
    void pruneAgents(file);
    if (!damaged) return usable(await import(url));
  }
  let binary = "";
  for (let i = 0; i < code.body.length; i += 8192) {
    binary += String.fromCharCode(...code.body.subarray(i, i + 8192));
  }
  return usable(
    await import("data:application/javascript;base64," + btoa(binary)),
  );
}
/**
 * Removes copies of the agent's code of other versions written more than
 * 30 days ago (one still in use is fetched again, once), so that the cache
 * does not keep every version a controller ever had. Run when this agent
 * wrote its own copy, that is when a new version arrived.
 * @param {string} mine
 */
function pruneAgents(mine) {
  return removeOld(
    cacheDir,
    (name) =>
      /^agent-[0-9a-f]{64}\.js$/.test(name) && `${cacheDir}/${name}` !== mine,
  );
}
/** @param {string} file */
function sizeOf(file) {
  try {
    return Deno.statSync(file).size;
  } catch {
    return -1;
  }
}
/**
 * Writes `file` in the cache whole or not at all (a temporary file, then a
 * rename); false when it could not.
 * @param {string} file @param {Uint8Array} body
 */
async function keep(file, body) {
  const tmp = `${cacheDir}/.${crypto.randomUUID()}`;
  try {
    await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(tmp, body);
    await Deno.rename(tmp, file);
    return true;
  } catch {
    await Deno.remove(tmp).catch(() => {});
    return false;
  }
}
/**
 * The pipes the channel runs through, for the agent to widen while a file
 * streams: the input FIFO, the output (a FIFO, or the agent script's
 * stdout), the script's stdout behind a FIFO, and the script's stdin, read
 * by the `dd` relay whose pid the script wrote in `$_d/r`.
 * @returns {string[]}
 */
function pipes() {
  const paths = [Deno.args[0], Deno.args[1]];
  const stdout = `/proc/${Deno.ppid}/fd/1`;
  if (!paths.includes(stdout)) paths.push(stdout);
  try {
    const relay = Deno.readTextFileSync(`${ownDir}/r`).trim();
    if (/^[1-9][0-9]*$/.test(relay)) paths.push(`/proc/${relay}/fd/0`);
  } catch {
    // Not written (yet): the script's stdin keeps its size.
  }
  return paths;
}
/** @param {Record<string, unknown>} mod */
function usable(mod) {
  if (typeof mod.start !== "function") throw new Error("no start()");
  return /** @type {{ start: (channel: object) => void }} */ (mod);
}

agent.start({
  send,
  /** @param {Handler} handler */
  receive(handler) {
    onFrame = handler;
    for (const [kind, body] of early.splice(0)) handler(kind, body);
  },
  /** @param {() => void | Promise<void>} hook */
  onClose(hook) {
    closeHooks.push(hook);
  },
  base,
  cwd: Deno.args[2],
  // Temporary files listed here are removed by the agent script at exit.
  tempList: `${ownDir}/t`,
  // The agent's TMPDIR, as the environment it was given sets it.
  tempDir: Deno.args[4],
  pipes,
  context: boot.context,
});
