/**
 * `deno: "upload"`: ships the controller's own deno binary to a target
 * that has none, through the transport itself, and keeps it there in a
 * per-user cache (`~/.cache/chopsticks/deno-<version>-<sha256 prefix>`).
 *
 * One short shell step runs before the agent: it reports the cached path
 * when the binary is there, else the target's `uname -sm`. When the OS and
 * architecture match, the controller streams the binary on the same stdin;
 * the step checks its size and sha256, checks that it runs, and renames it
 * into place atomically. A wrong OS or architecture sends nothing and fails
 * with a clear error.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ConnectError } from "../errors.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";
import { OutputLines, type OutputSink } from "../tunnel/_output.ts";
import { LineReader, TooMuchOutput } from "./_lines.ts";
import { MAX_NOISE } from "../wire/_protocol.ts";
import { STAGE_HINTS } from "../tunnel/_connect_hints.ts";

/** What the upload step needs besides the transport. */
export interface UploadOptions {
  /** Milliseconds to wait for each answer and each write. */
  connectTimeout: number;
  /** Receives the step's stderr lines and a line when it uploads. */
  output: OutputSink;
  /** The transport's hint, added to errors. */
  hint?: string;
  /** Aborts when the tunnel is closed: the step stops at once. */
  closed?: AbortSignal;
}

/** How long a stopped step may take to end after SIGTERM, before SIGKILL. */
const STOP_GRACE = 2000;

/** This controller's binary: where it is, its size, hash and cache key. */
export interface LocalDeno {
  /** The binary's real path. */
  path: string;
  /** Its size in bytes. */
  size: number;
  /** Its sha256, in hex. */
  sha256: string;
  /** Its name in the target's cache: `deno-<version>-<sha256 prefix>`. */
  key: string;
}

let local: Promise<LocalDeno> | undefined;

/** Hashes the running deno binary once per process. */
export function localDeno(): Promise<LocalDeno> {
  return local ??= (async () => {
    const path = Deno.realPathSync(Deno.execPath());
    const hash = createHash("sha256");
    let size = 0;
    using file = await Deno.open(path);
    for await (const chunk of file.readable) {
      hash.update(chunk);
      size += chunk.length;
    }
    const sha256 = hash.digest("hex");
    return {
      path,
      size,
      sha256,
      key: `deno-${Deno.version.deno}-${sha256.slice(0, 16)}`,
    };
  })();
}

const OS: Record<string, string> = {
  Linux: "linux",
  Darwin: "darwin",
  FreeBSD: "freebsd",
  NetBSD: "netbsd",
};
const ARCH: Record<string, string> = {
  x86_64: "x86_64",
  amd64: "x86_64",
  aarch64: "aarch64",
  arm64: "aarch64",
};

/** The step's shell script; `marker` starts each line meant for us. */
export function uploadScript(d: LocalDeno, marker: string): string {
  return `umask 077
[ -n "$HOME" ] || { echo "chopsticks: HOME is not set, so deno has no cache there" >&2; exit 125; }
k=\${XDG_CACHE_HOME:-$HOME/.cache}/chopsticks
f=$k/${d.key}
if [ -x "$f" ]; then echo "${marker} have $f"; exit 0; fi
echo "${marker} need $(uname -s) $(uname -m) $f"
mkdir -p "$k" || exit 125
for o in "$k"/.deno-*.part; do p=\${o%.part}; p=\${p##*.}; case $p in *[!0-9]*|"") continue ;; esac; kill -0 "$p" 2>/dev/null || rm -f "$o"; done
t=$k/.${d.key}.$$.part
trap 'rm -f "$t"' EXIT
trap 'exit 143' HUP INT TERM
cat >"$t" || exit 125
[ -s "$t" ] || exit 0
n=$(wc -c <"$t")
[ "$n" -eq ${d.size} ] || { echo "chopsticks: the upload stopped after $n of ${d.size} bytes" >&2; exit 125; }
if command -v sha256sum >/dev/null 2>&1; then h=$(sha256sum <"$t")
elif command -v shasum >/dev/null 2>&1; then h=$(shasum -a 256 <"$t")
else h=${d.sha256}; fi
case $h in ${d.sha256}*) ;; *) echo "chopsticks: the uploaded deno has the wrong sha256" >&2; exit 125 ;; esac
chmod 700 "$t" || exit 125
v=$("$t" --version 2>&1) || { echo "chopsticks: the uploaded deno does not run there: $(printf '%s\\n' "$v" | head -n 1)" >&2; exit 126; }
mv -f "$t" "$f" || exit 125
echo "${marker} done $f"
`;
}

/**
 * Makes sure the controller's deno is cached on the target reached by
 * `spawn`, uploading it when missing, and resolves to its path there.
 */
export async function uploadDeno(
  host: string,
  spawn: (script: string) => SpawnSpec,
  options: UploadOptions,
): Promise<string> {
  const d = await localDeno();
  const marker = `chopsticks-upload-${crypto.randomUUID().slice(0, 8)}`;
  const spec = spawn(uploadScript(d, marker));
  const fail = (
    stage: "spawn" | "transport" | "agent" | "timeout",
    what: string,
    extra: { exitCode?: number; stderrTail?: string[]; cause?: unknown } = {},
  ) =>
    new ConnectError(
      host,
      stage,
      `Cannot connect to "${host}": ${what}${
        options.hint ? "; " + options.hint : ""
      }`,
      extra,
    );
  const closedError = (
    extra: { stderrTail?: string[]; cause?: unknown } = {},
  ) =>
    new ConnectError(
      host,
      "closed",
      `Cannot connect to "${host}": the tunnel was closed while it connected (uploading deno)`,
      extra,
    );
  if (options.closed?.aborted) throw closedError();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(spec.command, {
      args: spec.args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    throw new ConnectError(
      host,
      "spawn",
      `Cannot connect to "${host}": cannot start ${spec.command}: ${
        (e as Error).message
      }`,
      { cause: e },
    );
  }
  const preamble = spec.preamble;
  const stderr = new OutputLines(
    host,
    options.output,
    preamble && ((line) => preamble.filter(line)),
  );
  const stderrDone = stderr.drain(child.stderr);
  const noise = new OutputLines(host, options.output);
  // The step prints a few short lines: more than the agent may print
  // before its handshake is refused, like there.
  const lines = new LineReader(child.stdout, noise, marker + " ", MAX_NOISE);
  // Settled once a stopped step ended or was killed: its output is not
  // waited for then (a process it started may hold it open).
  const abandoned = Promise.withResolvers<null>();
  const next = () =>
    Promise.race([lines.next(), abandoned.promise]).catch((e) => {
      if (!(e instanceof TooMuchOutput)) throw e;
      throw new ConnectError(
        host,
        "handshake",
        `Cannot connect to "${host}": more than ${
          MAX_NOISE / 1024 / 1024
        } MiB of output while looking for deno; ${STAGE_HINTS.handshake}`,
        { stderrTail: stderr.tail, cause: e },
      );
    });
  const writer = child.stdin.getWriter();
  writer.closed.catch(() => {});
  // The transport's step (sudo's password) runs beside the step's own
  // protocol: the step's first line can only come after it.
  let refused: unknown;
  preamble?.ready?.((bytes) => void writer.write(bytes).catch(() => {}))
    .catch((e) => {
      refused = e;
      stop();
    });
  let finished = false;
  const signal = (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch {
      // It has exited.
    }
  };
  // Stopping ends its input and sends SIGTERM, on which the step removes
  // its part of the file (SIGKILL would leave it, on Local and sudo); one
  // still there when `ended()` gives up on it gets SIGKILL.
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    void writer.abort().catch(() => {});
    signal("SIGTERM");
    const late = setTimeout(() => {
      signal("SIGKILL");
      abandoned.resolve(null);
    }, STOP_GRACE);
    child.status.finally(() => {
      clearTimeout(late);
      abandoned.resolve(null);
    });
  };
  let givenUp = false;
  const giveUp = () => {
    givenUp = true;
    stop();
  };
  options.closed?.addEventListener("abort", giveUp, { once: true });
  if (options.closed?.aborted) giveUp();
  const ended = async (): Promise<Deno.CommandStatus> => {
    // Closing waits for a write under way, which a step that reads nothing
    // holds for ever: stopped then.
    const closed = await bounded(
      writer.close().then(() => true, () => true),
      STOP_GRACE,
    );
    if (closed === undefined) stop();
    const status = await bounded(
      child.status,
      stopped ? STOP_GRACE : options.connectTimeout,
    );
    if (status === undefined) signal("SIGKILL");
    await bounded(stderrDone, 200);
    await lines.cancel();
    finished = true;
    return status ?? await child.status;
  };
  const exited = async (why?: string) => {
    const status = await ended();
    const last = stderr.tail.filter((l) => l.trim() !== "").at(-1);
    return fail(
      "transport",
      `${why ?? `${spec.command} exited with code ${status.code}`}${
        last ? ": " + last : ""
      }`,
      { exitCode: status.code, stderrTail: stderr.tail },
    );
  };
  try {
    const first = await bounded(next(), options.connectTimeout);
    if (first === undefined) {
      stop();
      await ended();
      throw fail(
        "timeout",
        `no answer within ${options.connectTimeout} ms while looking for deno`,
        { stderrTail: stderr.tail },
      );
    }
    if (first === null) {
      if (refused) {
        await ended();
        throw refused;
      }
      throw await exited();
    }
    const [verb, ...rest] = first.split(" ");
    if (verb === "have") {
      await ended();
      return rest.join(" ");
    }
    if (verb !== "need") throw await exited();
    const [os, arch] = rest;
    if (OS[os] !== Deno.build.os || ARCH[arch] !== Deno.build.arch) {
      await ended();
      throw new ConnectError(
        host,
        "agent",
        `Cannot connect to "${host}": cannot upload deno: the target runs ${os} ${arch}, this deno is built for ${Deno.build.os} ${Deno.build.arch}; install deno there and pass its path as the deno option`,
      );
    }
    if (!await send(d.path, writer, options.connectTimeout)) {
      stop();
      throw await exited("the upload of deno stopped");
    }
    await writer.close().catch(() => {});
    const done = await bounded(next(), options.connectTimeout);
    if (done === undefined || done === null || !done.startsWith("done ")) {
      throw await exited();
    }
    await ended();
    const target = done.slice(5);
    options.output(
      `chopsticks: uploaded deno ${Deno.version.deno} (${
        (d.size / 1e6).toFixed(1)
      } MB) to ${target}`,
      host,
    );
    return target;
  } catch (e) {
    if (!givenUp) throw e;
    throw closedError({ stderrTail: stderr.tail, cause: e });
  } finally {
    options.closed?.removeEventListener("abort", giveUp);
    if (!finished) {
      stop();
      await ended();
    }
  }
}

/** Streams the file at `path`; false when a write stalls or fails. */
async function send(
  path: string,
  writer: WritableStreamDefaultWriter<Uint8Array>,
  stall: number,
): Promise<boolean> {
  using file = await Deno.open(path);
  for await (const chunk of file.readable) {
    const wrote = await bounded(writer.write(chunk).then(() => true), stall)
      .catch(() => false);
    if (!wrote) return false;
  }
  return true;
}

/** `promise`'s value, or undefined when it takes more than `ms`. */
async function bounded<T>(
  promise: Promise<T>,
  ms: number,
): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}
