/**
 * The reading half of the value codec: rebuilds values from the trees that
 * `toWire` makes, after a plain msgpack `Decoder` has read them. The tree
 * comes from another host, so every node is checked, and nothing in it is
 * ever called or evaluated.
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

/**
 * Rebuilds a value from a tree decoded by a plain msgpack `Decoder`. A tree
 * without a root marker is plain data: it is returned as itself, without
 * being walked (but to copy its byte arrays, with `hasBytes`). A marked tree
 * is checked and rebuilt (plain arrays and plain objects in place).
 *
 * Byte arrays come out of the decoder as views into the message they came
 * in: each is copied into a buffer of its own, so that a small one does not
 * keep a big message alive and its `buffer` holds its bytes alone.
 *
 * @example Usage
 * ```ts
 * import { Decoder, Encoder } from "@msgpack/msgpack";
 * import { fromWire, toWire } from "./_codec.ts";
 * const bytes = new Encoder().encode(toWire(new Map([[1, 2n]]), "result"));
 * fromWire(new Decoder().decode(bytes)); // Map { 1 => 2n }
 * ```
 *
 * @param tree The decoded tree.
 * @param hasBytes Whether a plain tree may hold byte arrays (as
 * `checkMsgpack` tells): they are copied. (A marked tree's always are.)
 * @returns The value it stands for.
 * @throws {TypeError} The tree is malformed: an unknown or misplaced marker,
 * a node of the wrong shape, a `__proto__` key, a bad regular expression.
 * @throws {RangeError} The tree is over a limit or points outside itself:
 * nesting deeper than `MAX_DEPTH`, a bigint over `MAX_BIGINT_BITS`, a back
 * reference to an object not yet seen, a byte length that is not a multiple
 * of the element size.
 */
export function fromWire(tree: unknown, hasBytes = false): unknown {
  if (!isMarked(tree)) return hasBytes ? ownBytes(tree) : tree;
  if (tree.length !== 2 || markerOf(tree[0]) !== Marker.ROOT) {
    throw malformed("the root node is not [ROOT, body]");
  }
  regexpBudget = MAX_REGEXP_SOURCE;
  return read(tree[1], [], 0);
}

/**
 * Whether a decoded tree is marked (headed by an ext: the codec's ROOT, to
 * be checked and rebuilt), rather than plain data.
 */
export function isMarked(tree: unknown): tree is [ExtData, ...unknown[]] {
  return Array.isArray(tree) && tree[0] instanceof ExtData;
}

/** What is left of MAX_REGEXP_SOURCE for the value being read. */
let regexpBudget = MAX_REGEXP_SOURCE;

/** Rebuilds one node; objects are numbered in `objects` in pre-order. */
function read(node: unknown, objects: unknown[], depth: number): unknown {
  if (typeof node !== "object" || node === null) {
    const type = typeof node;
    if (type === "string" || type === "number" || type === "boolean") {
      return node;
    }
    if (node === null) return null;
    throw malformed(`a value of type ${type} cannot appear`);
  }
  if (node instanceof ExtData) {
    const type = markerOf(node);
    if (type === Marker.UNDEFINED) return undefined;
    if (type === Marker.NEG_ZERO) return -0;
    throw malformed(`marker ${type} cannot stand alone`);
  }
  if (node instanceof Uint8Array) {
    const own = node.slice();
    objects.push(own);
    return own;
  }
  if (Array.isArray(node)) {
    if (node[0] instanceof ExtData) {
      return readTagged(node, markerOf(node[0]), objects, depth);
    }
    checkDepth(depth);
    objects.push(node);
    for (let i = 0; i < node.length; i++) {
      node[i] = read(node[i], objects, depth + 1);
    }
    return node;
  }
  if (Object.getPrototypeOf(node) !== Object.prototype) {
    throw malformed("an object that is not plain cannot appear");
  }
  checkDepth(depth);
  objects.push(node);
  const record = node as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    checkKey(key);
    record[key] = read(record[key], objects, depth + 1);
  }
  return record;
}

/**
 * Copies each byte array of a plain decoded tree (arrays and plain objects,
 * no shared references) into a buffer of its own, in place.
 */
function ownBytes(tree: unknown): unknown {
  if (tree instanceof Uint8Array) return tree.slice();
  const open: unknown[] = [tree];
  while (open.length > 0) {
    const node = open.pop();
    if (typeof node !== "object" || node === null || node instanceof ExtData) {
      continue;
    }
    const record = node as Record<string, unknown>;
    for (const key of Array.isArray(node) ? node.keys() : Object.keys(node)) {
      const value = record[key];
      if (value instanceof Uint8Array) record[key] = value.slice();
      else if (typeof value === "object" && value !== null) open.push(value);
    }
  }
  return tree;
}

/** Rebuilds a node `[ext, ...fields]`. */
function readTagged(
  node: unknown[],
  type: number,
  objects: unknown[],
  depth: number,
): unknown {
  switch (type) {
    case Marker.REF: {
      checkLength(node, 2, "REF");
      const index = node[1];
      if (typeof index !== "number" || !Number.isInteger(index)) {
        throw malformed("a REF node holds no index");
      }
      if (index < 0 || index >= objects.length) {
        throw new RangeError(
          `Cannot read value: REF ${index} points past the ${objects.length} objects seen so far`,
        );
      }
      return objects[index];
    }
    case Marker.BIGINT:
      checkLength(node, 2, "BIGINT");
      return readBigInt(node[1]);
    case Marker.STRING:
      checkLength(node, 2, "STRING");
      return readUtf16(node[1]);
  }
  checkDepth(depth);
  const inner = depth + 1;
  switch (type) {
    case Marker.ARRAY: {
      const out: unknown[] = [];
      objects.push(out);
      for (let i = 1; i < node.length; i++) {
        out.push(read(node[i], objects, inner));
      }
      return out;
    }
    case Marker.OBJECT: {
      if (node.length % 2 !== 0 || typeof node[1] !== "boolean") {
        throw malformed("an OBJECT node is not [OBJECT, nullProto, ...pairs]");
      }
      const out: Record<string, unknown> = node[1] ? Object.create(null) : {};
      objects.push(out);
      for (let i = 2; i < node.length; i += 2) {
        out[readKey(node[i])] = read(node[i + 1], objects, inner);
      }
      return out;
    }
    case Marker.DATE: {
      checkLength(node, 2, "DATE");
      if (typeof node[1] !== "number") {
        throw malformed("a DATE node holds no time");
      }
      return push(objects, new Date(node[1]));
    }
    case Marker.REGEXP: {
      checkLength(node, 3, "REGEXP");
      const source = readString(node[1]);
      const flags = readString(node[2]);
      regexpBudget -= regexpCost(source, flags);
      if (regexpBudget < 0) {
        throw malformed(
          `regular expressions of more than ${MAX_REGEXP_SOURCE} characters in one value (a property escape such as \\p{L} counting 64, or 1,024 with the v flag)`,
        );
      }
      try {
        return push(objects, new RegExp(source, flags));
      } catch {
        throw malformed("a REGEXP node holds an invalid regular expression");
      }
    }
    case Marker.MAP: {
      if (node.length % 2 !== 1) {
        throw malformed("a MAP node has a key without a value");
      }
      const out = new Map();
      objects.push(out);
      for (let i = 1; i < node.length; i += 2) {
        const key = read(node[i], objects, inner);
        out.set(key, read(node[i + 1], objects, inner));
      }
      return out;
    }
    case Marker.SET: {
      const out = new Set();
      objects.push(out);
      for (let i = 1; i < node.length; i++) {
        out.add(read(node[i], objects, inner));
      }
      return out;
    }
    case Marker.ARRAY_BUFFER:
      checkLength(node, 2, "ARRAY_BUFFER");
      return push(objects, readBytes(node[1]).slice().buffer);
    case Marker.VIEW: {
      checkLength(node, 3, "VIEW");
      const view = typeof node[1] === "string" ? VIEWS.get(node[1]) : undefined;
      if (view === undefined) {
        throw malformed("a VIEW node names no known view class");
      }
      const bytes = readBytes(node[2]);
      if (bytes.length % view.size !== 0) {
        throw new RangeError(
          `Cannot read value: a ${
            node[1]
          } of ${bytes.length} bytes is not a whole number of elements`,
        );
      }
      return push(objects, new view.create(bytes.slice().buffer));
    }
    case Marker.ERROR:
      return readError(node, objects, inner);
  }
  throw malformed(`marker ${type} cannot head an array`);
}

/** Rebuilds `[ERROR, name, message, stack, ...pairs]`. */
function readError(node: unknown[], objects: unknown[], depth: number): Error {
  if (node.length < 4 || node.length % 2 !== 0) {
    throw malformed(
      "an ERROR node is not [ERROR, name, message, stack, ...pairs]",
    );
  }
  const name = readString(node[1]);
  const message = readString(node[2]);
  const stack =
    node[3] instanceof ExtData && markerOf(node[3]) === Marker.UNDEFINED
      ? undefined
      : readString(node[3]);
  const error = makeError(name, message);
  objects.push(error);
  if (stack === undefined) delete error.stack;
  else define(error, "stack", stack, false);
  for (let i = 4; i < node.length; i += 2) {
    const key = readKey(node[i]);
    // Set above, as strings: a pair may not set them again (toWire sends
    // none), to a value that code reading an error takes for a string.
    if (key === "name" || key === "message" || key === "stack") {
      throw malformed(`an ERROR node sets its ${key} again`);
    }
    define(error, key, read(node[i + 1], objects, depth), !HIDDEN.has(key));
  }
  return error;
}

const HIDDEN = new Set(["cause", "errors"]);

const ERRORS = new Map<string, new (message: string) => Error>([
  ["Error", Error],
  ["TypeError", TypeError],
  ["RangeError", RangeError],
  ["SyntaxError", SyntaxError],
  ["ReferenceError", ReferenceError],
  ["EvalError", EvalError],
  ["URIError", URIError],
]);

/** Builds an error of the built-in or `Deno.errors` class called `name`, or an Error named `name`. */
function makeError(name: string, message: string): Error {
  if (name === "AggregateError") return new AggregateError([], message);
  const create = ERRORS.get(name) ?? denoError(name);
  if (create !== undefined) return new create(message);
  const error = new Error(message);
  define(error, "name", name, false);
  return error;
}

function denoError(name: string): (new (message: string) => Error) | undefined {
  const errors: object | undefined = globalThis.Deno?.errors;
  if (errors === undefined || !Object.hasOwn(errors, name)) return undefined;
  const create = (errors as Record<string, unknown>)[name];
  return typeof create === "function" && create.prototype instanceof Error
    ? create as new (message: string) => Error
    : undefined;
}

function define(
  target: object,
  key: string,
  value: unknown,
  enumerable: boolean,
) {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable,
    configurable: true,
  });
}

type ViewClass = new (buffer: ArrayBuffer) => ArrayBufferView;
const VIEWS = new Map<string, { create: ViewClass; size: number }>();
for (
  const create of [
    Int8Array,
    Uint8Array,
    Uint8ClampedArray,
    Int16Array,
    Uint16Array,
    Int32Array,
    Uint32Array,
    globalThis.Float16Array,
    Float32Array,
    Float64Array,
    BigInt64Array,
    BigUint64Array,
  ]
) {
  if (create) {
    VIEWS.set(create.name, { create, size: create.BYTES_PER_ELEMENT });
  }
}
VIEWS.set("DataView", { create: DataView, size: 1 });

function readString(node: unknown): string {
  if (typeof node === "string") return node;
  if (
    Array.isArray(node) && node.length === 2 && node[0] instanceof ExtData &&
    markerOf(node[0]) === Marker.STRING
  ) {
    return readUtf16(node[1]);
  }
  throw malformed("a string is missing");
}

function readKey(node: unknown): string {
  const key = readString(node);
  checkKey(key);
  return key;
}

function readUtf16(node: unknown): string {
  const bytes = readBytes(node);
  if (bytes.length % 2 !== 0) {
    throw new RangeError(
      "Cannot read value: a STRING node holds an odd number of bytes",
    );
  }
  let out = "";
  for (let start = 0; start < bytes.length; start += 16_384) {
    const end = Math.min(bytes.length, start + 16_384);
    const codes: number[] = [];
    for (let i = start; i < end; i += 2) {
      codes.push(bytes[i] | (bytes[i + 1] << 8));
    }
    out += String.fromCharCode(...codes);
  }
  return out;
}

function readBigInt(node: unknown): bigint {
  if (typeof node !== "string") {
    throw malformed("a BIGINT node holds no digits");
  }
  if (node.length > MAX_BIGINT_BITS / 4 + 1) {
    throw new RangeError(
      `Cannot read value: a bigint has more than ${MAX_BIGINT_BITS} bits`,
    );
  }
  if (!/^-?[0-9a-f]+$/.test(node)) {
    throw malformed("a BIGINT node holds bad digits");
  }
  return node[0] === "-" ? -BigInt("0x" + node.slice(1)) : BigInt("0x" + node);
}

function readBytes(node: unknown): Uint8Array {
  if (node instanceof Uint8Array) return node;
  throw malformed("bytes are missing");
}

/** Returns the type of a marker, which must carry no data. */
function markerOf(ext: ExtData): number {
  if (!(ext.data instanceof Uint8Array) || ext.data.length !== 0) {
    throw malformed("a marker carries data");
  }
  return ext.type;
}

function checkLength(node: unknown[], length: number, name: string) {
  if (node.length !== length) {
    throw malformed(
      `a ${name} node has ${node.length - 1} fields instead of ${length - 1}`,
    );
  }
}

function checkDepth(depth: number) {
  if (depth >= MAX_DEPTH) {
    throw new RangeError(
      `Cannot read value: nesting is deeper than ${MAX_DEPTH} levels`,
    );
  }
}

function checkKey(key: string) {
  if (key === "__proto__") {
    throw malformed('the key "__proto__" is not allowed');
  }
}

function push<T>(objects: unknown[], value: T): T {
  objects.push(value);
  return value;
}

function malformed(detail: string): TypeError {
  return new TypeError(`Cannot read value: ${detail}`);
}
