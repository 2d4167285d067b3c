/**
 * Finds what the agent needs to call a function: the module file that
 * exports it and its export name, or its path on `globalThis` for a
 * built-in. Uses the V8 inspector (`node:inspector`) to learn where a
 * function was defined, so it needs `--allow-sys=inspector`.
 *
 * @module
 */
import { Session } from "node:inspector/promises";
import { fromFileUrl } from "./_paths.ts";
import { agentContext } from "./_agent_context.ts";

/** What the agent is asked to call. */
export type FunctionTarget =
  | { kind: "module"; file: string; name: string }
  | { kind: "global"; path: string };

const cache = new WeakMap<object, FunctionTarget>();
const scriptUrls = new Map<string, string>();
let globals: Map<unknown, string> | undefined;
let session: Session | undefined;

// deno-lint-ignore no-explicit-any
type AnyFunction = (...args: any[]) => unknown;

/**
 * Locates `fn`. Throws a TypeError, before anything is sent, when `fn` is
 * not a function, or is a closure or a function no module exports.
 */
export async function locateFunction(fn: AnyFunction): Promise<FunctionTarget> {
  if (typeof fn !== "function") {
    throw new TypeError(
      `Cannot call ${typeof fn}: expected an exported function or a built-in such as Date.now`,
    );
  }
  const known = cache.get(fn);
  if (known) return known;
  const target = globalPath(fn) ?? await moduleExport(fn);
  cache.set(fn, target);
  return target;
}

/** The target of `fn` when it was located before, without waiting. */
export function locatedBefore(fn: AnyFunction): FunctionTarget | undefined {
  return typeof fn === "function" ? cache.get(fn) : undefined;
}

function describe(fn: AnyFunction): string {
  return fn.name ? `function "${fn.name}"` : "an anonymous function";
}

function globalPath(fn: AnyFunction): FunctionTarget | undefined {
  if (!globals) {
    globals = new Map();
    // Built-ins up to three levels deep: `fetch`, `Date.now`,
    // `Deno.env.get`. Deeper levels only go through plain namespaces.
    const visit = (owner: unknown, prefix: string, depth: number) => {
      for (const key of Object.getOwnPropertyNames(owner)) {
        const value = read(owner, key);
        const path = prefix + key;
        if (typeof value === "function" && !globals!.has(value)) {
          globals!.set(value, path);
        }
        const namespace = value !== null && typeof value === "object";
        if (depth < 2 && (namespace || (depth === 0 && value))) {
          if (value !== globalThis) visit(value, path + ".", depth + 1);
        }
      }
    };
    visit(globalThis, "", 0);
  }
  const path = globals.get(fn);
  return path === undefined ? undefined : { kind: "global", path };
}

function read(owner: unknown, key: string): unknown {
  try {
    const desc = Object.getOwnPropertyDescriptor(owner, key);
    return desc && "value" in desc ? desc.value : undefined;
  } catch {
    return undefined;
  }
}

async function moduleExport(fn: AnyFunction): Promise<FunctionTarget> {
  const url = await definitionUrl(fn);
  const file = url && modulePath(url);
  if (!file) {
    throw new TypeError(
      `Cannot call ${describe(fn)}: it is not defined in a local module file (${
        url || "no source"
      }); export it from a module of your project`,
    );
  }
  const name = await exportName(fn, url);
  if (name === undefined) {
    throw new TypeError(
      `Cannot call ${
        describe(fn)
      } from ${url}: it is not exported; export it (closures, inner functions and methods cannot be sent: export a function that calls the method)`,
    );
  }
  return { kind: "module", file, name };
}

/**
 * The controller file path of a module URL: a `file:` URL here, or, on an
 * agent, a URL of its module server.
 */
function modulePath(url: string): string | undefined {
  if (url.startsWith("file:")) return fromFileUrl(url);
  const files = agentContext()?.base + "f/";
  if (url.startsWith(files)) {
    return decodeURIComponent(url.slice(files.length - 1));
  }
  return undefined;
}

/** Asks V8 where `fn` was defined and maps that to its module's URL. */
async function definitionUrl(fn: AnyFunction): Promise<string | undefined> {
  const session = inspector();
  const slot = `__chopsticks_fn_${crypto.randomUUID().replaceAll("-", "")}`;
  Object.defineProperty(globalThis, slot, { value: fn, configurable: true });
  try {
    const { result } = await session.post("Runtime.evaluate", {
      expression: `globalThis.${slot}`,
    });
    const objectId = result.objectId!;
    const props = await session.post("Runtime.getProperties", {
      objectId,
      ownProperties: true,
    });
    await session.post("Runtime.releaseObject", { objectId });
    const where = props.internalProperties?.find((p) =>
      p.name === "[[FunctionLocation]]"
    )?.value?.value as { scriptId: string } | undefined;
    if (!where) return undefined;
    if (!scriptUrls.has(where.scriptId)) {
      // Enabling the debugger replays every parsed script; keep it enabled
      // only for that, so `debugger` statements never pause the program.
      await session.post("Debugger.enable");
      await session.post("Debugger.disable");
    }
    return scriptUrls.get(where.scriptId);
  } finally {
    delete (globalThis as Record<string, unknown>)[slot];
  }
}

/**
 * The URLs of every module this program has loaded (from V8's list of
 * parsed scripts).
 */
export async function loadedModuleUrls(): Promise<string[]> {
  const s = inspector();
  await s.post("Debugger.enable");
  await s.post("Debugger.disable");
  return [...new Set(scriptUrls.values())].filter((u) => /^https?:/.test(u));
}

function inspector(): Session {
  if (!session) {
    session = new Session();
    session.connect();
    session.on("Debugger.scriptParsed", (m) => {
      scriptUrls.set(m.params.scriptId, m.params.url);
    });
  }
  return session;
}

/**
 * Finds the name under which the module at `url` exports `fn`. A module
 * still being evaluated (the main script calling from top-level code)
 * cannot be imported yet, so its source is read for export declarations.
 */
async function exportName(
  fn: AnyFunction,
  url: string,
): Promise<string | undefined> {
  const loaded = await Promise.race([
    import(url) as Promise<Record<string, unknown>>,
    new Promise<undefined>((resolve) =>
      setTimeout(() => resolve(undefined), 0)
    ),
  ]);
  if (loaded) {
    if (fn.name && loaded[fn.name] === fn) return fn.name;
    return Object.keys(loaded).find((key) => loaded[key] === fn);
  }
  if (!fn.name) return undefined;
  const source = url.startsWith("file:")
    ? await Deno.readTextFile(fromFileUrl(url))
    : await (await fetch(url)).text();
  return declaredExport(source, fn.name);
}

/** Finds `name` among the export declarations of `source`. */
export function declaredExport(
  source: string,
  name: string,
): string | undefined {
  const id = name.replace(/[$]/g, "\\$");
  const direct = new RegExp(
    `\\bexport\\s+(?:async\\s+)?(?:function\\s*\\*?|const|let|var)\\s*${id}\\b`,
  );
  if (direct.test(source)) return name;
  if (
    new RegExp(
      `\\bexport\\s+default\\s+(?:async\\s+)?function\\s*\\*?\\s*${id}\\b`,
    ).test(source)
  ) {
    return "default";
  }
  for (const list of source.matchAll(/\bexport\s*\{([^}]*)\}/g)) {
    for (const item of list[1].split(",")) {
      const [local, exported] = item.trim().split(/\s+as\s+/);
      if (local === name) return exported ?? local;
    }
  }
  return undefined;
}
