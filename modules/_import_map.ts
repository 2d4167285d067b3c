/**
 * What an agent may load and how it resolves specifiers: the module roots
 * (the main module's project and the library) and the import map that
 * points the agent's bare specifiers at its loopback module server.
 *
 * @module
 */
import { createRequire } from "node:module";
import { dirname, fromFileUrl, isUnder, toUrlPath } from "./_paths.ts";
import type { FunctionTarget } from "./_function_ref.ts";
import library from "../deno.json" with { type: "json" };
import { agentContext } from "./_agent_context.ts";

/** Local directories of the library and of the msgpack package. */
export interface LibraryRoots {
  /** The library's root, when it runs from local files (not from JSR). */
  library?: string;
  /** The msgpack package's directory, for the library's modules on agents. */
  msgpack?: string;
}

let roots: LibraryRoots | undefined;

/**
 * The library's own root directory and msgpack's package directory, served
 * to agents whose code imports the library. Computed on first use, so that
 * merely importing this module works on an agent too.
 */
export function libraryRoots(): LibraryRoots {
  if (roots) return roots;
  if (!import.meta.url.startsWith("file:")) return roots = {};
  let msgpack: string | undefined;
  try {
    const main = createRequire(import.meta.url).resolve("@msgpack/msgpack");
    msgpack = dirname(dirname(main));
  } catch {
    // Not resolvable as a file: agents get the library without it.
  }
  return roots = {
    library: dirname(dirname(fromFileUrl(import.meta.url))),
    msgpack,
  };
}

/** The project of the running program: its roots and its import map. */
export interface Project {
  /** Directories the module server may serve from. */
  roots: string[];
  /** The project's `deno.json` "imports", if any. */
  imports: Record<string, string>;
  /** The project's `deno.json` "scopes", if any. */
  scopes: Record<string, Record<string, string>>;
  /** Directory of the config file the imports are relative to. */
  configDir: string;
}

const cached = new Map<string, Promise<Project>>();

/**
 * Finds the project of `from` (a module URL or a path inside the project;
 * default: the main module), once per location.
 */
export function currentProject(
  from: string = Deno.mainModule,
): Promise<Project> {
  const context = agentContext();
  // On an agent, the project is the controller's; files come by relay.
  if (context) return Promise.resolve({ ...context.project, roots: [] });
  const url = /^[a-z][a-z0-9+.-]*:/i.test(from)
    ? from
    : new URL(from, `file://${Deno.cwd()}/`).href;
  let found = cached.get(url);
  if (!found) cached.set(url, found = findProject(url));
  return found;
}

/**
 * Resolves to `target` when agents may load its module: a file under the
 * roots of `project` (see {@linkcode currentProject}). Rejects with a
 * TypeError that says what to do otherwise, before anything is sent.
 */
export async function loadable(
  target: FunctionTarget,
  project?: string,
): Promise<FunctionTarget> {
  if (target.kind !== "module") return target;
  const { roots, configDir } = await currentProject(project);
  // On an agent the roots are the controller's, checked there.
  if (roots.length === 0 || roots.some((r) => isUnder(target.file, r))) {
    return target;
  }
  throw new TypeError(
    `Cannot call "${target.name}": its module ${target.file} is outside the directories agents may load modules from (the project ${configDir}, ${
      project === undefined
        ? "found from the main module"
        : "named by the option `project`"
    }, and this library); move the module into the project, or give the tunnel the option \`project\` naming the directory that holds it`,
  );
}

async function findProject(mainModule: string): Promise<Project> {
  const { library, msgpack } = libraryRoots();
  const own = [library, msgpack].filter((r): r is string => r !== undefined);
  let start = Deno.cwd();
  if (mainModule.startsWith("file:")) {
    const path = fromFileUrl(mainModule);
    const isDir = await Deno.stat(path).then((i) => i.isDirectory, () => false);
    start = isDir ? path.replace(/\/+$/, "") || "/" : dirname(path);
  }
  for (let dir = start;; dir = dirname(dir)) {
    for (const name of ["deno.json", "deno.jsonc", "package.json"]) {
      let text: string;
      try {
        text = await Deno.readTextFile(`${dir}/${name}`);
      } catch {
        continue;
      }
      const config = name === "package.json" ? {} : parseConfig(text);
      return {
        roots: [dir, ...own],
        imports: { ...selfImports(config), ...config.imports },
        scopes: config.scopes ?? {},
        configDir: dir,
      };
    }
    if (dir === "/") break;
  }
  return {
    roots: [start, ...own],
    imports: {},
    scopes: {},
    configDir: start,
  };
}

/** What `deno.json` says that this module reads. */
interface Config {
  name?: unknown;
  exports?: unknown;
  imports?: Record<string, string>;
  scopes?: Project["scopes"];
}

/**
 * The package's own name and its subpaths, as Deno resolves them in the
 * package itself (`"@scope/pkg"`, `"@scope/pkg/sub"`), mapped to its exports.
 */
function selfImports(config: Config): Record<string, string> {
  const { name, exports } = config;
  if (typeof name !== "string" || !name) return {};
  const map: Record<string, string> = typeof exports === "string"
    ? { ".": exports }
    : exports && typeof exports === "object"
    ? exports as Record<string, string>
    : {};
  const imports: Record<string, string> = {};
  for (const [sub, target] of Object.entries(map)) {
    if (typeof target !== "string" || !/^\.(\/|$)/.test(sub)) continue;
    imports[name + sub.slice(1)] = target;
  }
  return imports;
}

function parseConfig(text: string): Config {
  try {
    return JSON.parse(text);
  } catch {
    // deno.jsonc: drop comments and trailing commas.
    const plain = text.replace(
      /("(?:\\.|[^"\\])*")|\/\/[^\n]*|\/\*[\s\S]*?\*\//g,
      (_, s) => s ?? "",
    )
      .replace(/,(\s*[}\]])/g, "$1");
    return JSON.parse(plain);
  }
}

/** The library's own package as a JSR specifier, and its subpath. */
const SELF = /^jsr:@chopsticks\/chopsticks(?:@[^/]*)?(\/.*)?$/;

/**
 * Builds the agent's import map: local targets of the project's imports and
 * scopes point at `base` (the loopback server's URL with the secret);
 * `jsr:@chopsticks/chopsticks` points at the library itself, and the
 * library's own dependency at its files. Subpaths of mapped packages
 * resolve as Deno resolves them from `deno.json` (see `expand`).
 */
export function agentImportMap(project: Project, base: string): string {
  const { library, msgpack } = libraryRoots();
  const local = (target: string): string => {
    if (/^\.{0,2}\//.test(target) || target.startsWith("file:")) {
      const url = new URL(target, `file://${toUrlPath(project.configDir)}/`);
      return base + "f" + url.pathname;
    }
    const self = target.match(SELF);
    if (self && library) {
      return base + "f" + toUrlPath(library) + librarySubpath(self[1]);
    }
    return target;
  };
  const served = library !== undefined;
  const mapAll = (m: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(expand(m, served)).map(([k, v]) => [k, local(v)]),
    );
  const scopes: Record<string, Record<string, string>> = {};
  for (const [scope, m] of Object.entries(project.scopes)) {
    scopes[local(scope)] = mapAll(m);
  }
  // Remote modules come through the module server too; its own URLs stay.
  // An absolute-path import in a served module ("/src/x.ts") resolves
  // against the server's origin: it names a file of the controller.
  const imports = mapAll(project.imports);
  const origin = new URL(base).origin + "/";
  imports["https://"] ??= base + "u/https/";
  imports["http://"] ??= base + "u/http/";
  imports[origin] = base + "f/";
  imports[base] = base;
  if (library && msgpack) {
    scopes[base + "f" + toUrlPath(library) + "/"] = {
      "@msgpack/msgpack": base + "f" + toUrlPath(msgpack) +
        "/dist.esm/index.mjs",
    };
  }
  return JSON.stringify({ imports, scopes });
}

/**
 * What Deno adds to a `deno.json` import map (a plain one, as agents get,
 * has none of it): a bare key mapped to an `npm:` or `jsr:` package maps
 * its subpaths too (`"preact/": "npm:/preact@10/"`), unless the map has
 * that key. When the library is `served` from its files, its name gets its
 * exports instead: a prefix cannot map `facts` to `facts.ts`.
 */
function expand(
  m: Record<string, string>,
  served: boolean,
): Record<string, string> {
  const out = { ...m };
  for (const [key, target] of Object.entries(m)) {
    const pkg = target.match(/^(npm|jsr):\/?(.*[^/])$/);
    if (!pkg || key.endsWith("/") || Object.hasOwn(m, key + "/")) continue;
    const own = served && target.match(SELF);
    if (!own) {
      out[key + "/"] = `${pkg[1]}:/${pkg[2]}/`;
    } else if (own[1] === undefined) {
      for (const sub of Object.keys(library.exports)) {
        if (sub !== ".") out[key + sub.slice(1)] ??= target + sub.slice(1);
      }
    }
  }
  return out;
}

function librarySubpath(sub: string | undefined): string {
  const exports: Record<string, string> = library.exports;
  const target = exports["." + (sub ?? "")] ?? exports["."];
  return target.slice(1);
}
