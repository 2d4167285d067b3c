/**
 * The controller's side of the agent's module server. The agent relays
 * each HTTP request its loopback listener gets; this answers it from the
 * controller's own files, and only with module files under the allowed
 * roots. The agent is not trusted: every path is checked here.
 *
 * URL paths look like `/<secret>/f/<absolute file path>` for files,
 * `/<secret>/v/<name>` for the few files the server holds in memory (the
 * agent's own code), `/<secret>/p/npm/...` and `/<secret>/p/jsr/...` for
 * the npm and JSR registries, and `/<secret>/u/https/<host>/...` for remote
 * modules (see `_upstream.ts`).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { MAX_FRAME, MODULE_TYPES } from "../wire/_protocol.ts";
import {
  atPlaceholder,
  readAtMost,
  Readers,
  upstream,
  within,
} from "./_upstream.ts";
import { isUnder } from "./_paths.ts";

const EMPTY = new Uint8Array(0);

/**
 * The largest module served, file or upstream answer: what fits in one
 * `ModuleResponse` frame with its head.
 */
export const MAX_MODULE = MAX_FRAME - 512;

const MEDIA: readonly string[] = MODULE_TYPES;

/** Extensions that may be served, and the index of their media type. */
const EXTENSIONS: Record<string, number> = {
  ".ts": 1,
  ".mts": 1,
  ".js": 2,
  ".mjs": 2,
  ".json": 3,
  ".tsx": 4,
  ".jsx": 5,
};

/**
 * What one module answer may hold of its agent's share of the controller's
 * memory while it is read (see `tunnel/_module_requests.ts`): a file waits
 * for room for its size before it is read, a download before each chunk.
 */
export interface AnswerHold {
  /** True once the answer is not wanted (its agent's tunnel ended). */
  readonly gone: boolean;
  /** Whether `bytes` more may be read for this answer now (true once gone). */
  fits(bytes: number): boolean;
  /** Counts `bytes` read for this answer. */
  take(bytes: number): void;
  /**
   * Calls `listener` once, at the next change that may make room (an
   * answer let go, the agent reading, its tunnel ending); returns the way
   * to take it back.
   */
  onChange(listener: () => void): () => void;
}

/**
 * Resolves at the next change that may make room in `hold`. Waiting for
 * room is `while (!hold.fits(n)) await changed(hold);` followed by
 * `hold.take(n)` in the same turn: an `await` between the check and the
 * take would let other answers see the same room.
 */
export function changed(hold: AnswerHold): Promise<void> {
  return new Promise((resolve) => hold.onChange(resolve));
}

/** A module server answer: HTTP status, media type index, body. */
export interface ModuleAnswer {
  /** HTTP status code. */
  status: number;
  /** Index into `MODULE_TYPES`. */
  type: number;
  /** The body. */
  body: Uint8Array;
  /** Hex sha256 of the body, set on 200 answers by `answer()`. */
  sha256?: string;
}

const utf8 = new TextEncoder();

function refuse(status: number, why: string): ModuleAnswer {
  return { status, type: 0, body: utf8.encode(why) };
}

/** Serves module files under `roots` to the holder of `secret`. */
export class ModuleServer {
  #roots: Promise<string[]>;
  #secret: string;
  #memory: Map<string, ModuleAnswer>;
  #relay: string | undefined;
  #remoteModules: readonly string[];

  /**
   * `roots` are absolute directory paths, each taken as given and with its
   * symlinks resolved (Deno names a linked package's modules by the path
   * its `links` entry gives, symlinks and all; a file's real path must
   * still be under one of them);
   * `memory` maps names to answers served at `/<secret>/v/<name>`. With
   * `relay` (on an agent that opens tunnels of its own: its own module
   * server's URL prefix), files are fetched from there instead, so the
   * request goes up to the controller, which checks it against its roots.
   */
  constructor(
    roots: string[],
    secret: string,
    memory: Record<string, ModuleAnswer> = {},
    relay?: string,
    remoteModules: readonly string[] = [],
  ) {
    this.#relay = relay;
    this.#remoteModules = remoteModules;
    this.#roots = Promise.all(
      roots.map(async (r) => [r, await Deno.realPath(r).catch(() => r)]),
    ).then((both) => [...new Set(both.flat())]);
    this.#secret = `/${secret}/`;
    this.#memory = new Map(Object.entries(memory));
  }

  /**
   * Answers one request for URL path `path`. `known` is the sha256 of the
   * answer the agent has cached: when the answer is still the same, it is a
   * 304 with no body. Never throws.
   */
  async answer(
    path: string,
    known = "",
    hold?: AnswerHold,
  ): Promise<ModuleAnswer> {
    const answer = await this.#answer(path, hold);
    if (answer.status !== 200) return answer;
    const sha256 = createHash("sha256").update(answer.body).digest("hex");
    if (sha256 === known) {
      return { status: 304, type: answer.type, body: EMPTY, sha256 };
    }
    return { ...answer, sha256 };
  }

  async #answer(path: string, hold?: AnswerHold): Promise<ModuleAnswer> {
    if (!sameSecret(path, this.#secret)) return refuse(404, "Not found");
    const rest = path.slice(this.#secret.length);
    // URL parsers drop tabs and newlines (`.\t.` becomes `..`): refused
    // before anything parses the path. No HTTP client sends them raw.
    if (hasControlOrSpace(rest)) {
      return refuse(400, "Bad request: a control character or space");
    }
    // URL parsing resolves these (`%2e%2e` too), which could climb out of
    // a registry's path or the relay's prefix.
    if (hasDotSegment(rest)) {
      return refuse(403, "Forbidden: empty, dot or traversal segment");
    }
    if (rest.startsWith("v/")) {
      return this.#memory.get(rest.slice(2)) ?? refuse(404, "Not found");
    }
    if (this.#relay !== undefined) {
      return await relay(this.#relay, rest, hold);
    }
    if (rest.startsWith("p/") || rest.startsWith("u/")) {
      return await upstream(rest, this.#remoteModules, undefined, hold);
    }
    if (!rest.startsWith("f/")) return refuse(404, "Not found");
    const file = decodePath(rest.slice(1));
    if (typeof file !== "string") return file;
    const roots = await this.#roots;
    const refusal = check(file, roots, "outside the module roots");
    if (refusal) return refusal;
    // Synchronous: each asynchronous call is a trip through Deno's thread
    // pool (0.1 to 0.4 ms here), per module of every agent. A regular file
    // swapped for a FIFO between the check and the read would hang the
    // controller, but whoever can do that can change the program itself.
    let real: string;
    try {
      real = Deno.realPathSync(file);
    } catch {
      return refuse(404, "Not found");
    }
    // A symlink may point anywhere: check where it really leads.
    const refusalReal = check(real, roots, "a symlink leaves the module roots");
    if (refusalReal) return refusalReal;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(real);
    } catch {
      return refuse(404, "Not found");
    }
    if (!info.isFile) return refuse(404, "Not found: not a file");
    if (info.size > MAX_MODULE) {
      return refuse(413, `Too large: over ${MAX_MODULE} bytes`);
    }
    if (hold) {
      // Taken in the turn the room is seen, before another answer can.
      while (!hold.fits(info.size)) await changed(hold);
      if (hold.gone) return refuse(503, "Unavailable: the agent is gone");
      hold.take(info.size);
    }
    try {
      return {
        status: 200,
        type: EXTENSIONS[extension(real)],
        body: Deno.readFileSync(real),
      };
    } catch {
      return refuse(404, "Not found");
    }
  }
}

/** Refuses a path outside every root, a dotfile below it, or a non-module. */
function check(
  file: string,
  roots: string[],
  outside: string,
): ModuleAnswer | undefined {
  if (!(extension(file) in EXTENSIONS)) {
    return refuse(403, "Forbidden: not a module file");
  }
  // The innermost root that holds it: a package linked from a dot
  // directory of the project (`.vendor/pkg`) is a root of its own.
  const root = roots.filter((r) => isUnder(file, r))
    .reduce<string | undefined>(
      (a, r) => a && a.length >= r.length ? a : r,
      undefined,
    );
  if (root === undefined) return refuse(403, `Forbidden: ${outside}`);
  if (file.slice(root.length).split("/").some((p) => p.startsWith("."))) {
    return refuse(403, "Forbidden: a dotfile or dot directory");
  }
  return undefined;
}

/** Fetches a module from the module server one level up. */
async function relay(
  prefix: string,
  rest: string,
  hold?: AnswerHold,
): Promise<ModuleAnswer> {
  const url = within(prefix, rest);
  if (!url) return refuse(403, "Forbidden: outside the relay's prefix");
  try {
    // The module server above never redirects.
    const response = await fetch(url, { redirect: "error" });
    const media = response.headers.get("content-type") ?? "";
    const type = Math.max(0, MEDIA.indexOf(media.split(";")[0].trim()));
    let body = await readAtMost(
      response,
      MAX_MODULE,
      hold && new Readers([hold]),
    );
    if (body === undefined) {
      return refuse(413, `Too large: over ${MAX_MODULE} bytes`);
    }
    if (rest.startsWith("p/npm/") && MEDIA[type] === "application/json") {
      // The agent above pointed npm's tarballs at itself, where the agent
      // below cannot reach: back to the placeholder each agent fills in.
      body = atPlaceholder(body, [`${prefix}p/npm/`]);
    }
    return { status: response.status, type, body };
  } catch (error) {
    return refuse(502, `Bad gateway: ${error}`);
  }
}

/** Compares the secret prefix in constant time. */
function sameSecret(path: string, prefix: string): boolean {
  if (path.length < prefix.length) return false;
  let diff = 0;
  for (let i = 0; i < prefix.length; i++) {
    diff |= path.charCodeAt(i) ^ prefix.charCodeAt(i);
  }
  return diff === 0;
}

/**
 * Decodes an absolute URL path into a file path, refusing empty, `.` and
 * `..` segments and encoded separators. Returns the path or a refusal.
 */
function decodePath(urlPath: string): string | ModuleAnswer {
  const out: string[] = [];
  for (const raw of urlPath.split("/").slice(1)) {
    let part: string;
    try {
      part = decodeURIComponent(raw);
    } catch {
      return refuse(400, "Bad request: invalid percent-encoding");
    }
    if (part === "" || part === "." || part === ".." || /[/\\\0]/.test(part)) {
      return refuse(403, "Forbidden: empty, dot or traversal segment");
    }
    out.push(part);
  }
  return "/" + out.join("/");
}

/** True when `path` holds a C0 control character, DEL or a space. */
function hasControlOrSpace(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * True when a URL path holds a `.` or `..` segment, plain or
 * percent-encoded, or a backslash (a separator to URL parsers).
 */
function hasDotSegment(path: string): boolean {
  const query = path.indexOf("?");
  const plain = query < 0 ? path : path.slice(0, query);
  return plain.includes("\\") ||
    plain.split("/").some((s) => /^(?:\.|%2e){1,2}$/i.test(s));
}

function extension(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const dot = name.lastIndexOf(".");
  return dot <= 0 ? "" : name.slice(dot).toLowerCase();
}
