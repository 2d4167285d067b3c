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
    return /[\t\n\r]/.test(value) ? JSON.stringify(value) : value;
  }
  return JSON.stringify(toJsonable(value)) ?? "null";
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
