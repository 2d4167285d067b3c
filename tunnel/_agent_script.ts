/**
 * The POSIX shell script that starts an agent on any target. Every
 * transport runs it with `sh -c`; only the way to reach `sh` differs.
 *
 * It reads two lines from stdin (shell `export`s for the environment, then the
 * import map) before it makes anything, so that a script killed while it waits
 * for them leaves nothing. It makes a private temporary directory (what the
 * script makes is private: umask 077; Deno gets the umask the script was given
 * back, so remote code makes files as a shell there would), makes sure the
 * per-user caches exist (`~/.cache/chopsticks/modules` for modules, and `deno`
 * in it for Deno's own caches, such as npm packages; Deno's V8 code cache is
 * off: an agent's modules come from a URL with its own port, so their entries
 * would be written by every agent and read by none, and the agent's own code
 * compiles faster than it is looked up there; what one agent adds there under
 * its loopback port (modules, and the npm packages Deno unpacked, under
 * `npm/<port>`) is removed when it ends (by the script only if the agent wrote
 * `$_d/bound`: it listens on that port, which an agent that found the port
 * taken must not clean), and Deno's cache databases are reset when an agent
 * found one past 64 MiB and left `reset` there), and starts Deno in its own
 * process group with stdout sent to stderr, so nothing the remote code prints
 * can reach the channel. The channel's input runs through a FIFO that `dd`
 * relays from the real stdin (so the script sees stdin end even when the agent
 * is hung, unless the agent left the FIFO full and `dd` waits to write; `dd`
 * opens the FIFO itself, so it is started and ready when Deno opens the other
 * end, where the shell would start `cat` only then; its pid goes to `$_d/r`,
 * so that an agent that may resize pipes can name the script's stdin while
 * a file streams: see `wire/_pipes.ts`); its output goes to the
 * real stdout, which an agent with every permission opens as
 * `/proc/<the script's pid>/fd/1` (so that no process it starts inherits it)
 * when it is a pipe that its user may open (not under sudo, where it is
 * root's), and any other agent reaches through a second FIFO and `cat` (Deno
 * lets only the former open a file descriptor path). The script opens that FIFO
 * itself before Deno starts, so that neither Deno nor the `cat` relay, which
 * reads the script's descriptor, waits in an open: read-write first (which
 * never waits), then for reading and for writing, keeping only the last, so
 * that `cat` is its only reader; it lets go of it once Deno ended, and the
 * relay then copies what is left and ends. `cat` runs under a shell of its own
 * (a process more, where one `mkfifo` making both FIFOs is one less), which
 * notices a `cat` that ended before (killed): it stops the agent as when stdin
 * ends and says so on stderr, and the agent's writes fail meanwhile (nothing
 * reads the FIFO), which ends it too.
 *
 * When stdin ends (the controller closed the tunnel or died) the agent gets
 * SIGTERM (it removes what it was writing and exits), and a second later its
 * whole process group is killed (a hung agent too); when Deno ends, the relays
 * are stopped (the script holds the input FIFO open until it exits, so that a
 * `dd` that had not opened it yet is not left waiting for a reader). The
 * script itself, sent SIGHUP, SIGINT or SIGTERM (by `close()` or the liveness
 * check), kills the agent's process group and sends each relay's shell
 * SIGCONT and SIGTERM, on which it kills its relay with SIGKILL: a relay
 * stopped with SIGSTOP goes too (it ignores any other signal until it is
 * continued, and holds its FIFO meanwhile). Once it cleans up (a signal,
 * or its exit), it ignores those signals: a second one (a terminal's Ctrl-C
 * reaches the script, then the controller's own SIGTERM as it closes the
 * tunnel) cut the cleanup short and left the private directory. While it
 * makes that directory, a signal waits until its name is known (it came
 * during `mktemp`, and the exit left a directory nobody knew). The cleanup
 * finds `rm` on the PATH the script was started with too, should the
 * `env` option have given one without it. The agent
 * removes its directories as it ends, whatever ended it (the channel closed,
 * SIGTERM, a write the controller no longer reads); when it was killed, they
 * are removed with the temporary files the agent listed in `$_d/t`
 * (half-received files of a `put`; only names made like those, since code on a
 * scoped agent can write that list) by the script's exit trap, or, when the
 * script itself was killed (Deno SIGKILLs the processes it waits on when a
 * controller dies of an uncaught error), by the shell of the input relay, which
 * outlives it and stops the agent.
 *
 * @module
 */
import {
  grantsEverything,
  permissionFlags,
  type Permissions,
  shellQuote,
} from "./_permissions.ts";
import { refuse } from "./_option_checks.ts";

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
 * Shell lines that set `_D` to the deno binary, or exit with 127 and say so.
 * `deno` (the default) is looked up on PATH, then in the usual install
 * places, then among binaries uploaded before (`deno: "upload"`; this
 * controller's version first); any other value is used as given.
 */
function findDeno(deno: string): string {
  const quoted = shellQuote(deno);
  const say = (what: string) =>
    `{ echo "chopsticks: deno not found: ${what}" >&2; exit 127; }`;
  if (deno !== "deno") {
    return `_D=${quoted}
command -v "$_D" >/dev/null 2>&1 || ${say(deno.replaceAll('"', ""))}`;
  }
  const cache =
    `"\${XDG_CACHE_HOME:-\${HOME:-/nonexistent}/.cache}"/chopsticks`;
  // PATH is searched by hand: \`$(command -v deno)\` would fork a subshell.
  return `_D= _i=$IFS
set -f
IFS=:
for _f in $PATH; do [ -f "\${_f:-.}/deno" ] && [ -x "\${_f:-.}/deno" ] && { _D=\${_f:-.}/deno; break; }; done
IFS=$_i
set +f
[ -n "$_D" ] || for _D in "\${HOME:-/nonexistent}/.deno/bin/deno" /usr/local/bin/deno /usr/bin/deno ${cache}/deno-${Deno.version.deno}-* ${cache}/deno-*; do
  [ -x "$_D" ] && break
  _D=
done
[ -n "$_D" ] || ${
    say(
      "not on PATH, nor in ~/.deno/bin, /usr/local/bin, /usr/bin or the upload cache",
    )
  }`;
}

/** Builds the script. */
export function agentScript(o: AgentScriptOptions): string {
  const loopback = `127.0.0.1:${o.port}`;
  // The per-user caches steer later agents of the user (the agent's code,
  // modules, Deno's caches): only an agent that could write them anyway
  // shares them. A scoped one reads the module cache and keeps Deno's
  // caches in its private directory.
  const p = o.permissions;
  const shared = p === undefined || p.write === true || p.run === true ||
    p.ffi === true;
  // Deno lets only an agent with every permission open the script's
  // stdout again (as /proc/<the script's pid>/fd/1: not a descriptor of its
  // own, which processes it starts would inherit, holding the channel open
  // after it ended): that one writes the channel itself, where
  // stdout is a pipe it may open (under sudo it is root's; tried with an
  // open, since busybox's `test -w` says yes to any root); the others write
  // a FIFO that `cat` relays. The script's own stdout must stay the channel
  // while Deno starts: Deno runs in the background, and no command of the
  // script after it redirects stdout (dash sets a foreground command's
  // redirections up in the shell itself, for as long as the command runs).
  const direct = grantsEverything(p);
  const flags = permissionFlags(p, {
    read: [`"$_d"`, `"$_k"`],
    write: shared ? [`"$_d"`, `"$_k"`] : [`"$_d"`],
    net: [loopback],
    import: [loopback],
  });
  const sharedCaches = `_c="$_k/deno"
if [ -d "$_c" ] || mkdir -p "$_c" 2>/dev/null; then
  [ -f "$_c/reset" ] && rm -f "$_c"/*_cache_v2* "$_c/reset"
else
  mkdir -p "$_k" 2>/dev/null || _k="$_d/k"
  _c="$_d/c"
fi`;
  const privateCaches = `[ -d "$_k" ] || _k="$_d/k"
_c="$_d/c"`;
  const cd = o.cwd === undefined
    ? ""
    : `cd ${shellQuote(o.cwd)} || { echo "chopsticks: cannot enter ${
      o.cwd.replaceAll('"', "")
    }" >&2; exit 125; }\n`;
  const fifos = direct
    ? `if [ "$_w" != "$_d/o" ]; then mkfifo "$_d/i"; else mkfifo "$_d/i" "$_w" && exec 4<>"$_w" 7<"$_w" 4>"$_w"; fi || exit 125`
    : `mkfifo "$_d/i" "$_w" && exec 4<>"$_w" 7<"$_w" 4>"$_w" || exit 125`;
  return `_d= _c= _p= _r= _o= _h=$PATH
_x() {
  PATH=$PATH:$_h
  [ -f "$_d/t" ] && while IFS= read -r _f; do case $_f in /*) case \${_f##*/} in .?*.chopsticks-????????.tmp) rm -f -- "$_f" ;; esac ;; esac; done <"$_d/t"
  [ -f "$_d/bound" ] && for _f in "$_c/remote/http/127.0.0.1_PORT${o.port}" "$_c/gen/http/127.0.0.1_PORT${o.port}" "$_c/npm/${o.port}"; do [ -e "$_f" ] && rm -rf "$_f"; done
  [ -e "$_d" ] && rm -rf "$_d"
}
_t() {
  kill -TERM $_p
  _n=0
  while kill -0 $_p && [ $_n -lt 10 ]; do sleep 0.1 & _s=$!; wait $_s; _n=$((_n + 1)); done
  kill -KILL -$_p
}
_g() {
  trap "" HUP INT TERM
  [ -n "$_p" ] && kill -KILL -$_p 2>/dev/null
  for _j in $_r $_o; do kill -CONT $_j; kill -TERM $_j; done 2>/dev/null
  exit 129
}
trap 'trap "" HUP INT TERM; [ -z "$_d" ] || _x' EXIT
trap _g HUP INT TERM
IFS= read -r _e || exit 125
IFS= read -r _m || exit 125
_z=
trap _z=1 HUP INT TERM
_u=$(umask; mktemp -d "\${TMPDIR:-/tmp}/chopsticks.XXXXXXXX") || exit 125
_d=\${_u#*[!0-7]} _u=\${_u%%[!0-7]*}
trap _g HUP INT TERM
[ -z "$_z" ] || _g
umask 077
_c="$_d/c"
eval "$_e"
printf '%s\\n' "$_m" >"$_d/m.json"
exec 5<&0 </dev/null
_w="$_d/o"
${
    direct
      ? "[ -p /proc/$$/fd/1 ] && true 2>/dev/null >>/proc/$$/fd/1 && _w=/proc/$$/fd/1\n"
      : ""
  }${fifos}
_k="\${XDG_CACHE_HOME:-\${HOME:-/nonexistent}/.cache}/chopsticks/modules"
${shared ? sharedCaches : privateCaches}
${cd}${findDeno(o.deno)}
umask "$_u"
DENO_DIR="$_c" setsid "$_D" run -q --no-code-cache --no-prompt --no-config --no-lock --import-map="$_d/m.json" ${
    flags.join(" ")
  } ${
    shellQuote(o.bootstrap)
  } "$_d/i" "$_w" "$PWD" "$_k" "\${TMPDIR:-/tmp}" >&2 4<&- 5<&- 7<&- &
_p=$!
{
  _s=
  trap 'kill -KILL $_s 2>/dev/null; exit 0' TERM
  dd bs=128k of="$_d/i" conv=notrunc <&5 5<&- &
  _s=$!
  echo $_s >"$_d/r"
  exec 5<&-
  wait $_s
  _t
  _x
} >/dev/null 2>&1 4<&- 7<&- &
_r=$!
[ "$_w" != "$_d/o" ] || {
  {
    _s=
    trap 'kill -KILL $_s 2>/dev/null; exit 0' TERM
    cat <&7 7<&- &
    _s=$!
    exec 7<&-
    wait $_s || { _e=$?; _t >/dev/null 2>&1; echo "chopsticks: the agent's output relay (cat) ended with status $_e, so the agent was stopped" >&2; }
  } 4<&- 5<&- &
  _o=$!
  exec 7<&-
}
exec 5<&-
wait $_p 2>/dev/null
_rc=$?
kill -KILL -$_p 2>/dev/null
kill $_r 2>/dev/null
wait $_r 2>/dev/null
[ -p "$_d/i" ] && exec 3<>"$_d/i"
[ -n "$_o" ] && { exec 4<&-; wait $_o; }
exit $_rc
`;
}

/**
 * Checks the `env` option: an object of strings, whose names are shell
 * names that the agent script does not use itself. Its own variables are
 * named `_` followed by one or two letters (such as `_d` or `_Dx`), so that
 * no variable of `env` can change what it does; those names (and `IFS`)
 * are refused. Throws a TypeError naming the variable otherwise.
 */
export function checkEnv(env: unknown): void {
  if (env === undefined) return;
  if (typeof env !== "object" || env === null || Array.isArray(env)) {
    refuse("env", env, "an object of variable names to strings", false);
  }
  for (const [key, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
      throw new TypeError(
        `Cannot set environment variable "${key}": names are letters, digits and _`,
      );
    }
    if (/^_[A-Za-z]{1,2}$/.test(key) || key === "IFS") {
      throw new TypeError(
        `Cannot set environment variable "${key}": the agent script uses that name (its own are _ followed by one or two letters); choose another`,
      );
    }
    if (typeof value !== "string") {
      refuse(
        `env.${key}`,
        value,
        `a string, such as ${JSON.stringify(String(value))}`,
        false,
      );
    }
    if (/[\n\0]/.test(value)) {
      throw new TypeError(
        `Cannot set environment variable "${key}": the value holds a newline or NUL`,
      );
    }
  }
}

/**
 * The shell line that exports `env` for the agent script (checked as
 * {@linkcode checkEnv} says).
 */
export function envLine(env: Record<string, string> | undefined): string {
  checkEnv(env);
  const words: string[] = [];
  for (const [key, value] of Object.entries(env ?? {})) {
    words.push(`${key}='${value.replaceAll("'", `'\\''`)}'`);
  }
  return words.length ? `export ${words.join(" ")}` : ":";
}
