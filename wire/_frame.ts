/**
 * Length-prefixed framing: `[u32 big-endian length][payload]`.
 *
 * @module
 */
import { MAX_FRAME } from "./_protocol.ts";

/** Thrown when the byte stream breaks the framing rules. */
export class FrameError extends Error {
  override name = "FrameError";
}

/** Builds one frame of `kind` around `body`. */
export function encodeFrame(kind: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + body.length);
  const view = new DataView(frame.buffer);
  view.setUint32(0, body.length + 1);
  frame[4] = kind;
  frame.set(body, 5);
  return frame;
}

/**
 * Splits a byte stream into frames. Feed chunks with {@linkcode push}; each
 * complete frame is handed to `onFrame` as `(kind, body)`. Never allocates
 * more than `maxFrame` bytes for one frame, and stops at the first bad frame.
 */
export class FrameReader {
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #need = -1;
  /** Bytes of the frame being read that went into a reserved buffer. */
  #reserved = 0;
  #onFrame: (kind: number, body: Uint8Array) => void;
  #maxFrame: number;

  constructor(
    onFrame: (kind: number, body: Uint8Array) => void,
    maxFrame: number = MAX_FRAME,
  ) {
    this.#onFrame = onFrame;
    this.#maxFrame = maxFrame;
  }

  /** Bytes received that do not yet form a whole frame. */
  get pending(): number {
    return this.#buffered + this.#reserved + (this.#need >= 0 ? 4 : 0);
  }

  /** Adds bytes; throws {@linkcode FrameError} on a bad length. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    while (true) {
      if (this.#need < 0) {
        if (this.#buffered < 4) return;
        const head = this.#take(4);
        const length = new DataView(head.buffer, head.byteOffset, 4)
          .getUint32(0);
        if (length === 0 || length > this.#maxFrame) {
          throw new FrameError(
            `Cannot read frame: length ${length} is outside 1..${this.#maxFrame}`,
          );
        }
        this.#need = length;
      }
      if (this.#buffered < this.#need) return;
      const payload = this.#take(this.#need);
      this.#need = -1;
      this.#onFrame(payload[0], payload.subarray(1));
    }
  }

  /**
   * When the frame being read still lacks at least `min` bytes and is no
   * bigger than `max`: a buffer for the whole frame (its kind byte first)
   * that holds what was buffered of it, and how many bytes that is. The
   * caller reads the rest straight into it and hands it to
   * {@linkcode complete}: a big frame is then not gathered from many reads
   * and copied again. (`max` bounds what a length prefix alone makes this
   * side allocate; a bigger frame is buffered as it comes.) The frame is
   * made in `spare` when that is big enough: a buffer whose frame was used
   * up.
   */
  reserve(
    min: number,
    max: number,
    spare?: ArrayBuffer,
  ): { frame: Uint8Array; have: number } | undefined {
    if (
      this.#need < 0 || this.#need > max || this.#need - this.#buffered < min
    ) return undefined;
    const frame = spare && spare.byteLength >= this.#need
      ? new Uint8Array(spare, 0, this.#need)
      : new Uint8Array(this.#need);
    let have = 0;
    for (const chunk of this.#chunks) {
      frame.set(chunk, have);
      have += chunk.length;
    }
    this.#chunks = [];
    this.#buffered = 0;
    this.#reserved = have;
    return { frame, have };
  }

  /** Hands on a frame from {@linkcode reserve}, filled. */
  complete(frame: Uint8Array): void {
    if (this.#need !== frame.length) {
      throw new FrameError(
        `Cannot complete a frame of ${frame.length} bytes: ${this.#need} were due`,
      );
    }
    this.#need = -1;
    this.#reserved = 0;
    this.#onFrame(frame[0], frame.subarray(1));
  }

  #take(n: number): Uint8Array {
    const first = this.#chunks[0];
    this.#buffered -= n;
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0];
      const part = Math.min(chunk.length, n - at);
      out.set(chunk.subarray(0, part), at);
      at += part;
      if (part === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part);
    }
    return out;
  }
}

/** Bytes after a msgpack head byte that hold no items: [fixed, length field]. */
function headSize(b: number): [number, number] {
  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
    return [0, 0];
  }
  if (b >= 0xa0 && b <= 0xbf) return [b & 0x1f, 0];
  switch (b) {
    case 0xc4: // bin 8, 16, 32
    case 0xd9: // str 8, 16, 32
      return [0, 1];
    case 0xc5:
    case 0xda:
      return [0, 2];
    case 0xc6:
    case 0xdb:
      return [0, 4];
    case 0xc7: // ext 8, 16, 32: a type byte after the length
      return [1, 1];
    case 0xc8:
      return [1, 2];
    case 0xc9:
      return [1, 4];
    case 0xcc:
    case 0xd0:
      return [1, 0];
    case 0xcd:
    case 0xd1:
      return [2, 0];
    case 0xca:
    case 0xce:
    case 0xd2:
      return [4, 0];
    case 0xcb:
    case 0xcf:
    case 0xd3:
      return [8, 0];
    case 0xd4: // fixext 1, 2, 4, 8, 16
      return [2, 0];
    case 0xd5:
      return [3, 0];
    case 0xd6:
      return [5, 0];
    case 0xd7:
      return [9, 0];
    case 0xd8:
      return [17, 0];
  }
  return [-1, 0];
}

/**
 * Checks that `bytes` hold exactly one well-formed msgpack value, with
 * containers nested at most `maxDepth` deep, before a decoder sees them. A
 * decoder allocates each array as its header announces it, so a few bytes
 * claiming huge lengths could make it allocate gigabytes; after this check
 * every announced item is known to be there, so decoding allocates in
 * proportion to the input. Reads the bytes once and allocates only the
 * stack of open containers.
 *
 * @example Usage
 * ```ts
 * import { checkMsgpack } from "./_frame.ts";
 * checkMsgpack(new Uint8Array([0x91, 0x01]), 10); // [1]: fine, plain
 * ```
 *
 * @param bytes One message.
 * @param maxDepth The most containers one value may be nested in.
 * @returns What the value holds besides plain data: binary data (msgpack
 * bin: decoded, a view into `bytes`; see `fromWire`'s `hasBytes`), and ext
 * types (which only a marked value tree may hold).
 * @throws {FrameError} The bytes are not one msgpack value, are nested too
 * deep, or claim more items than they hold.
 */
export function checkMsgpack(
  bytes: Uint8Array,
  maxDepth: number,
): MessageShape {
  const shape = { bytes: false, exts: false };
  const end = bytes.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, end);
  // Items still to read in each open container; the bottom is the value.
  const left: number[] = [1];
  let at = 0;
  while (left.length > 0) {
    const top = left.length - 1;
    if (left[top] === 0) {
      left.pop();
      continue;
    }
    left[top]--;
    if (at >= end) throw bad("it ends inside a value");
    const b = bytes[at++];
    let items = -1;
    if ((b >= 0x80 && b <= 0x9f) || (b >= 0xdc && b <= 0xdf)) {
      if (b <= 0x8f) items = (b & 0x0f) * 2;
      else if (b <= 0x9f) items = b & 0x0f;
      else {
        const wide = b === 0xdd || b === 0xdf;
        if (at + (wide ? 4 : 2) > end) throw bad("it ends inside a header");
        items = wide ? view.getUint32(at) : view.getUint16(at);
        at += wide ? 4 : 2;
        if (b >= 0xde) items *= 2;
      }
      if (left.length > maxDepth) {
        throw bad(`it is nested deeper than ${maxDepth} levels`);
      }
      // Every item takes at least one byte.
      if (items > end - at) {
        throw bad(`a header claims ${items} items in ${end - at} bytes`);
      }
      if (items > 0) left.push(items);
      continue;
    }
    const [fixed, field] = headSize(b);
    if (fixed < 0) throw bad(`byte 0x${b.toString(16)} starts no value`);
    if (b >= 0xc4 && b <= 0xc6) shape.bytes = true;
    else if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) {
      shape.exts = true;
    }
    if (at + field > end) throw bad("it ends inside a header");
    const length = field === 0
      ? 0
      : field === 1
      ? bytes[at]
      : field === 2
      ? view.getUint16(at)
      : view.getUint32(at);
    at += field + fixed + length;
    if (at > end) throw bad("a value runs past the end");
  }
  if (at !== end) throw bad(`${end - at} bytes follow the value`);
  return shape;
}

/** What a message holds besides plain data (see `checkMsgpack`). */
export interface MessageShape {
  /** Binary data (msgpack bin). */
  bytes: boolean;
  /** Ext types (fixext, ext 8/16/32). */
  exts: boolean;
}

function bad(detail: string): FrameError {
  return new FrameError(`Cannot read message: ${detail}`);
}
