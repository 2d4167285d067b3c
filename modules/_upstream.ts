/**
 * What the controller fetches for agents from the network: npm packages,
 * JSR packages and `https:`/`http:` modules. Agents often have no network
 * of their own; they reach these only through their tunnel. Answers are
 * kept in memory for the life of the controller.
 *
 * @module
 */
import { NPM_PLACEHOLDER } from "../wire/_protocol.ts";
import type { ModuleAnswer } from "./_module_server.ts";
import { loadedModuleUrls } from "./_function_ref.ts";

const TYPES: Record<string, number> = {
  "application/typescript": 1,
  "application/javascript": 2,
  "text/javascript": 2,
  "application/json": 3,
  "text/tsx": 4,
  "text/jsx": 5,
  "application/octet-stream": 6,
};

const MAX_MEMORY = 256 * 1024 * 1024;
const memory = new Map<string, ModuleAnswer>();
let memoryBytes = 0;

function registry(env: string, fallback: string): string {
  const url = Deno.env.get(env) || fallback;
  return url.endsWith("/") ? url : url + "/";
}

/** The npm registry the controller uses. */
export function npmRegistry(): string {
  return registry("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/");
}

/** The JSR registry the controller uses. */
export function jsrRegistry(): string {
  return registry("JSR_URL", "https://jsr.io/");
}

function text(status: number, message: string): ModuleAnswer {
  return { status, type: 0, body: new TextEncoder().encode(message) };
}

/**
 * Where an upstream request may go: one of `origins`, under the path
 * `prefix`, over `http:` or `https:`, with no user name or password.
 */
interface Scope {
  origins: ReadonlySet<string>;
  prefix: string;
}

function scopeOf(base: URL): Scope {
  return { origins: new Set([base.origin]), prefix: base.pathname };
}

function inScope(url: URL, scope: Scope): boolean {
  return (url.protocol === "https:" || url.protocol === "http:") &&
    url.username === "" && url.password === "" &&
    scope.origins.has(url.origin) && url.pathname.startsWith(scope.prefix);
}

/**
 * `base + rest` parsed, when it is still on `base`'s origin and under its
 * path; else undefined. Whatever the URL parser makes of `rest` (it drops
 * tabs and newlines, resolves `..` and `%2e%2e`, reads `\` as `/`), the
 * URL fetched is checked, not the text the agent sent.
 */
export function within(base: string, rest: string): URL | undefined {
  let url: URL;
  try {
    url = new URL(base + rest);
  } catch {
    return undefined;
  }
  return inScope(url, scopeOf(new URL(base))) ? url : undefined;
}

/**
 * Answers `rest`, one of `p/npm/<path>`, `p/jsr/<path>`, `u/https/<host>/
 * <path>` or `u/http/<host>/<path>`. `https:`/`http:` modules are fetched
 * only from origins this program loaded modules from itself, or that
 * `allowed` lists, so an agent cannot make the controller fetch other URLs.
 */
export async function upstream(
  rest: string,
  allowed: readonly string[] = [],
): Promise<ModuleAnswer> {
  let url: URL | undefined;
  let npm = false;
  if (rest.startsWith("p/npm/")) {
    url = within(npmRegistry(), rest.slice(6));
    npm = true;
  } else if (rest.startsWith("p/jsr/")) {
    url = within(jsrRegistry(), rest.slice(6));
  } else if (/^u\/https?\//.test(rest)) {
    const scheme = rest.startsWith("u/https/") ? "https" : "http";
    try {
      url = new URL(`${scheme}://${rest.slice(scheme.length + 3)}`);
    } catch {
      return text(400, "Bad request: not a URL");
    }
    const origins = new Set([
      ...allowed.map((a) => new URL(a).origin),
      ...(await loadedModuleUrls()).map((u) => new URL(u).origin),
    ]);
    if (!inScope(url, { origins, prefix: "/" })) {
      return text(
        403,
        `Forbidden: the controller loads no module from ${url.origin}; list it in the tunnel's remoteModules option`,
      );
    }
  } else {
    return text(404, "Not found");
  }
  if (url === undefined) {
    return text(403, "Forbidden: outside the registry's path");
  }
  const known = memory.get(url.href);
  if (known) return known;
  let response: Response;
  try {
    response = await fetch(url, { redirect: "follow" });
  } catch (error) {
    return text(
      502,
      `Bad gateway: the controller cannot fetch ${url}: ${error}`,
    );
  }
  const media = (response.headers.get("content-type") ?? "").split(";")[0]
    .trim();
  let body = new Uint8Array(await response.arrayBuffer());
  let type = TYPES[media] ?? (npm ? 6 : guessType(url.pathname));
  if (npm && (media.includes("json") || type === 3)) {
    // Tarball URLs in npm metadata point back through the agent.
    const json = new TextDecoder().decode(body)
      .replaceAll(npmRegistry(), NPM_PLACEHOLDER)
      .replaceAll("https://registry.npmjs.org/", NPM_PLACEHOLDER);
    body = new TextEncoder().encode(json);
    type = 3;
  }
  const answer = { status: response.status, type, body };
  if (response.ok && memoryBytes + body.length <= MAX_MEMORY) {
    memory.set(url.href, answer);
    memoryBytes += body.length;
  }
  return answer;
}

function guessType(path: string): number {
  if (/\.(ts|mts|cts)$/.test(path)) return 1;
  if (/\.json$/.test(path)) return 3;
  if (/\.tsx$/.test(path)) return 4;
  if (/\.jsx$/.test(path)) return 5;
  return 2;
}
