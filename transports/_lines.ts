/**
 * Reads a process's stdout as lines and picks out the ones that hold a
 * marker; everything else (what a login shell prints, say) goes on to the
 * host's output.
 *
 * @module
 */
import type { OutputLines } from "../tunnel/_output.ts";

const encoder = new TextEncoder();

/** Marker lines from a byte stream. */
export class LineReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  #buffer = "";
  #noise: OutputLines;
  #marker: string;
  #done = false;

  /** Reads `stream`; what is not a marker line goes to `noise`. */
  constructor(
    stream: ReadableStream<Uint8Array>,
    noise: OutputLines,
    marker: string,
  ) {
    this.#reader = stream.getReader();
    this.#noise = noise;
    this.#marker = marker;
  }

  /** The next marker line without its marker, or null at the end. */
  async next(): Promise<string | null> {
    for (;;) {
      const at = this.#buffer.indexOf("\n");
      if (at >= 0) {
        const line = this.#buffer.slice(0, at);
        this.#buffer = this.#buffer.slice(at + 1);
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
      if (this.#done) {
        if (this.#buffer) this.#noise.push(encoder.encode(this.#buffer));
        this.#buffer = "";
        this.#noise.end();
        return null;
      }
      const { value, done } = await this.#reader.read().catch(() => ({
        value: undefined,
        done: true,
      }));
      if (done) this.#done = true;
      else this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Stops reading and releases the stream. */
  async cancel(): Promise<void> {
    this.#done = true;
    await this.#reader.cancel().catch(() => {});
  }
}
