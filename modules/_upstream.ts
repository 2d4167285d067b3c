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
 * Answers `rest`, one of `p/npm/<path>`, `p/jsr/<path>`, `u/https/<host>/
 * <path>` or `u/http/<host>/<path>`. `https:`/`http:` modules are fetched
 * only from origins this program loaded modules from itself, or that
 * `allowed` lists, so an agent cannot make the controller fetch other URLs.
 */
export async function upstream(
  rest: string,
  allowed: readonly string[] = [],
): Promise<ModuleAnswer> {
  let url: string;
  let npm = false;
  if (rest.startsWith("p/npm/")) {
    url = npmRegistry() + rest.slice(6);
    npm = true;
  } else if (rest.startsWith("p/jsr/")) {
    url = jsrRegistry() + rest.slice(6);
  } else if (/^u\/https?\//.test(rest)) {
    const scheme = rest.startsWith("u/https/") ? "https" : "http";
    url = `${scheme}://${rest.slice(scheme.length + 3)}`;
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return text(400, "Bad request: not a URL");
    }
    const origins = new Set([
      ...allowed.map((a) => new URL(a).origin),
      ...(await loadedModuleUrls()).map((u) => new URL(u).origin),
    ]);
    if (!origins.has(origin)) {
      return text(
        403,
        `Forbidden: the controller loads no module from ${origin}; list it in the tunnel's remoteModules option`,
      );
    }
  } else {
    return text(404, "Not found");
  }
  const known = memory.get(url);
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
  let type = TYPES[media] ?? (npm ? 6 : guessType(url));
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
    memory.set(url, answer);
    memoryBytes += body.length;
  }
  return answer;
}

function guessType(url: string): number {
  const path = new URL(url).pathname;
  if (/\.(ts|mts|cts)$/.test(path)) return 1;
  if (/\.json$/.test(path)) return 3;
  if (/\.tsx$/.test(path)) return 4;
  if (/\.jsx$/.test(path)) return 5;
  return 2;
}
