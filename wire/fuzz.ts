/**
 * A seeded fuzzer for what the controller reads from agents: the frame
 * reader ({@linkcode FrameReader}), and a message's way from bytes to a
 * value (`checkMsgpack`, the msgpack `Decoder`, then `fromWire`), plus
 * round trips of random values through `toWire`. Inputs are random bytes,
 * valid frames and messages, and mutations of them. The same seed gives the
 * same inputs.
 *
 * An input passes when it is decoded, or is refused with one of the
 * documented errors (`FrameError`, msgpack's `DecodeError`, `RangeError`,
 * `TypeError`), within `maxMillis`; a round trip passes when the value comes
 * back equal. Anything else is a finding, reported with its seed and run.
 *
 *     deno task fuzz --seed 42 --runs 100000
 *
 * @module
 */
import { parseArgs } from "node:util";
import { isDeepStrictEqual } from "node:util";
import { DecodeError, Decoder, Encoder, ExtData } from "@msgpack/msgpack";
import { fromWire, MAX_DEPTH, toWire } from "./_codec.ts";
import {
  checkMsgpack,
  encodeFrame,
  FrameError,
  FrameReader,
} from "./_frame.ts";

/** How to fuzz. */
export interface FuzzOptions {
  /** Seed of the random inputs. Default: 1. */
  seed?: number;
  /** Inputs per target (frames, messages, round trips). Default: 100,000. */
  runs?: number;
  /** Longest time one input may take, in ms. Default: 2,000. */
  maxMillis?: number;
  /** Called every 10,000 runs with the runs done so far. */
  progress?: (runs: number) => void;
}

/** One input that failed. */
export interface Finding {
  /** `frames`, `messages` or `roundTrips`. */
  target: string;
  /** The run (0-based) that found it; with the seed it replays it. */
  run: number;
  /** What went wrong. */
  problem: string;
}

/** What a fuzz run found. */
export interface FuzzReport {
  /** The seed used. */
  seed: number;
  /** Inputs tried per target. */
  runs: number;
  /** Documented refusals seen, by error name. */
  refused: Record<string, number>;
  /** Inputs that decoded to a value. */
  accepted: number;
  /** The slowest input, in ms. */
  slowestMillis: number;
  /** Failures: empty when all is well. */
  findings: Finding[];
}

/** A small, fast, seeded random number generator (mulberry32). */
class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }
}

const DOCUMENTED = [FrameError, DecodeError, RangeError, TypeError];
/** Bytes that start msgpack values with lengths, and other edge bytes. */
const INTERESTING = [
  0x00,
  0x7f,
  0x80,
  0x8f,
  0x90,
  0x9f,
  0xa0,
  0xc0,
  0xc1,
  0xc4,
  0xc6,
  0xc7,
  0xc9,
  0xd4,
  0xd8,
  0xdb,
  0xdc,
  0xdd,
  0xde,
  0xdf,
  0xff,
];
const VIEWS = [
  Int8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
];
const STRINGS = ["", "a", "héllo", "日本", "\u{1F600}", "\ud800", "x\udc00y"];
const KEYS = ["a", "", "constructor", "toString", "0", "\ud800", "k k"];

/** A random value of any type the codec sends, with shared references. */
function randomValue(r: Random, depth: number, pool: object[]): unknown {
  if (depth === 0 && r.chance(0.005)) {
    // Deep nesting, up to the codec's limit.
    let deep: unknown = r.int(9);
    for (let n = r.int(MAX_DEPTH - 2); n > 0; n--) deep = [deep];
    return deep;
  }
  const scalar = depth > 4 || r.chance(0.45);
  if (scalar) {
    switch (r.int(12)) {
      case 0:
        return undefined;
      case 1:
        return null;
      case 2:
        return r.chance(0.5);
      case 3:
        return r.int(2 ** 31) - 2 ** 30;
      case 4:
        return r.pick([0, -0, NaN, Infinity, -Infinity, 2 ** 53, 1e-300]);
      case 5:
        return (r.next() - 0.5) * 1e6;
      case 6: {
        const big = BigInt("0x" + (r.int(2 ** 30) + 1).toString(16)) **
          BigInt(r.int(8) + 1);
        return r.chance(0.5) ? big : -big;
      }
      case 7:
        return r.pick(STRINGS) + r.pick(STRINGS);
      case 8:
        return r.bytes(r.int(40));
      case 9:
        return new Date(r.chance(0.1) ? NaN : r.int(2 ** 40));
      case 10:
        return pool.length ? r.pick(pool) : null;
      default:
        return r.pick([/a+b/gi, /\d{2,}$/m, /[\ud800]/u]);
    }
  }
  const inner = () => randomValue(r, depth + 1, pool);
  const n = r.int(6);
  let made: object;
  switch (r.int(9)) {
    case 0:
      made = Array.from({ length: n }, inner);
      break;
    case 1: {
      const o: Record<string, unknown> = r.chance(0.2)
        ? Object.create(null)
        : {};
      for (let i = 0; i < n; i++) o[r.pick(KEYS) + i] = inner();
      made = o;
      break;
    }
    case 2:
      made = new Map(Array.from({ length: n }, () => [inner(), inner()]));
      break;
    case 3:
      made = new Set(Array.from({ length: n }, inner));
      break;
    case 4: {
      const View = r.pick(VIEWS);
      made = new View(new Uint8Array(r.int(4) * 8).buffer);
      break;
    }
    case 5:
      made = new DataView(r.bytes(r.int(16)).buffer);
      break;
    case 6:
      made = r.bytes(r.int(16)).buffer;
      break;
    case 7: {
      const ErrorClass = r.pick([Error, TypeError, RangeError]);
      const e = r.chance(0.3)
        ? new ErrorClass(r.pick(STRINGS), { cause: inner() })
        : new ErrorClass(r.pick(STRINGS));
      if (r.chance(0.3)) Object.assign(e, { code: inner() });
      made = e;
      break;
    }
    default: {
      // A cycle through an array.
      const a: unknown[] = [];
      a.push(a, inner());
      made = a;
    }
  }
  pool.push(made);
  return made;
}

/** Changes `bytes` in one to four random ways. */
function mutate(r: Random, bytes: Uint8Array, other: Uint8Array): Uint8Array {
  let out: Uint8Array = bytes.slice();
  for (let k = 1 + r.int(4); k > 0; k--) {
    const at = r.int(out.length + 1);
    switch (r.int(7)) {
      case 0: // flip a bit
        if (out.length) out[at % out.length] ^= 1 << r.int(8);
        break;
      case 1: // an interesting byte
        if (out.length) out[at % out.length] = r.pick(INTERESTING);
        break;
      case 2: // insert random bytes
        out = join(
          out.subarray(0, at),
          r.bytes(1 + r.int(8)),
          out.subarray(at),
        );
        break;
      case 3: // delete a range
        out = join(out.subarray(0, at), out.subarray(at + 1 + r.int(8)));
        break;
      case 4: // truncate
        out = out.slice(0, at);
        break;
      case 5: // splice in part of another input
        out = join(out.subarray(0, at), other.subarray(r.int(other.length)));
        break;
      default: // a big length after a length-bearing byte
        out = join(
          out.subarray(0, at),
          new Uint8Array([r.pick([0xdd, 0xdf, 0xc6, 0xdb, 0xc9]), 0xff, 0xff]),
          out.subarray(at),
        );
    }
  }
  return out;
}

/**
 * Changes a wire tree (as `toWire` made it) at one random node: a marker
 * of any type, a marker with data, a bad field, or a node moved elsewhere.
 */
function mutateTree(r: Random, tree: unknown): unknown {
  const nodes: unknown[][] = [];
  const walk = (node: unknown, depth: number) => {
    if (!Array.isArray(node) || depth > 50) return;
    nodes.push(node);
    for (const item of node) walk(item, depth + 1);
  };
  const root = [tree];
  walk(root, 0);
  const node = r.pick(nodes);
  const at = r.int(node.length + 1);
  const replacement = r.pick<() => unknown>([
    () => new ExtData(r.int(20), new Uint8Array(0)),
    () => new ExtData(r.int(16), r.bytes(1 + r.int(4))),
    () => [new ExtData(r.int(16), new Uint8Array(0)), r.int(100) - 50],
    () => [new ExtData(r.int(16), new Uint8Array(0)), "x", r.bytes(r.int(9))],
    () => r.pick(nodes),
    () => ({ ["__proto__" + (r.chance(0.5) ? "" : "x")]: 1 }),
    () => r.pick([-1, 2 ** 40, "Function", "-0x1", new Uint8Array(3)]),
  ])();
  node[at] = replacement;
  return root[0];
}

function join(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const encoder = new Encoder({ maxDepth: MAX_DEPTH + 8 });

/** Decodes a message body as the controller does. */
function readMessage(decoder: Decoder, body: Uint8Array): unknown {
  checkMsgpack(body, MAX_DEPTH + 8);
  const message = decoder.decode(body);
  return Array.isArray(message) ? fromWire(message[2]) : message;
}

/**
 * Runs the fuzzer.
 *
 * @example Usage
 * ```ts
 * import { fuzz } from "./fuzz.ts";
 * const report = fuzz({ seed: 42, runs: 100 });
 * console.log(report.findings.length); // 0
 * ```
 *
 * @param options Seed, runs and the time limit of one input.
 * @returns What was tried and found.
 */
export function fuzz(options: FuzzOptions = {}): FuzzReport {
  const seed = options.seed ?? 1;
  const runs = options.runs ?? 100_000;
  const maxMillis = options.maxMillis ?? 2_000;
  const r = new Random(seed);
  const report: FuzzReport = {
    seed,
    runs,
    refused: {},
    accepted: 0,
    slowestMillis: 0,
    findings: [],
  };
  const decoder = new Decoder();
  let previous: Uint8Array = new Uint8Array([0x90]);
  const timed = (target: string, run: number, fn: () => void) => {
    const start = performance.now();
    try {
      fn();
      report.accepted++;
    } catch (e) {
      if (DOCUMENTED.some((c) => e instanceof c)) {
        const name = (e as Error).name;
        report.refused[name] = (report.refused[name] ?? 0) + 1;
      } else {
        report.findings.push({ target, run, problem: `threw ${e}` });
      }
    }
    const took = performance.now() - start;
    report.slowestMillis = Math.max(report.slowestMillis, took);
    if (took > maxMillis) {
      report.findings.push({ target, run, problem: `took ${took} ms` });
    }
  };
  for (let run = 0; run < runs; run++) {
    // A random value, as a message an agent would send.
    const pool: object[] = [];
    const value = randomValue(r, 0, pool);
    let body: Uint8Array;
    try {
      body = encoder.encode([1, run + 1, toWire(value, "result")]);
    } catch (e) {
      report.findings.push({ target: "roundTrips", run, problem: `${e}` });
      continue;
    }
    timed("roundTrips", run, () => {
      const back = readMessage(decoder, body);
      if (!isDeepStrictEqual(back, value)) {
        throw new Error("the value came back different");
      }
    });
    // The same message, mutated, or random bytes.
    let input: Uint8Array;
    if (r.chance(0.1)) input = r.bytes(r.int(64));
    else if (r.chance(0.3)) {
      try {
        const tree = mutateTree(r, toWire(value, "result"));
        input = encoder.encode([1, run + 1, tree]);
      } catch {
        input = mutate(r, body, previous); // a cycle made by the mutation
      }
    } else input = mutate(r, body, previous);
    previous = body;
    timed("messages", run, () => void readMessage(decoder, input));
    // Frames: valid ones, mutated, pushed in random pieces.
    const frames = join(
      encodeFrame(1, body),
      encodeFrame(r.int(8), input),
      r.chance(0.2) ? r.bytes(r.int(12)) : new Uint8Array(0),
    );
    const stream = r.chance(0.5) ? mutate(r, frames, input) : frames;
    const maxFrame = r.pick([64, 4096, 64 * 1024 * 1024]);
    timed("frames", run, () => {
      const reader = new FrameReader((_kind, got) => {
        if (got.length + 1 > maxFrame) {
          throw new Error(`a frame of ${got.length + 1} bytes passed`);
        }
      }, maxFrame);
      for (let at = 0; at < stream.length;) {
        const size = 1 + r.int(r.chance(0.5) ? 8 : 512);
        reader.push(stream.subarray(at, at + size));
        at += size;
        if (reader.pending > maxFrame + 4) {
          throw new Error(`the reader holds ${reader.pending} bytes`);
        }
      }
    });
    if (run % 10_000 === 9_999) options.progress?.(run + 1);
  }
  return report;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string", default: "1" },
      runs: { type: "string", default: "100000" },
    },
  });
  const seed = Number(values.seed);
  const runs = Number(values.runs);
  if (!Number.isInteger(seed) || !Number.isInteger(runs) || runs < 1) {
    console.error("Usage: deno task fuzz [--seed N] [--runs N]");
    Deno.exit(2);
  }
  const start = performance.now();
  const report = fuzz({
    seed,
    runs,
    progress: (n) => console.error(`fuzz: ${n} runs`),
  });
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  console.log(JSON.stringify({ ...report, seconds }, null, 2));
  Deno.exit(report.findings.length === 0 ? 0 : 1);
}
