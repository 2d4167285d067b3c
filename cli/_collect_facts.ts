/**
 * Runs on an agent: every function of the facts module, in one call.
 *
 * @module
 */
import * as facts from "../facts.ts";

const ORDER = [
  "hostname",
  "denoVersion",
  "osRelease",
  "platform",
  "ip",
  "user",
  "loadAverage",
  "memory",
];

/**
 * Calls each function of the facts module and returns their results by
 * name; a fact that cannot be read (for example for lack of a permission)
 * becomes `"unavailable: <message>"`.
 */
export async function collectFacts(): Promise<Record<string, unknown>> {
  const names = Object.keys(facts).filter((name) =>
    typeof (facts as Record<string, unknown>)[name] === "function"
  ).sort((a, b) =>
    (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) ||
    a.localeCompare(b)
  );
  const out: Record<string, unknown> = {};
  for (const name of names) {
    try {
      out[name] = await (facts as Record<string, () => unknown>)[name]();
    } catch (e) {
      out[name] = `unavailable: ${(e as Error).message}`;
    }
  }
  return out;
}
