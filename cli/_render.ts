/**
 * The CLI's output, as pure functions of the per-host outcomes: plain lines,
 * one JSON document, a summary table, blocks, and the progress line.
 *
 * @module
 */
import {
  escapeControls,
  formatValue,
  toJsonable,
  truncate,
} from "./_format_value.ts";
import type { Counts, Outcome } from "./_outcome.ts";

/** Layout options for a terminal. */
export interface Screen {
  /** Terminal width in columns. */
  columns: number;
  /** Use ANSI colours. */
  color: boolean;
}

const paint = (on: boolean, code: number, text: string) =>
  on ? `\x1b[${code}m${text}\x1b[0m` : text;

/**
 * A host's name as printed: names come from the command line or an
 * inventory file, and a tab or an escape sequence in one would break the
 * tab-separated lines or reach the terminal.
 */
function hostName(host: string): string {
  return escapeControls(host);
}

/** `host<TAB>ok<TAB>value` or `host<TAB>failed<TAB>Name: message` lines. */
export function renderPlain(outcomes: Outcome[]): string {
  return outcomes.map((o) =>
    o.ok
      ? `${hostName(o.host)}\tok\t${formatValue(o.value)}\n`
      : `${hostName(o.host)}\tfailed\t${formatValue(o.error.toString())}\n`
  ).join("");
}

/** One JSON document with every host's outcome. */
export function renderJson(
  command: Record<string, unknown>,
  outcomes: Outcome[],
): string {
  const hosts = outcomes.map((o) =>
    o.ok
      ? { host: o.host, ok: true, ms: round(o.ms), value: toJsonable(o.value) }
      : { host: o.host, ok: false, ms: round(o.ms), error: o.error.toJSON() }
  );
  const ok = outcomes.every((o) => o.ok);
  // JSON escapes the C0 controls in strings, not DEL and C1; its layout's
  // line breaks stay.
  return escapeControls(JSON.stringify({ ...command, ok, hosts }, null, 2), {
    layout: true,
  }) + "\n";
}

/** A table: host, status, time and result (cut to the screen's width). */
export function renderTable(outcomes: Outcome[], screen: Screen): string {
  const hostWidth = Math.min(
    30,
    Math.max(4, ...outcomes.map((o) => hostName(o.host).length)),
  );
  const fixed = hostWidth + 2 + 6 + 2 + 8 + 2;
  const rest = Math.max(10, screen.columns - fixed - 1);
  const row = (host: string, status: string, time: string, text: string) =>
    `${truncate(host, hostWidth).padEnd(hostWidth)}  ${status}  ${
      time.padStart(8)
    }  ${truncate(text, rest)}`.trimEnd() + "\n";
  let out = row("HOST", "STATUS", "TIME", "RESULT");
  for (const o of outcomes) {
    const status = paint(
      screen.color,
      o.ok ? 32 : 31,
      (o.ok ? "ok" : "failed").padEnd(6),
    );
    const text = o.ok
      ? formatValue(o.value)
      : escapeControls(oneLine(o.error.toString()));
    out += row(hostName(o.host), status, seconds(o.ms), text);
  }
  return out;
}

/** A block per host: its status, then each key of its value on a line. */
export function renderBlocks(outcomes: Outcome[], screen: Screen): string {
  let out = "";
  for (const o of outcomes) {
    const status = paint(screen.color, o.ok ? 32 : 31, o.ok ? "ok" : "failed");
    out += `${paint(screen.color, 1, hostName(o.host))}  ${status}  ${
      seconds(o.ms)
    }\n`;
    if (!o.ok) {
      const text = escapeControls(oneLine(o.error.toString()));
      out += `  ${truncate(text, screen.columns - 3)}\n`;
      continue;
    }
    const value = o.value;
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      out += `  ${truncate(formatValue(value), screen.columns - 3)}\n`;
      continue;
    }
    const entries = Object.entries(value);
    const width = Math.max(
      0,
      ...entries.map(([k]) => escapeControls(k).length),
    );
    for (const [key, v] of entries) {
      const text = formatValue(v);
      out += `  ${escapeControls(key).padEnd(width)}  ${
        truncate(text, screen.columns - width - 5)
      }\n`;
    }
  }
  return out;
}

/** The closing line: how many hosts, ok, failed, and the time taken. */
export function renderFooter(
  counts: Counts,
  ms: number,
  screen: Screen,
): string {
  const failed = paint(
    screen.color && counts.failed > 0,
    31,
    `${counts.failed} failed`,
  );
  const hosts = counts.total === 1 ? "host" : "hosts";
  return `${counts.total} ${hosts}: ${counts.ok} ok, ${failed} in ${
    seconds(ms)
  }\n`;
}

/**
 * The live progress line: a bar, then done, failed and running counts, the
 * time so far and what runs, cut to the screen's width.
 */
export function renderProgress(
  label: string,
  counts: Counts,
  ms: number,
  columns: number,
): string {
  const done = counts.ok + counts.failed;
  const width = 20;
  const filled = counts.total ? Math.round(width * done / counts.total) : width;
  const bar = "#".repeat(filled) + ".".repeat(width - filled);
  return truncate(
    `[${bar}] ${done}/${counts.total} done, ${counts.failed} failed, ${counts.running} running  ${
      seconds(ms)
    }  ${label}`,
    columns - 1,
  );
}

/**
 * `text` with each run of white space that holds a line break made one
 * space, in linear time. (Replacing the regex \s*\n\s* did the same, but
 * backtracked over a run of spaces from each of them: 160,000 spaces from
 * an agent took 9 s.)
 */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, (run) => run.includes("\n") ? " " : run);
}

function seconds(ms: number): string {
  return ms < 10_000
    ? `${(ms / 1000).toFixed(2)} s`
    : `${(ms / 1000).toFixed(1)} s`;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
