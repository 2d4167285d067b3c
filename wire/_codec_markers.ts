/**
 * The limits and the msgpack ext types of the value codec, shared by its
 * writer (`_codec.ts`) and its reader (`_codec_read.ts`).
 *
 * @module
 */

/** Deepest nesting of containers that `toWire` sends and `fromWire` accepts. */
export const MAX_DEPTH = 1000;

/** Largest bigint, in bits, that `toWire` sends and `fromWire` accepts. */
export const MAX_BIGINT_BITS = 1_048_576;

/**
 * Characters of regular expression source one value may hold in all, as
 * `toWire` sends and `fromWire` accepts, a property escape counting as many
 * more (see {@linkcode regexpCost}). Building a RegExp costs far more than
 * its size (`\p{L}` about 40 us): 64 MiB of them would hold the receiver
 * for minutes.
 */
export const MAX_REGEXP_SOURCE = 16 * 1024;

/**
 * What a regular expression counts against {@linkcode MAX_REGEXP_SOURCE}:
 * its length, and for each property escape (`\p{...}`, `\P{...}`) 64 more,
 * or 1,024 with the `v` flag, where a property may be one of strings
 * (`\p{RGI_Emoji}` takes about 1.3 ms to build, `\p{L}` 40-80 us). A value
 * then takes at most about 25 ms to rebuild. (Any `\p{` counts, even an
 * escaped one: counting more than there are is safe.)
 */
export function regexpCost(source: string, flags: string): number {
  let escapes = 0;
  for (
    let at = source.indexOf("\\");
    at >= 0;
    at = source.indexOf("\\", at + 1)
  ) {
    const next = source[at + 1];
    if ((next === "p" || next === "P") && source[at + 2] === "{") escapes++;
  }
  return source.length + escapes * (flags.includes("v") ? 1024 : 64);
}

/**
 * The msgpack ext types used as markers. `UNDEFINED` and `NEG_ZERO` stand
 * alone; `ROOT` heads the whole tree, `[ROOT, body]`; every other type heads
 * an array, `[ext, ...fields]`, called a tagged node. An array is a tagged
 * node exactly when its first item is an ext. Each object (plain or not,
 * Uint8Array included) is numbered by its first appearance in pre-order on
 * both sides, so a later appearance is sent as `[REF, number]`. A plain
 * Uint8Array is msgpack bin; plain arrays and plain objects are msgpack
 * arrays and maps.
 *
 * | type | node | value |
 * |---|---|---|
 * | 0 ROOT | `[ROOT, body]` | the body holds markers |
 * | 1 UNDEFINED | ext alone | `undefined` (also array holes) |
 * | 2 NEG_ZERO | ext alone | `-0` |
 * | 3 REF | `[REF, index]` | the object numbered `index` (pre-order, from 0) |
 * | 4 ARRAY | `[ARRAY, ...items]` | an array whose first item is an ext |
 * | 5 OBJECT | `[OBJECT, nullProto, key, value, ...]` | object with a null prototype or ill-formed keys |
 * | 6 BIGINT | `[BIGINT, hex]` | bigint, hex digits with an optional `-` |
 * | 7 STRING | `[STRING, bin]` | string with lone surrogates, UTF-16LE |
 * | 8 DATE | `[DATE, ms]` | Date (`NaN` for an invalid one) |
 * | 9 REGEXP | `[REGEXP, source, flags]` | RegExp |
 * | 10 MAP | `[MAP, key, value, ...]` | Map |
 * | 11 SET | `[SET, ...values]` | Set |
 * | 12 ARRAY_BUFFER | `[ARRAY_BUFFER, bin]` | ArrayBuffer |
 * | 13 VIEW | `[VIEW, kind, bin]` | typed array or DataView (`kind` is its class name), little-endian bytes |
 * | 14 ERROR | `[ERROR, name, message, stack, key, value, ...]` | Error |
 */
export const Marker = {
  ROOT: 0,
  UNDEFINED: 1,
  NEG_ZERO: 2,
  REF: 3,
  ARRAY: 4,
  OBJECT: 5,
  BIGINT: 6,
  STRING: 7,
  DATE: 8,
  REGEXP: 9,
  MAP: 10,
  SET: 11,
  ARRAY_BUFFER: 12,
  VIEW: 13,
  ERROR: 14,
} as const;
