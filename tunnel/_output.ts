/**
 * Splits an agent's output into lines and hands each to a sink, keeping the
 * last few for error messages. Invalid UTF-8 becomes U+FFFD and never stops
 * the flow; a last line without a newline is flushed at the end.
 *
 * @module
 */

/** Receives each line of a host's output. */
export type OutputSink = (line: string, host: string) => void;

const TAIL = 20;
const MAX_LINE = 64 * 1024;
const stderrEncoder = new TextEncoder();

/** A colour (SGR) sequence, or a control character other than tab. */
// deno-lint-ignore no-control-regex
const CONTROLS = /\x1b\[[0-9;:]*m|[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/**
 * `line` made safe for a terminal: colours (SGR sequences, `ESC [ ... m`)
 * stay, and are reset at the end of the line; every other control
 * character is shown in caret notation (`ESC` as `^[`, BEL as `^G`, DEL as
 * `^?`, C1 controls as `M-^[`-style), so that what a host prints cannot
 * move the cursor, retitle the window, write the clipboard or fake a
 * prompt on the controller's terminal.
 */
export function printable(line: string): string {
  let coloured = false;
  const out = line.replace(
    CONTROLS,
    (c) => {
      if (c.length > 1) {
        coloured = true;
        return c;
      }
      const code = c.charCodeAt(0);
      if (code === 0x7f) return "^?";
      if (code >= 0x80) return "M-^" + String.fromCharCode(code - 0x80 + 0x40);
      return "^" + String.fromCharCode(code + 0x40);
    },
  );
  return coloured ? out + "\x1b[0m" : out;
}

/** `text` of any number of lines, each made {@linkcode printable}. */
export function printableText(text: string): string {
  return text.includes("\n")
    ? text.split("\n").map(printable).join("\n")
    : printable(text);
}

/**
 * The default sink: `[host] line` on the controller's stderr, the line
 * made {@linkcode printable}.
 */
export const prefixToStderr: OutputSink = (line, host) => {
  const bytes = stderrEncoder.encode(`[${host}] ${printable(line)}\n`);
  for (let done = 0; done < bytes.length;) {
    done += Deno.stderr.writeSync(bytes.subarray(done));
  }
};

/** Line splitter for one output stream. */
export class OutputLines {
  #decoder = new TextDecoder("utf-8", { fatal: false });
  #partial = "";
  #tail: string[] = [];
  #sink: OutputSink;
  #host: string;
  #filter: ((line: string) => string | undefined) | undefined;

  /**
   * `filter`, when given, sees each line first and returns what to keep
   * (in the tail and for the sink), or undefined to drop the line: a
   * transport hides its own markers this way.
   */
  constructor(
    host: string,
    sink: OutputSink,
    filter?: (line: string) => string | undefined,
  ) {
    this.#host = host;
    this.#sink = sink;
    this.#filter = filter;
  }

  /** The last lines seen, oldest first. */
  get tail(): string[] {
    return [...this.#tail];
  }

  /** Feeds bytes. Only what they hold is searched for line breaks. */
  push(chunk: Uint8Array): void {
    const text = this.#decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", start)) {
      this.#emit(this.#partial + text.slice(start, at));
      this.#partial = "";
      start = at + 1;
    }
    this.#partial += text.slice(start);
    while (this.#partial.length > MAX_LINE) {
      this.#emit(this.#partial.slice(0, MAX_LINE));
      this.#partial = this.#partial.slice(MAX_LINE);
    }
  }

  /** Flushes a last line that has no newline. */
  end(): void {
    const rest = this.#partial + this.#decoder.decode();
    this.#partial = "";
    if (rest !== "") this.#emit(rest);
  }

  /**
   * Reads `stream` to its end, or until `stop` aborts; resolves when
   * flushed.
   */
  async drain(
    stream: ReadableStream<Uint8Array>,
    stop?: AbortSignal,
  ): Promise<void> {
    const reader = stream.getReader();
    const cancel = () => void reader.cancel().catch(() => {});
    stop?.addEventListener("abort", cancel, { once: true });
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        this.push(value);
      }
    } catch {
      // The process went away; what was read is kept.
    } finally {
      stop?.removeEventListener("abort", cancel);
    }
    this.end();
  }

  #emit(raw: string): void {
    // A long line that came whole in one read is cut as an unfinished one is.
    for (; raw.length > MAX_LINE; raw = raw.slice(MAX_LINE)) {
      this.#emitLine(raw.slice(0, MAX_LINE));
    }
    this.#emitLine(raw);
  }

  #emitLine(raw: string): void {
    const whole = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    const line = this.#filter ? this.#filter(whole) : whole;
    if (line === undefined) return;
    this.#tail.push(line);
    if (this.#tail.length > TAIL) this.#tail.shift();
    try {
      this.#sink(line, this.#host);
    } catch {
      // A failing sink must not stop the flow.
    }
  }
}
