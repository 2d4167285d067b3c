/**
 * What an agent may load and how it resolves specifiers: the module roots
 * (the main module's project, the local packages it links, and the library)
 * and the import map that points the agent's bare specifiers at its
 * loopback module server.
 *
 * @module
 */
import { createRequire } from "node:module";
import {
  dirname,
  fromFileUrl,
  isUnder,
  toFileUrl,
  toUrlPath,
} from "./_paths.ts";
import type { FunctionTarget } from "./_function_ref.ts";
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
  /**
   * The project's `deno.json` "imports", if any, and its own name's exports,
   * as Deno resolves them: a target in a local package is the `file:` URL
   * of its module (see `resolveLinks`).
   */
  imports: Record<string, string>;
  /** Its "scopes", so resolved, and a scope for each local package. */
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
    }, the packages it links, and this library); move the module into the project, or give the tunnel the option \`project\` naming the directory that holds it`,
  );
}

async function findProject(mainModule: string): Promise<Project> {
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
      return resolveLinks(
        dir,
        name === "package.json" ? {} : parseConfig(text),
      );
    }
    if (dir === "/") break;
  }
  return resolveLinks(start, {});
}

/** What `deno.json` says that this module reads. */
interface Config {
  name?: unknown;
  exports?: unknown;
  imports?: Record<string, string>;
  scopes?: Project["scopes"];
  links?: unknown;
}

/**
 * A local JSR package, which Deno takes from its directory rather than
 * from JSR: one the project `links`, or this library when it runs from
 * its files (in its own repository, or linked).
 */
interface LocalPackage {
  /** Its `deno.json` "name". */
  name: string;
  /** Its directory, as the project names it (symlinks kept, as Deno does). */
  dir: string;
  /** Its subpaths (`"."`, `"./facts"`). */
  subpaths: string[];
  /** What its own modules import by name: its "imports" and its own name. */
  imports: Record<string, string>;
}

/**
 * The project of `config` (found in `dir`) as agents resolve it: its roots
 * are its directory, each local package's and msgpack's; every `jsr:`
 * target that Deno takes from a local package (as `import.meta.resolve`
 * says, so with Deno's own rules for versions and exports) becomes the
 * file it resolves to, a bare name of one gets an entry per export (a
 * prefix cannot map `facts` to `facts.ts`), and a subpath the package does
 * not export a module that throws Deno's error; each package's modules get
 * a scope with their own imports.
 */
async function resolveLinks(dir: string, config: Config): Promise<Project> {
  const { library, msgpack } = libraryRoots();
  const links = Array.isArray(config.links) ? config.links : [];
  const packages: LocalPackage[] = [];
  for (const link of [...links, library]) {
    if (typeof link !== "string") continue;
    const path = fromFileUrl(new URL(link, dirUrl(dir)))
      .replace(/(.)\/+$/, "$1");
    if (packages.some((p) => p.dir === path)) continue;
    const found = await localPackage(path);
    if (!found) continue;
    if (path === library && msgpack) {
      // The library's own dependency, served from the controller's copy.
      found.imports["@msgpack/msgpack"] = toFileUrl(msgpack) +
        "/dist.esm/index.mjs";
    }
    packages.push(found);
  }
  const scopes: Project["scopes"] = {};
  for (const p of packages) {
    scopes[dirUrl(p.dir)] = linkImports(p.imports, p.dir, packages);
  }
  for (const [scope, m] of Object.entries(config.scopes ?? {})) {
    scopes[scope] = linkImports(m, dir, packages);
  }
  return {
    roots: [dir, ...packages.map((p) => p.dir), ...msgpack ? [msgpack] : []],
    imports: linkImports(
      { ...selfImports(config), ...config.imports },
      dir,
      packages,
    ),
    scopes,
    configDir: dir,
  };
}

/** The JSR package whose `deno.json` (or `deno.jsonc`) is in `dir`. */
async function localPackage(dir: string): Promise<LocalPackage | undefined> {
  for (const name of ["deno.json", "deno.jsonc"]) {
    let config: Config;
    try {
      config = parseConfig(await Deno.readTextFile(`${dir}/${name}`));
    } catch {
      continue;
    }
    if (typeof config.name !== "string" || !config.name) return undefined;
    return {
      name: config.name,
      dir,
      subpaths: Object.keys(exportMap(config)),
      imports: { ...selfImports(config), ...config.imports },
    };
  }
  return undefined;
}

/** A `jsr:` specifier: the package's name, `@` and version, subpath. */
const JSR = /^jsr:\/?(@[^/@]+\/[^/@]+)(@[^/]*)?(\/.*)?$/;

/**
 * `m` (an import map of the config in `dir`) with its relative targets
 * made `file:` URLs and its targets in local packages resolved as Deno
 * resolves them (see {@linkcode resolveLinks}).
 */
function linkImports(
  m: Record<string, string>,
  dir: string,
  packages: LocalPackage[],
): Record<string, string> {
  const out = { ...m };
  for (const [key, target] of Object.entries(m)) {
    if (/^\.{0,2}\//.test(target)) {
      out[key] = new URL(target, dirUrl(dir)).href;
      continue;
    }
    const spec = target.match(JSR);
    const pkg = spec && packages.find((p) => p.name === spec[1]);
    if (!pkg) continue;
    const root = `jsr:${pkg.name}${spec[2] ?? ""}`;
    const at = (sub: string) => root + sub.slice(1);
    // Not linked: the version does not match, or no link names it.
    if (
      !pkg.subpaths.length || !isFile(resolveSpecifier(at(pkg.subpaths[0])))
    ) {
      continue;
    }
    const path = spec[3] ?? "";
    if (key.endsWith("/")) {
      // A prefix: the exports under it, each to its file.
      delete out[key];
      for (const sub of pkg.subpaths) {
        if (sub !== "." && at(sub).startsWith(root + path)) {
          out[key + at(sub).slice(root.length + path.length)] ??=
            resolveSpecifier(at(sub));
        }
      }
      continue;
    }
    out[key] = resolveSpecifier(root + path);
    if (path === "" && !Object.hasOwn(m, key + "/")) {
      for (const sub of pkg.subpaths) {
        if (sub !== ".") out[key + sub.slice(1)] ??= resolveSpecifier(at(sub));
      }
    }
  }
  return out;
}

/**
 * What Deno resolves `specifier` to here, or, when it refuses it (a
 * subpath the package does not export), a module that throws its error.
 */
function resolveSpecifier(specifier: string): string {
  try {
    return import.meta.resolve(specifier);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return "data:text/javascript," +
      encodeURIComponent(`throw new TypeError(${JSON.stringify(message)});`);
  }
}

/** The `file:` URL of directory `dir`, ending in `/`. */
function dirUrl(dir: string): string {
  return toFileUrl(dir === "/" ? dir : dir + "/");
}

function isFile(url: string): boolean {
  return url.startsWith("file:");
}

/** A config's "exports" as a map of subpaths. */
function exportMap(config: Config): Record<string, string> {
  const { exports } = config;
  const map: Record<string, unknown> = typeof exports === "string"
    ? { ".": exports }
    : exports && typeof exports === "object"
    ? exports as Record<string, unknown>
    : {};
  return Object.fromEntries(
    Object.entries(map).filter(([sub, target]) =>
      typeof target === "string" && /^\.(\/|$)/.test(sub)
    ),
  ) as Record<string, string>;
}

/**
 * The package's own name and its subpaths, as Deno resolves them in the
 * package itself (`"@scope/pkg"`, `"@scope/pkg/sub"`), mapped to its exports.
 */
function selfImports(config: Config): Record<string, string> {
  const { name } = config;
  if (typeof name !== "string" || !name) return {};
  const imports: Record<string, string> = {};
  for (const [sub, target] of Object.entries(exportMap(config))) {
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

/**
 * Builds the agent's import map: local targets of the project's imports and
 * scopes (files of the project, of its local packages and msgpack's) point
 * at `base` (the loopback server's URL with the secret). Subpaths of
 * packages mapped to `npm:` and `jsr:` resolve as Deno resolves them from
 * `deno.json` (see `expand`). On an agent that opens tunnels of its own,
 * `project` is the controller's, as the controller resolved it.
 */
export function agentImportMap(project: Project, base: string): string {
  const local = (target: string): string => {
    if (/^\.{0,2}\//.test(target) || target.startsWith("file:")) {
      const url = new URL(target, `file://${toUrlPath(project.configDir)}/`);
      return base + "f" + url.pathname;
    }
    return target;
  };
  const mapAll = (m: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(expand(m)).map(([k, v]) => [k, local(v)]),
    );
  const scopes: Record<string, Record<string, string>> = {};
  for (const [scope, m] of Object.entries(project.scopes)) {
    scopes[local(scope)] = { ...scopes[local(scope)], ...mapAll(m) };
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
  return JSON.stringify({ imports, scopes });
}

/**
 * What Deno adds to a `deno.json` import map (a plain one, as agents get,
 * has none of it): a bare key mapped to an `npm:` or `jsr:` package maps
 * its subpaths too (`"preact/": "npm:/preact@10/"`), unless the map has
 * that key. (A local package's targets are files by now.)
 */
function expand(m: Record<string, string>): Record<string, string> {
  const out = { ...m };
  for (const [key, target] of Object.entries(m)) {
    const pkg = target.match(/^(npm|jsr):\/?(.*[^/])$/);
    if (!pkg || key.endsWith("/") || Object.hasOwn(m, key + "/")) continue;
    out[key + "/"] = `${pkg[1]}:/${pkg[2]}/`;
  }
  return out;
}
