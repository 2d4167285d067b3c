/**
 * Values as text for the CLI: JSON-safe copies and one-line forms.
 *
 * @module
 */

/**
 * A copy of `value` that `JSON.stringify` can print faithfully enough:
 * bigints and non-finite numbers become strings, Maps objects (or entry
 * lists), Sets and typed arrays arrays, Dates ISO strings, errors
 * `{ name, message }`, and cycles `"[Circular]"`.
 */
export function toJsonable(value: unknown, seen = new Set<object>()): unknown {
  if (value === undefined) return null;
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number") {
    return Number.isFinite(value) ? value : String(value);
  }
  if (typeof value !== "object" || value === null) {
    return typeof value === "function" || typeof value === "symbol"
      ? String(value)
      : value;
  }
  if (seen.has(value)) return "[Circular]";
  seen.add(value);
  try {
    if (value instanceof Date) return value.toISOString();
    if (value instanceof RegExp) return String(value);
    if (value instanceof Error) {
      return { name: value.name, message: value.message };
    }
    if (ArrayBuffer.isView(value)) {
      return Array.from(
        new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
      );
    }
    if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
    if (value instanceof Set) return [...value].map((v) => toJsonable(v, seen));
    if (value instanceof Map) {
      const entries = [...value].map((
        [k, v],
      ) => [toJsonable(k, seen), toJsonable(v, seen)]);
      return entries.every(([k]) => typeof k === "string")
        ? Object.fromEntries(entries)
        : entries;
    }
    if (Array.isArray(value)) return value.map((v) => toJsonable(v, seen));
    const json = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof json === "function") return toJsonable(json.call(value), seen);
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, toJsonable(v, seen)]),
    );
  } finally {
    seen.delete(value);
  }
}

/**
 * `value` on one line: a string as it is (JSON-quoted when it holds a tab
 * or a line break), anything else as compact JSON.
 */
export function formatValue(value: unknown): string {
  if (typeof value === "string") {
    return CONTROL.test(value) ? escapeControls(JSON.stringify(value)) : value;
  }
  return escapeControls(JSON.stringify(toJsonable(value)) ?? "null");
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x1f\x7f-\x9f]/g;
// deno-lint-ignore no-control-regex
const CONTROLS_BUT_LINES = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/g;

/**
 * `text` with every control character written as `\uXXXX`, so that what
 * an agent returns cannot drive the terminal (escape sequences; JSON
 * leaves DEL and the C1 controls as they are). With `layout`, line breaks
 * stay (text laid out here, such as indented JSON).
 */
export function escapeControls(
  text: string,
  options: { layout?: boolean } = {},
): string {
  return text.replace(
    options.layout ? CONTROLS_BUT_LINES : CONTROLS,
    (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"),
  );
}

/**
 * `text` cut to `width` columns (code points), with "…" when cut. Only the
 * first `width` + 1 code points are looked at: a value from an agent may
 * be 64 MiB, which spread into an array took 9 times its size.
 */
export function truncate(text: string, width: number): string {
  if (width <= 0) return "";
  if (text.length <= width) return text;
  let count = 0;
  let at = 0;
  let cut = 0;
  for (const char of text) {
    if (count === width - 1) cut = at;
    if (++count > width) return text.slice(0, cut) + "…";
    at += char.length;
  }
  return text;
}
