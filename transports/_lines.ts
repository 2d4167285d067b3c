/**
 * Reads a process's stdout as lines and picks out the ones that hold a
 * marker; everything else (what a login shell prints, say) goes on to the
 * host's output. What it reads is bounded, and each byte is searched once.
 *
 * @module
 */
import type { OutputLines } from "../tunnel/_output.ts";

const encoder = new TextEncoder();

/** The stream held more than the reader's limit. */
export class TooMuchOutput extends Error {
  override name = "TooMuchOutput";
}

/** Marker lines from a byte stream. */
export class LineReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  /** The start of a line whose end has not come yet. */
  #partial: string[] = [];
  /** What was read and not yet searched for a newline. */
  #text = "";
  #noise: OutputLines;
  #marker: string;
  #left: number;
  #done = false;

  /**
   * Reads `stream`; what is not a marker line goes to `noise`. Past `max`
   * bytes read in all, `next()` throws `TooMuchOutput`.
   */
  constructor(
    stream: ReadableStream<Uint8Array>,
    noise: OutputLines,
    marker: string,
    max: number,
  ) {
    this.#reader = stream.getReader();
    this.#noise = noise;
    this.#marker = marker;
    this.#left = max;
  }

  /** The next marker line without its marker, or null at the end. */
  async next(): Promise<string | null> {
    for (;;) {
      const at = this.#text.indexOf("\n");
      if (at >= 0) {
        this.#partial.push(this.#text.slice(0, at));
        const line = this.#partial.join("");
        this.#partial = [];
        this.#text = this.#text.slice(at + 1);
        const found = line.indexOf(this.#marker);
        if (found >= 0) {
          // What came before, on the same line, is noise without a newline.
          if (found > 0) {
            this.#noise.push(encoder.encode(line.slice(0, found) + "\n"));
          }
          return line.slice(found + this.#marker.length);
        }
        this.#noise.push(encoder.encode(line + "\n"));
        continue;
      }
      // No newline: the text is the start of a line, never searched again.
      if (this.#text) this.#partial.push(this.#text);
      this.#text = "";
      if (this.#done) {
        const rest = this.#partial.join("");
        this.#partial = [];
        if (rest) this.#noise.push(encoder.encode(rest));
        this.#noise.end();
        return null;
      }
      const { value, done } = await this.#reader.read().catch(() => ({
        value: undefined,
        done: true,
      }));
      if (done || value === undefined) {
        this.#done = true;
        continue;
      }
      this.#left -= value.length;
      if (this.#left < 0) {
        await this.cancel();
        throw new TooMuchOutput("too much output");
      }
      this.#text = this.#decoder.decode(value, { stream: true });
    }
  }

  /** Stops reading and releases the stream. */
  async cancel(): Promise<void> {
    this.#done = true;
    await this.#reader.cancel().catch(() => {});
  }
}
