/**
 * What the controller fetches for agents from the network: npm packages,
 * JSR packages and `https:`/`http:` modules. Agents often have no network
 * of their own; they reach these only through their tunnel. Answers are
 * kept in memory for the life of the controller.
 *
 * @module
 */
import { NPM_PLACEHOLDER } from "../wire/_protocol.ts";
import {
  type AnswerHold,
  MAX_MODULE,
  type ModuleAnswer,
} from "./_module_server.ts";
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

/**
 * How long one upstream request may take, from asking to the last byte of
 * the answer (else 504). Neither Deno's module loader on the agent nor the
 * agent's module request gives up by itself, and each request waiting
 * holds one of the agent's 8 module workers and up to a frame of memory.
 * 60 s is the time after which the controller gives up on a silent agent,
 * and lets the largest answer that fits in a frame (64 MiB) come at 9
 * Mbit/s; a registry slower than that fails the import instead of
 * holding the agent's module requests for ever.
 */
export const UPSTREAM_TIMEOUT = 60_000;

/** Redirects followed per upstream request. */
const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const MAX_MEMORY = 256 * 1024 * 1024;
const memory = new Map<string, ModuleAnswer>();
/** Fetches under way, by URL: the answer, and the answers waiting on it. */
const inflight = new Map<
  string,
  { answer: Promise<ModuleAnswer>; readers: Readers }
>();
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
 * `prefix`, over `http:` or `https:`, with no user name or password; a
 * redirect may also lead anywhere on the origins `elsewhere` gives.
 */
interface Scope {
  origins: ReadonlySet<string>;
  prefix: string;
  elsewhere?: () => Promise<ReadonlySet<string>>;
}

function scopeOf(base: URL): Scope {
  return { origins: new Set([base.origin]), prefix: base.pathname };
}

function plain(url: URL): boolean {
  return (url.protocol === "https:" || url.protocol === "http:") &&
    url.username === "" && url.password === "";
}

function inScope(url: URL, scope: Scope): boolean {
  return plain(url) && scope.origins.has(url.origin) &&
    url.pathname.startsWith(scope.prefix);
}

/**
 * The origins an agent may have the controller fetch `https:`/`http:`
 * modules from: those this program loaded modules from itself, and those
 * `allowed` lists (the tunnel's `remoteModules`).
 */
async function fetchable(allowed: readonly string[]): Promise<Set<string>> {
  return new Set([
    ...allowed.map((a) => new URL(a).origin),
    ...(await loadedModuleUrls()).map((u) => new URL(u).origin),
  ]);
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

/** Bytes a download is taken to read next, before it knows. */
const STEP = 64 * 1024;

/** What a download stops while it waits for room (its deadline). */
interface Pausable {
  pause(): void;
  resume(): void;
}

/**
 * The module answers waiting on one download (more may join while it
 * runs), in whose shares of memory it reads: it reads on while one of them
 * has room, and counts what it read in each (see AnswerHold). A download
 * no answer waits on (a test's) reads freely.
 */
export class Readers {
  #holds: AnswerHold[];
  #joined: (() => void) | undefined;
  /** Bytes read so far. */
  #read = 0;

  constructor(holds: AnswerHold[] = []) {
    this.#holds = holds;
  }

  /**
   * True once every answer that waited on the download is gone: it was
   * cancelled, and an answer asked for later starts a download of its own.
   */
  get abandoned(): boolean {
    return this.#abandoned;
  }
  #abandoned = false;

  /** Adds an answer that waits on the download, counting what was read. */
  join(hold: AnswerHold): void {
    hold.take(this.#read);
    this.#holds.push(hold);
    this.#joined?.();
  }

  /**
   * Resolves once one of the answers has room for `bytes` more (`paused`
   * is paused meanwhile); throws once every answer waiting is gone.
   */
  async room(bytes: number, paused?: Pausable): Promise<void> {
    if (this.#fits(bytes)) return;
    paused?.pause();
    try {
      while (!this.#fits(bytes)) {
        if (this.#holds.every((hold) => hold.gone)) {
          this.#abandoned = true;
          throw new Error("no agent waits for it any more");
        }
        let stop: (() => void)[] = [];
        await new Promise<void>((resolve) => {
          this.#joined = resolve;
          stop = this.#holds.map((hold) => hold.onChange(resolve));
        });
        for (const off of stop) off();
      }
    } finally {
      this.#joined = undefined;
      paused?.resume();
    }
  }

  /** Counts `bytes` read, in each answer's share. */
  take(bytes: number): void {
    this.#read += bytes;
    for (const hold of this.#holds) hold.take(bytes);
  }

  #fits(bytes: number): boolean {
    return this.#holds.length === 0 ||
      this.#holds.some((hold) => !hold.gone && hold.fits(bytes));
  }
}

/**
 * The body of `response`, read as it comes, or undefined once it is over
 * `limit` bytes: the rest is not read (the body is cancelled), so no more
 * than `limit` bytes are ever held. A declared length over `limit` is
 * refused before anything is read. With `readers`, each chunk waits for
 * room in the share of one of the answers waiting on it.
 */
export async function readAtMost(
  response: Response,
  limit: number,
  readers?: Readers,
  paused?: Pausable,
): Promise<Uint8Array | undefined> {
  const declared = response.headers.get("content-length");
  // (fetch decompresses: an encoded body's length says little.)
  if (
    declared !== null && !response.headers.has("content-encoding") &&
    Number(declared) > limit
  ) {
    await response.body?.cancel().catch(() => {});
    return undefined;
  }
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    try {
      await readers?.room(STEP, paused);
    } catch (error) {
      await reader.cancel().catch(() => {});
      throw error;
    }
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    readers?.take(value.length);
    chunks.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.length;
  }
  return body;
}

/** Whether a redirect to `url` leads to one of `scope`'s other origins. */
async function elsewhere(url: URL, scope: Scope): Promise<boolean> {
  return plain(url) && scope.elsewhere !== undefined &&
    (await scope.elsewhere()).has(url.origin);
}

/**
 * Fetches `url`, following redirects only to URLs in `scope` (an open
 * redirect on a registry would otherwise fetch any host for the agent),
 * and at most MAX_REDIRECTS of them. Same-origin redirects are what
 * registries and module hosts do (a version resolved, a path moved); one
 * to another origin is refused, unless `scope` allows that origin: a
 * registry may send its tarballs from a CDN that `remoteModules` lists
 * (its agents may fetch from there anyway).
 */
async function fetchWithin(
  url: URL,
  scope: Scope,
  signal: AbortSignal,
): Promise<Response | ModuleAnswer> {
  let at = url;
  for (let hops = 0;; hops++) {
    const response = await fetch(at, { redirect: "manual", signal });
    const location = response.headers.get("location");
    if (!REDIRECTS.has(response.status) || location === null) {
      return response;
    }
    await response.body?.cancel().catch(() => {});
    let next: URL | undefined;
    try {
      next = new URL(location, at);
    } catch {
      // Left undefined: refused below.
    }
    if (
      next === undefined ||
      !(inScope(next, scope) || await elsewhere(next, scope))
    ) {
      // Listing the origin helps only a plain http(s) URL elsewhere.
      const hint = next !== undefined && plain(next)
        ? " (list its origin in the tunnel's remoteModules option to allow it)"
        : "";
      return text(
        502,
        `Bad gateway: ${at} redirects to ${
          location.slice(0, 200)
        }, outside what the agent may fetch${hint}`,
      );
    }
    if (hops === MAX_REDIRECTS) {
      return text(
        502,
        `Bad gateway: more than ${MAX_REDIRECTS} redirects from ${url}`,
      );
    }
    at = next;
  }
}

/**
 * Answers `rest`, one of `p/npm/<path>`, `p/jsr/<path>`, `u/https/<host>/
 * <path>` or `u/http/<host>/<path>`. `https:`/`http:` modules are fetched
 * only from origins this program loaded modules from itself, or that
 * `allowed` lists, so an agent cannot make the controller fetch other URLs;
 * a registry's redirect may lead there too.
 */
export async function upstream(
  rest: string,
  allowed: readonly string[] = [],
  timeout: number = UPSTREAM_TIMEOUT,
  hold?: AnswerHold,
): Promise<ModuleAnswer> {
  let url: URL | undefined;
  let scope: Scope;
  let npm = false;
  if (rest.startsWith("p/npm/") || rest.startsWith("p/jsr/")) {
    npm = rest.startsWith("p/npm/");
    const base = npm ? npmRegistry() : jsrRegistry();
    url = within(base, rest.slice(6));
    scope = { ...scopeOf(new URL(base)), elsewhere: () => fetchable(allowed) };
  } else if (/^u\/https?\//.test(rest)) {
    const scheme = rest.startsWith("u/https/") ? "https" : "http";
    try {
      url = new URL(`${scheme}://${rest.slice(scheme.length + 3)}`);
    } catch {
      return text(400, "Bad request: not a URL");
    }
    scope = { origins: await fetchable(allowed), prefix: "/" };
    if (!inScope(url, scope)) {
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
  // Kept and shared by the URL and the origins redirects may lead to
  // (tunnels with other `remoteModules` follow other redirects).
  const key = `${url.href}\n${[...allowed].sort().join(" ")}`;
  const known = memory.get(key);
  if (known) return known;
  // Agents that ask for the same URL at once (a fleet starting) share one
  // fetch, and one copy of its answer; it reads on while one of them has
  // room for it.
  const fetching = inflight.get(key);
  if (fetching && !fetching.readers.abandoned) {
    if (hold) fetching.readers.join(hold);
    return await fetching.answer;
  }
  const readers = new Readers(hold ? [hold] : []);
  const answer = fetchAnswer(url, key, scope, npm, timeout, readers);
  inflight.set(key, { answer, readers });
  answer.finally(() => {
    if (inflight.get(key)?.answer === answer) inflight.delete(key);
  }).catch(() => {});
  return await answer;
}

/**
 * An abort signal given `ms` of running time: the time `pause()` stops
 * does not count (a download waiting for room to read into).
 */
function runningTimeout(ms: number): Pausable & {
  signal: AbortSignal;
  clear(): void;
} {
  const control = new AbortController();
  let left = ms;
  let since = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    timer = setTimeout(
      () => control.abort(new DOMException("timed out", "TimeoutError")),
      Math.max(0, left),
    );
  };
  arm();
  return {
    signal: control.signal,
    pause() {
      clearTimeout(timer);
      left -= performance.now() - since;
    },
    resume() {
      since = performance.now();
      arm();
    },
    clear: () => clearTimeout(timer),
  };
}

/** Fetches `url` for {@linkcode upstream}, and keeps a good answer. */
async function fetchAnswer(
  url: URL,
  key: string,
  scope: Scope,
  npm: boolean,
  timeout: number,
  readers: Readers,
): Promise<ModuleAnswer> {
  const deadline = runningTimeout(timeout);
  const signal = deadline.signal;
  let response: Response | ModuleAnswer;
  let read: Uint8Array | undefined;
  try {
    response = await fetchWithin(url, scope, signal);
    if (!(response instanceof Response)) return response;
    read = await readAtMost(response, MAX_MODULE, readers, deadline);
  } catch (error) {
    if (readers.abandoned) {
      return text(503, `Unavailable: no agent waits for ${url} any more`);
    }
    if (signal.aborted) {
      return text(
        504,
        `Gateway timeout: the controller could not fetch ${url} within ${
          timeout / 1000
        } s`,
      );
    }
    return text(
      502,
      `Bad gateway: the controller cannot fetch ${url}: ${error}`,
    );
  } finally {
    deadline.clear();
  }
  if (read === undefined) {
    return text(
      413,
      `Too large: ${url} is over ${MAX_MODULE} bytes, what fits in a frame`,
    );
  }
  let body = read;
  const media = (response.headers.get("content-type") ?? "").split(";")[0]
    .trim();
  let type = TYPES[media] ?? (npm ? 6 : guessType(url.pathname));
  if (npm && (media.includes("json") || type === 3)) {
    // Tarball URLs in npm metadata point back through the agent.
    body = atPlaceholder(body, [npmRegistry(), "https://registry.npmjs.org/"]);
    type = 3;
  }
  const answer = { status: response.status, type, body };
  if (response.ok && memoryBytes + body.length <= MAX_MEMORY) {
    memory.set(key, answer);
    memoryBytes += body.length;
  }
  return answer;
}

/**
 * npm metadata `body` with every registry URL of `registries` in it
 * replaced by the placeholder each agent fills in with its own address.
 */
export function atPlaceholder(
  body: Uint8Array,
  registries: string[],
): Uint8Array<ArrayBuffer> {
  let json = new TextDecoder().decode(body);
  for (const registry of registries) {
    json = json.replaceAll(registry, NPM_PLACEHOLDER);
  }
  return new TextEncoder().encode(json);
}

function guessType(path: string): number {
  if (/\.(ts|mts|cts)$/.test(path)) return 1;
  if (/\.json$/.test(path)) return 3;
  if (/\.tsx$/.test(path)) return 4;
  if (/\.jsx$/.test(path)) return 5;
  return 2;
}
