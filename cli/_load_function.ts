/**
 * Finds the function a `call` names: `module#export`.
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AnyFunction } from "../tunnel/base_tunnel.ts";
import { UsageError } from "./usage_error.ts";

/**
 * Imports the module of `spec` (`./tasks.ts#uptime`; a path relative to
 * `cwd`, or a URL; the export defaults to `default`) and returns the
 * exported function. Every problem is a UsageError.
 */
export async function loadFunction(
  spec: string,
  cwd: string,
): Promise<AnyFunction> {
  const at = spec.lastIndexOf("#");
  const path = at < 0 ? spec : spec.slice(0, at);
  const name = at < 0 ? "default" : spec.slice(at + 1);
  if (path === "" || name === "") {
    throw new UsageError(
      `Cannot call "${spec}": expected MODULE#EXPORT, e.g. ./tasks.ts#uptime`,
      "call",
    );
  }
  const url = /^[a-z][a-z0-9+.-]+:/i.test(path)
    ? path
    : pathToFileURL(resolve(cwd, path)).href;
  let mod: Record<string, unknown>;
  try {
    mod = await import(url);
  } catch (e) {
    throw new UsageError(
      `Cannot import "${path}": ${(e as Error).message.split("\n")[0]}`,
      "call",
    );
  }
  const fn = mod[name];
  if (typeof fn !== "function") {
    const exported = Object.keys(mod).filter((k) =>
      typeof mod[k] === "function"
    );
    throw new UsageError(
      `Cannot call "${spec}": ${
        name in mod ? `"${name}" is not a function` : `no export "${name}"`
      }; its exported functions: ${exported.join(", ") || "none"}`,
      "call",
    );
  }
  return fn as AnyFunction;
}
