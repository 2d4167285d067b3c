/**
 * Live progress on a terminal: one line on stderr, redrawn in place as
 * hosts start and end, with the agents' own output lines kept above it.
 *
 * @module
 */
import type { HostEvent } from "../group/run_options.ts";
import type { Counts } from "./_outcome.ts";
import { renderProgress } from "./_render.ts";
import { printable } from "../tunnel/_output.ts";

/** Where the progress line goes. */
export interface ProgressSink {
  /** Writes text to the terminal (stderr). */
  write(text: string): void;
  /** Terminal width in columns. */
  columns: number;
}

const CLEAR = "\r\x1b[2K";
/** The signals on which the library closes the tunnels and the run ends. */
const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** Tracks host states and redraws the progress line. */
export class Progress {
  #label: string;
  #sink: ProgressSink;
  #counts: Counts;
  #started = performance.now();
  #timer: ReturnType<typeof setInterval>;
  #shown = false;
  #ended = false;
  #running = new Set<string>();

  /** Starts showing progress of `total` hosts. */
  constructor(label: string, total: number, sink: ProgressSink) {
    this.#label = label;
    this.#sink = sink;
    this.#counts = { total, ok: 0, failed: 0, running: 0 };
    this.#timer = setInterval(() => this.#draw(), 200);
    Deno.unrefTimer(this.#timer);
    // Added before any tunnel opens, so it runs before the library's own
    // listener says on stderr that it closes the tunnels.
    for (const signal of SIGNALS) Deno.addSignalListener(signal, this.#clear);
    this.#draw();
  }

  /** The counts so far. */
  get counts(): Counts {
    return { ...this.#counts };
  }

  /** Takes a host's event from the group. */
  onHost = (event: HostEvent): void => {
    const c = this.#counts;
    if (event.state === "running") this.#running.add(event.host);
    else {
      // A skipped (unreachable) host fails without running first.
      this.#running.delete(event.host);
      if (event.state === "ok") c.ok++;
      else c.failed++;
    }
    c.running = this.#running.size;
    this.#draw();
  };

  /**
   * Prints an agent's output line above the progress line, made printable
   * as the default output sink makes it.
   */
  line = (line: string, host: string): void => {
    this.#sink.write(`${CLEAR}[${host}] ${printable(line)}\n`);
    this.#shown = false;
    this.#draw();
  };

  /** Removes the progress line and stops redrawing. */
  stop(): void {
    for (const signal of SIGNALS) {
      Deno.removeSignalListener(signal, this.#clear);
    }
    this.#clear();
  }

  /** Removes the line for good: on stop(), or on a signal that ends the run. */
  #clear = (): void => {
    this.#ended = true;
    clearInterval(this.#timer);
    if (this.#shown) this.#sink.write(CLEAR);
    this.#shown = false;
  };

  #draw(): void {
    if (this.#ended) return;
    const ms = performance.now() - this.#started;
    const text = renderProgress(
      this.#label,
      this.#counts,
      ms,
      this.#sink.columns,
    );
    this.#sink.write(CLEAR + text);
    this.#shown = true;
  }
}
