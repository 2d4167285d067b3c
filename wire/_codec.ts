/**
 * The value codec: turns the arguments and results of a call into trees that
 * a plain msgpack `Encoder` can write, and rebuilds them on the other side.
 *
 * Plain data (null, booleans, numbers other than -0, well-formed strings,
 * Uint8Array, plain arrays and plain objects, with no shared references)
 * travels as itself, so the common call costs one validating walk and no
 * copy. Anything else makes {@linkcode toWire} build a converted tree,
 * wrapped in a root marker that {@linkcode fromWire} detects with one check.
 * Markers are msgpack ext values ({@linkcode ExtData}); a user value can never
 * hold one, since class instances are refused. The full table is in
 * {@linkcode Marker}.
 *
 * @module
 */
import { ExtData } from "@msgpack/msgpack";
import {
  Marker,
  MAX_BIGINT_BITS,
  MAX_DEPTH,
  MAX_REGEXP_SOURCE,
  regexpCost,
} from "./_codec_markers.ts";

export {
  Marker,
  MAX_BIGINT_BITS,
  MAX_DEPTH,
  MAX_REGEXP_SOURCE,
} from "./_codec_markers.ts";
export { fromWire, isMarked } from "./_codec_read.ts";

const EMPTY = new Uint8Array(0);
const tag = (type: number): ExtData => new ExtData(type, EMPTY);
const ROOT = tag(Marker.ROOT);
const UNDEFINED = tag(Marker.UNDEFINED);
const NEG_ZERO = tag(Marker.NEG_ZERO);
const REF = tag(Marker.REF);
const ARRAY = tag(Marker.ARRAY);
const OBJECT = tag(Marker.OBJECT);
const BIGINT = tag(Marker.BIGINT);
const STRING = tag(Marker.STRING);
const DATE = tag(Marker.DATE);
const REGEXP = tag(Marker.REGEXP);
const MAP = tag(Marker.MAP);
const SET = tag(Marker.SET);
const ARRAY_BUFFER = tag(Marker.ARRAY_BUFFER);
const VIEW = tag(Marker.VIEW);
const ERROR = tag(Marker.ERROR);
const UNDEFINED_ROOT = Object.freeze([ROOT, UNDEFINED]);

/** Returns the class name of a typed array (from its internal slot), or undefined. */
const typedArrayKind = Object.getOwnPropertyDescriptor(
  Object.getPrototypeOf(Uint8Array.prototype),
  Symbol.toStringTag,
)!.get as (this: unknown) => string | undefined;

/** A value that cannot be sent, with the path to it, innermost segment first. */
class Refusal {
  readonly path: string[] = [];
  constructor(
    readonly kind: typeof TypeError | typeof RangeError,
    readonly reason: string,
  ) {}
}

/**
 * Converts `value` to a tree that a plain msgpack `Encoder` can write. Plain
 * data is returned as itself, without a copy.
 *
 * @example Usage
 * ```ts
 * import { toWire } from "./_codec.ts";
 * const args = [1, "a"];
 * toWire(args, "args") === args; // true: plain data needs no conversion
 * ```
 *
 * @param value The value to send.
 * @param where Names the value in error messages, such as `"args"`.
 * @returns The value itself, or a converted tree headed by a root marker.
 * @throws {TypeError} The value holds something that cannot be sent (a
 * function, symbol, Promise, WeakMap, class instance...); the message gives
 * its path, such as `args[1].onDone`.
 * @throws {RangeError} The value nests deeper than {@linkcode MAX_DEPTH} or
 * holds a bigint over {@linkcode MAX_BIGINT_BITS}.
 */
export function toWire(value: unknown, where: string): unknown {
  if (value === undefined) return UNDEFINED_ROOT;
  if (isPlain(value, new Set(), 0)) return value;
  regexpLeft = MAX_REGEXP_SOURCE;
  try {
    return [ROOT, write(value, new Map(), 0)];
  } catch (error) {
    if (!(error instanceof Refusal)) throw error;
    const path = where + joinPath(error.path.reverse());
    throw new error.kind(`Cannot send ${path}: ${error.reason}`);
  }
}

/** What is left of MAX_REGEXP_SOURCE for the value being written. */
let regexpLeft = MAX_REGEXP_SOURCE;

/** Tells whether `value` can travel as itself. */
function isPlain(value: unknown, seen: Set<object>, depth: number): boolean {
  if (typeof value !== "object") {
    if (typeof value === "string") return value.isWellFormed();
    if (typeof value === "number") return value !== 0 || 1 / value > 0;
    return typeof value === "boolean";
  }
  if (value === null) return true;
  if (depth === MAX_DEPTH || seen.has(value)) return false;
  seen.add(value);
  const proto = Object.getPrototypeOf(value);
  if (proto === Object.prototype) {
    const record = value as Record<string, unknown>;
    for (const key in record) {
      if (key === "__proto__" || !key.isWellFormed()) return false;
      if (!isPlain(record[key], seen, depth + 1)) return false;
    }
    return true;
  }
  if (proto === Array.prototype && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!isPlain(value[i], seen, depth + 1)) return false;
    }
    return true;
  }
  return proto === Uint8Array.prototype;
}

/** Converts one value; objects are numbered in `ids` in pre-order. */
function write(value: unknown, ids: Map<object, number>, depth: number) {
  switch (typeof value) {
    case "string":
      return writeString(value);
    case "number":
      return value === 0 && 1 / value < 0 ? NEG_ZERO : value;
    case "boolean":
      return value;
    case "undefined":
      return UNDEFINED;
    case "bigint":
      return writeBigInt(value);
    case "function":
      throw new Refusal(
        TypeError,
        "a function cannot be sent; send data and export the function instead",
      );
    case "symbol":
      throw new Refusal(TypeError, "a symbol cannot be sent");
  }
  if (value === null) return null;
  const id = ids.get(value as object);
  if (id !== undefined) return [REF, id];
  if (depth === MAX_DEPTH) {
    throw new Refusal(RangeError, `nesting is deeper than ${MAX_DEPTH} levels`);
  }
  ids.set(value as object, ids.size);
  return writeObject(value as object, ids, depth + 1);
}

function writeObject(value: object, ids: Map<object, number>, depth: number) {
  const proto = Object.getPrototypeOf(value);
  if (Array.isArray(value)) {
    if (proto !== Array.prototype) {
      throw new Refusal(TypeError, describe(value, proto));
    }
    const out = new Array(value.length);
    let i = 0;
    try {
      for (; i < value.length; i++) out[i] = write(value[i], ids, depth);
    } catch (error) {
      throw withSegment(error, `[${i}]`);
    }
    return out[0] instanceof ExtData ? [ARRAY, ...out] : out;
  }
  if (proto === Object.prototype || proto === null) {
    return writeRecord(value as Record<string, unknown>, proto, ids, depth);
  }
  if (proto === Map.prototype) {
    return writeMap(value as Map<unknown, unknown>, ids, depth);
  }
  if (proto === Set.prototype) {
    const out: unknown[] = [SET];
    try {
      for (const item of value as Set<unknown>) {
        out.push(write(item, ids, depth));
      }
    } catch (error) {
      throw withSegment(error, `.values()[${out.length - 1}]`);
    }
    return out;
  }
  if (proto === Date.prototype) return [DATE, (value as Date).getTime()];
  if (proto === RegExp.prototype) {
    const { source, flags } = value as RegExp;
    // What the receiver accepts (see fromWire): refused here, with a path.
    regexpLeft -= regexpCost(source, flags);
    if (regexpLeft < 0) {
      throw new Refusal(
        RangeError,
        `regular expressions of more than ${MAX_REGEXP_SOURCE} characters in one value (a property escape such as \\p{L} counting 64, or 1,024 with the v flag) cannot be sent`,
      );
    }
    return [REGEXP, writeString(source), flags];
  }
  if (proto === ArrayBuffer.prototype) {
    return [ARRAY_BUFFER, new Uint8Array(value as ArrayBuffer)];
  }
  const kind = proto === DataView.prototype
    ? "DataView"
    : typedArrayKind.call(value);
  if (kind !== undefined) {
    const view = value as ArrayBufferView;
    if (kind === "Uint8Array") return view;
    return [
      VIEW,
      kind,
      new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
    ];
  }
  if (value instanceof Error) return writeError(value, ids, depth);
  throw new Refusal(TypeError, describe(value, proto));
}

function writeMap(
  value: Map<unknown, unknown>,
  ids: Map<object, number>,
  depth: number,
) {
  const out: unknown[] = [MAP];
  let key: unknown;
  try {
    for (const entry of value) {
      key = entry[0];
      out.push(write(key, ids, depth));
      out.push(write(entry[1], ids, depth));
    }
  } catch (error) {
    const i = (out.length - 1) >> 1;
    const name = describeKey(key);
    throw withSegment(
      error,
      out.length % 2 === 1
        ? `.keys()[${i}]`
        : name === undefined
        ? `.values()[${i}]`
        : `.get(${name})`,
    );
  }
  return out;
}

/** Spells a Map key the way it would be written in code, if it is a primitive. */
function describeKey(key: unknown): string | undefined {
  switch (typeof key) {
    case "string":
      return key.length > 40 ? undefined : JSON.stringify(key);
    case "bigint":
      return `${key}n`;
    case "number":
      return Object.is(key, -0) ? "-0" : String(key);
    case "boolean":
    case "undefined":
      return String(key);
  }
  return key === null ? "null" : undefined;
}

function writeRecord(
  value: Record<string, unknown>,
  proto: object | null,
  ids: Map<object, number>,
  depth: number,
) {
  const keys = Object.keys(value);
  let pairs = proto === null;
  for (const key of keys) {
    if (key === "__proto__") throw withSegment(PROTO_KEY(), keySegment(key));
    if (!key.isWellFormed()) pairs = true;
  }
  let key = "";
  try {
    if (pairs) {
      const out: unknown[] = [OBJECT, proto === null];
      for (key of keys) {
        out.push(writeString(key), write(value[key], ids, depth));
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    for (key of keys) out[key] = write(value[key], ids, depth);
    return out;
  } catch (error) {
    throw withSegment(error, keySegment(key));
  }
}

function writeError(value: Error, ids: Map<object, number>, depth: number) {
  const { name, message, stack } = value;
  const out: unknown[] = [
    ERROR,
    writeString(typeof name === "string" ? name : "Error"),
    writeString(typeof message === "string" ? message : ""),
    typeof stack === "string" ? writeString(stack) : UNDEFINED,
  ];
  const keys = Object.keys(value).filter((key) => !ERROR_FIELDS.has(key));
  if (Object.hasOwn(value, "errors")) keys.unshift("errors");
  if (Object.hasOwn(value, "cause")) keys.unshift("cause");
  let key = "";
  try {
    for (key of keys) {
      if (key === "__proto__") throw PROTO_KEY();
      out.push(writeString(key), write(Reflect.get(value, key), ids, depth));
    }
  } catch (error) {
    throw withSegment(error, keySegment(key));
  }
  return out;
}

const PROTO_KEY = () =>
  new Refusal(TypeError, 'the key "__proto__" cannot be sent');
const ERROR_FIELDS = new Set(["name", "message", "stack", "cause", "errors"]);

function writeString(value: string): unknown {
  if (value.isWellFormed()) return value;
  const bytes = new Uint8Array(value.length * 2);
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    bytes[2 * i] = code & 0xff;
    bytes[2 * i + 1] = code >> 8;
  }
  return [STRING, bytes];
}

function writeBigInt(value: bigint): unknown {
  const hex = value < 0n ? "-" + (-value).toString(16) : value.toString(16);
  if (hex.length > MAX_BIGINT_BITS / 4 + 1) {
    throw new Refusal(
      RangeError,
      `a bigint of more than ${MAX_BIGINT_BITS} bits cannot be sent`,
    );
  }
  return [BIGINT, hex];
}

/** Adds a path segment to a refusal on its way out. */
function withSegment(error: unknown, segment: string): unknown {
  if (error instanceof Refusal) error.path.push(segment);
  return error;
}

/** Joins path segments, eliding the middle of a long path. */
function joinPath(segments: string[]): string {
  if (segments.length <= 20) return segments.join("");
  return `${segments.slice(0, 10).join("")}…${segments.slice(-9).join("")}`;
}

/** Returns `.key` for an identifier, `["key"]` otherwise. */
function keySegment(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key)
    ? `.${key}`
    : `[${JSON.stringify(key)}]`;
}

const REFUSED_KINDS = new Map<unknown, string>([
  [Promise.prototype, "a Promise cannot be sent; await it and send its result"],
  [WeakMap.prototype, "a WeakMap cannot be sent"],
  [WeakSet.prototype, "a WeakSet cannot be sent"],
  [WeakRef.prototype, "a WeakRef cannot be sent"],
]);

/** Says why an object of an unsupported class cannot be sent. */
function describe(value: object, proto: object | null): string {
  const known = REFUSED_KINDS.get(proto);
  if (known !== undefined) return known;
  if (value instanceof Promise) return REFUSED_KINDS.get(Promise.prototype)!;
  const ctor = (proto as { constructor?: unknown } | null)?.constructor;
  const name = typeof ctor === "function" && ctor.prototype === proto
    ? ctor.name
    : "";
  return name
    ? `an instance of class ${name} cannot be sent; send a plain object instead`
    : "an object with a custom prototype cannot be sent; send a plain object instead";
}
