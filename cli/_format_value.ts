/**
 * Values as text for the CLI: JSON-safe copies and one-line forms.
 *
 * @module
 */

/**
 * A copy of `value` that `JSON.stringify` can print faithfully enough:
 * bigints and non-finite numbers become strings, Maps objects (or entry
 * lists, where two keys would print alike or one is not a string), Sets
 * arrays, typed arrays arrays of their elements (bytes for a Uint8Array,
 * an ArrayBuffer or a DataView), Dates ISO strings (`"Invalid Date"`),
 * errors `{ name, message }`, and cycles `"[Circular]"`. An object met again
 * (not in a cycle) is copied again, 10,000 times in all; past that it is
 * `"[Shared]"`: a few hundred bytes of arrays that each hold the one
 * before twice would otherwise make billions of copies.
 */
export function toJsonable(value: unknown): unknown {
  const met = new WeakSet<object>();
  let repeats = 10_000;
  const open = new Set<object>();
  const copy = (value: unknown): unknown => {
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
    if (open.has(value)) return "[Circular]";
    if (met.has(value) && --repeats < 0) return "[Shared]";
    met.add(value);
    open.add(value);
    try {
      return copyObject(value);
    } finally {
      open.delete(value);
    }
  };
  const copyObject = (value: object): unknown => {
    if (value instanceof Date) {
      return Number.isNaN(value.getTime())
        ? "Invalid Date"
        : value.toISOString();
    }
    if (value instanceof RegExp) return String(value);
    if (value instanceof Error) {
      return { name: copy(value.name), message: copy(value.message) };
    }
    if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
    if (ArrayBuffer.isView(value)) {
      return value instanceof DataView || value instanceof Uint8Array
        ? Array.from(
          new Uint8Array(value.buffer, value.byteOffset, value.byteLength),
        )
        : Array.from(value as unknown as ArrayLike<unknown>, copy);
    }
    if (value instanceof Set) return [...value].map(copy);
    if (value instanceof Map) {
      const entries = [...value].map(([k, v]) => [copy(k), copy(v)]);
      const keys = new Set(entries.map(([k]) => k));
      return keys.size === entries.length &&
          entries.every(([k]) => typeof k === "string")
        ? Object.fromEntries(entries)
        : entries;
    }
    if (Array.isArray(value)) return value.map(copy);
    const json = (value as { toJSON?: () => unknown }).toJSON;
    if (typeof json === "function") return copy(json.call(value));
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, copy(v)]),
    );
  };
  return copy(value);
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
