/**
 * The POSIX shell script that starts an agent on any target. Every
 * transport runs it with `sh -c`; only the way to reach `sh` differs.
 *
 * It makes a private temporary directory, makes sure the per-user caches
 * exist (`~/.cache/chopsticks/modules` for modules, and `deno` in it for
 * Deno's own caches: its V8 code cache makes agents start faster; what
 * one agent adds there under its loopback port is removed when it ends, and
 * Deno's cache databases are reset when an agent found one past 64 MiB and
 * left `reset` there), reads two lines from stdin (shell
 * `export`s for the environment, then the import map), and starts Deno in
 * its own process group with stdout sent to stderr, so nothing the remote
 * code prints can reach the channel. The channel runs through two FIFOs that
 * `cat` relays to the real stdin and stdout. When stdin ends (the controller
 * closed the tunnel or died) the agent gets SIGTERM (it removes what it was
 * writing and exits), and a second later its whole process group is killed
 * (a hung agent too); when Deno ends, the relays are stopped. The agent
 * removes its directories as it ends; when it was killed the script does,
 * and the temporary files the agent listed in `$d/t` (half-received files
 * of a `put`; only names made like those, since code on a scoped agent can
 * write that list).
 *
 * @module
 */
import {
  permissionFlags,
  type Permissions,
  shellQuote,
} from "./_permissions.ts";

/** What the script needs to know. */
export interface AgentScriptOptions {
  /** Path or name of the deno binary on the target. */
  deno: string;
  /** The agent's permissions. */
  permissions: Permissions | undefined;
  /** The port of the agent's loopback module server. */
  port: number;
  /** The bootstrap module, as a data URL. */
  bootstrap: string;
  /** Working directory of the agent. */
  cwd?: string;
}

/**
 * Shell lines that set `D` to the deno binary, or exit with 127 and say so.
 * `deno` (the default) is looked up on PATH, then in the usual install
 * places, then among binaries uploaded before (`deno: "upload"`; this
 * controller's version first); any other value is used as given.
 */
function findDeno(deno: string): string {
  const quoted = shellQuote(deno);
  const say = (what: string) =>
    `{ echo "chopsticks: deno not found: ${what}" >&2; exit 127; }`;
  if (deno !== "deno") {
    return `D=${quoted}
command -v "$D" >/dev/null 2>&1 || ${say(deno.replaceAll('"', ""))}`;
  }
  const cache =
    `"\${XDG_CACHE_HOME:-\${HOME:-/nonexistent}/.cache}"/chopsticks`;
  return `D=$(command -v deno 2>/dev/null) || for D in "\${HOME:-/nonexistent}/.deno/bin/deno" /usr/local/bin/deno /usr/bin/deno ${cache}/deno-${Deno.version.deno}-* ${cache}/deno-*; do
  [ -x "$D" ] && break
  D=
done
[ -n "$D" ] || ${
    say(
      "not on PATH, nor in ~/.deno/bin, /usr/local/bin, /usr/bin or the upload cache",
    )
  }`;
}

/** Builds the script. */
export function agentScript(o: AgentScriptOptions): string {
  const loopback = `127.0.0.1:${o.port}`;
  // The per-user caches steer later agents of the user (the agent's code,
  // modules, Deno's code cache): only an agent that could write them anyway
  // shares them. A scoped one reads the module cache and keeps Deno's
  // caches in its private directory.
  const p = o.permissions;
  const shared = p === undefined || p.write === true || p.run === true ||
    p.ffi === true;
  const flags = permissionFlags(p, {
    read: [`"$d"`, `"$k"`],
    write: shared ? [`"$d"`, `"$k"`] : [`"$d"`],
    net: [loopback],
    import: [loopback],
  });
  const sharedCaches = `c="$k/deno"
if [ -d "$c" ] || mkdir -p "$c" 2>/dev/null; then
  [ -f "$c/reset" ] && rm -f "$c"/*_cache_v2* "$c/reset"
else
  mkdir -p "$k" 2>/dev/null || k="$d/k"
  c="$d/c"
fi`;
  const privateCaches = `[ -d "$k" ] || k="$d/k"
c="$d/c"`;
  const cd = o.cwd === undefined
    ? ""
    : `cd ${shellQuote(o.cwd)} || { echo "chopsticks: cannot enter ${
      o.cwd.replaceAll('"', "")
    }" >&2; exit 125; }\n`;
  return `umask 077
d=$(mktemp -d "\${TMPDIR:-/tmp}/chopsticks.XXXXXXXX") || exit 125
c="$d/c"
p= r= o=
trap '[ -f "$d/t" ] && while IFS= read -r f; do case $f in /*) case \${f##*/} in .?*.chopsticks-????????.tmp) rm -f -- "$f" ;; esac ;; esac; done <"$d/t"; for f in "$d" "$c/remote/http/127.0.0.1_PORT${o.port}" "$c/gen/http/127.0.0.1_PORT${o.port}"; do [ -e "$f" ] && rm -rf "$f"; done' EXIT
trap 'for j in "-$p" "$r" "$o"; do [ "$j" != - ] && [ -n "$j" ] && kill -KILL -- "$j" 2>/dev/null; done; exit 129' HUP INT TERM
IFS= read -r e || exit 125
eval "$e"
IFS= read -r m || exit 125
printf '%s\\n' "$m" >"$d/m.json"
exec 5<&0 </dev/null
mkfifo "$d/i" "$d/o" || exit 125
k="\${XDG_CACHE_HOME:-\${HOME:-/nonexistent}/.cache}/chopsticks/modules"
${shared ? sharedCaches : privateCaches}
${cd}${findDeno(o.deno)}
DENO_DIR="$c" setsid "$D" run -q --no-prompt --no-config --no-lock --import-map="$d/m.json" ${
    flags.join(" ")
  } ${shellQuote(o.bootstrap)} "$d/i" "$d/o" "$PWD" "$k" >&2 5<&- &
p=$!
{
  cat <&5 5<&-
  exec >/dev/null 2>&1
  kill -TERM $p
  s=
  trap 'kill $s 2>/dev/null; exit 0' TERM
  n=0
  while kill -0 $p && [ $n -lt 10 ]; do sleep 0.1 & s=$!; wait $s; n=$((n + 1)); done
  kill -KILL -$p
} >"$d/i" &
r=$!
cat "$d/o" 5<&- &
o=$!
exec 5<&-
wait $p 2>/dev/null
rc=$?
kill -KILL -$p 2>/dev/null
kill $r 2>/dev/null
[ -p "$d/i" ] && [ -p "$d/o" ] && { (exec 3<>"$d/i" 4<>"$d/o") 2>/dev/null || :; }
wait $o
exit $rc
`;
}

/** The shell line that exports `env` for the agent script. */
export function envLine(env: Record<string, string> | undefined): string {
  const words: string[] = [];
  for (const [key, value] of Object.entries(env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new TypeError(
        `Cannot set environment variable "${key}": names are letters, digits and _`,
      );
    }
    if (/[\n\0]/.test(value)) {
      throw new TypeError(
        `Cannot set environment variable "${key}": the value holds a newline or NUL`,
      );
    }
    words.push(`${key}='${value.replaceAll("'", `'\\''`)}'`);
  }
  return words.length ? `export ${words.join(" ")}` : ":";
}
