/**
 * Checks of option values, shared by tunnels, groups and queues. A bad
 * value is refused at once, before anything starts, with a TypeError (not
 * a number) or a RangeError (a number out of range) that names the
 * option, the value and what is expected:
 * `Cannot use timeout -1: expected a number of milliseconds from 0 to ...`.
 *
 * @module
 */

/**
 * The longest delay a timer takes (about 24.8 days): a longer one, or
 * `Infinity`, would fire at once.
 */
export const MAX_DELAY = 2 ** 31 - 1;

/** A value as a message shows it: strings quoted. */
export function showValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "object" && value !== null) {
    try {
      return JSON.stringify(value) ?? String(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/**
 * Throws a TypeError when `value` is not of the expected type (`range`
 * false), else a RangeError.
 */
export function refuse(
  name: string,
  value: unknown,
  expected: string,
  range: boolean,
): never {
  const Kind = range ? RangeError : TypeError;
  throw new Kind(
    `Cannot use ${name} ${showValue(value)}: expected ${expected}`,
  );
}

/**
 * Checks a time option (`timeout`, `connectTimeout`, ...): undefined, or
 * a number of milliseconds from 0 to {@linkcode MAX_DELAY}.
 */
export function checkMilliseconds(
  name: string,
  value: unknown,
): number | undefined {
  if (value === undefined) return undefined;
  const expected = `a number of milliseconds from 0 to ${MAX_DELAY}`;
  if (typeof value !== "number") refuse(name, value, expected, false);
  if (!(value >= 0 && value <= MAX_DELAY)) refuse(name, value, expected, true);
  return value;
}

/** Checks a count option (`retries`, `maxDepth`): a whole number, 0 or more. */
export function checkCount(name: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const expected = "a whole number, 0 or more";
  if (typeof value !== "number") refuse(name, value, expected, false);
  if (!(Number.isInteger(value) && value >= 0)) {
    refuse(name, value, expected, true);
  }
  return value;
}

/** Checks a file's `mode`: permission bits, a whole number to 0o7777, no sticky bit. */
export function checkMode(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const expected =
    "permission bits, a whole number from 0 to 0o7777 written in octal, such as 0o644";
  if (typeof value !== "number") refuse("mode", value, expected, false);
  if (!(Number.isInteger(value) && value >= 0 && value <= 0o7777)) {
    refuse("mode", value, expected, true);
  }
  // The sticky bit means nothing on a file; a mode written in decimal by
  // mistake (644 is 0o1204: owner write-only) nearly always has it.
  if (value & 0o1000) {
    const meant = /^[0-7]{3}$/.test(String(value))
      ? `; ${value} is 0o${value.toString(8)}: did you mean 0o${value}?`
      : "";
    refuse(
      "mode",
      value,
      `permission bits without the sticky bit (0o1000, which means nothing on a file)${meant}`,
      true,
    );
  }
  return value;
}

/**
 * Checks the `liveness` option: undefined, `false`, or an object whose
 * `interval` and `timeout` are times (see {@linkcode checkMilliseconds}).
 */
export function checkLiveness(value: unknown): void {
  if (value === undefined || value === false) return;
  if (typeof value !== "object" || value === null) {
    refuse(
      "liveness",
      value,
      "false or { interval, timeout } in milliseconds",
      false,
    );
  }
  const { interval, timeout } = value as Record<string, unknown>;
  for (const [name, ms] of [["interval", interval], ["timeout", timeout]]) {
    // Both are needed: a missing one would make the checks never run.
    if (ms === undefined) {
      refuse(
        `liveness.${name}`,
        ms,
        "a number of milliseconds: give both interval and timeout (by default { interval: 15000, timeout: 60000 })",
        false,
      );
    }
    checkMilliseconds(`liveness.${name}`, ms);
  }
  // A ping needs time to be answered before the agent counts as lost.
  if (
    !((interval as number) >= 1 && (timeout as number) > (interval as number))
  ) {
    refuse(
      "liveness",
      value,
      "an interval of 1 ms or more, and a timeout longer than the interval",
      true,
    );
  }
}

/**
 * Checks an option of a simple kind: undefined, or a string, a function,
 * a list of strings, or a plain object.
 */
export function checkKind(
  name: string,
  value: unknown,
  kind: "string" | "function" | "strings" | "object",
): void {
  if (value === undefined) return;
  const ok = kind === "strings"
    ? Array.isArray(value) && value.every((v) => typeof v === "string")
    : kind === "object"
    ? typeof value === "object" && value !== null && !Array.isArray(value)
    : kind === "string"
    ? typeof value === "string"
    : typeof value === "function";
  if (!ok) {
    const expected = {
      string: "a string",
      function: "a function",
      strings: "a list of strings",
      object: "an object",
    }[kind];
    refuse(name, value, expected, false);
  }
}

/**
 * Checks one `remoteModules` entry: an http: or https: URL (its origin is
 * what counts).
 */
export function checkOrigin(origin: string): void {
  let url: URL | undefined;
  try {
    url = new URL(origin);
  } catch {
    // Refused below.
  }
  if (url?.protocol !== "https:" && url?.protocol !== "http:") {
    refuse(
      "the remoteModules entry",
      origin,
      'an http: or https: origin, such as "https://deno.land"',
      false,
    );
  }
}
