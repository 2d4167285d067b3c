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
    return this.#buffered + (this.#need >= 0 ? 4 : 0);
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
