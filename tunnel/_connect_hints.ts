/**
 * Words for failures: a hint for each connect stage, why the agent script
 * or Deno ended before the agent was ready, and the module whose import
 * failed on an agent.
 *
 * @module
 */
import type { ConnectStage } from "../errors.ts";

/** What to do when connecting fails at each stage (the transport's own
 * hint covers the "transport" stage). */
export const STAGE_HINTS = {
  handshake:
    "the target printed something else than the agent's handshake; check the login scripts (.bashrc, .profile) for output or prompts",
  agent:
    'the agent started but failed; the lines above come from it (an old deno on the target? use deno: "upload" or a newer deno)',
  deno:
    'install deno on the target, give its path with the deno option, or use deno: "upload"',
  timeout: "raise connectTimeout if the target is slow to start",
  cwd:
    "the cwd option names a directory that does not exist there, or that the agent's user cannot enter",
  denoRefused:
    'deno refused to start the agent: check the permissions option (an old deno? use deno: "upload" or a newer deno)',
  relay:
    "something on the target killed the relay (out of memory?); connecting again starts a new agent",
} as const;

/** What the agent script says when the relay of the agent's output ended. */
const RELAY_ENDED = /^chopsticks: the agent's output relay \(cat\) ended/;

/**
 * The agent script's word that the relay of the agent's output ended under
 * a running agent (killed on the target), so that it stopped the agent;
 * undefined when it said nothing of the kind.
 */
export function relayEnded(tail: string[]): ExitCause | undefined {
  const said = meaningfulLines(tail).find((l) => RELAY_ENDED.test(l));
  if (said === undefined) return undefined;
  return {
    stage: "agent",
    who: "the agent script",
    said,
    hint: STAGE_HINTS.relay,
  };
}

/**
 * Why an agent that had started (it sent its handshake) ended before it was
 * ready: its output relay ended, it was killed by a signal (the agent
 * script exits with 128 + the signal's number, as does a killed
 * transport), or it failed by itself (the last line it wrote says why).
 */
export function agentEnded(tail: string[], code: number): ExitCause {
  const relay = relayEnded(tail);
  if (relay) return relay;
  const said = lastWords(tail, code);
  const signal = code > 128 && code < 128 + 65 ? code - 128 : 0;
  return {
    stage: "agent",
    who: "the agent",
    said,
    hint: signal
      ? `it was killed by signal ${signal}${
        signal === 9 ? " (SIGKILL)" : signal === 15 ? " (SIGTERM)" : ""
      }: something on the target stopped it (out of memory? a process limit? an administrator?)`
      : STAGE_HINTS.agent,
  };
}

/** What the agent script runs besides deno and its shell's built-ins. */
const TOOLS = "mktemp|mkfifo|mkdir|rm|setsid|dd|cat|sleep";

/** A shell's line for a command it did not find (dash, bash, busybox). */
const TOOL_MISSING = new RegExp(
  `(?:^|: )(${TOOLS}): (?:command )?not found$`,
);

/** Terminal colour codes, which Deno writes even to a pipe. */
const COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");

/**
 * The lines of a stderr tail worth quoting: without colour codes, blank
 * lines, and the `Stack backtrace:` block Deno prints after an error.
 */
export function meaningfulLines(tail: string[]): string[] {
  const lines: string[] = [];
  let backtrace = false;
  for (const raw of tail) {
    const line = raw.replace(COLOUR, "").trimEnd();
    if (line === "Stack backtrace:") {
      backtrace = true;
    } else if (!(backtrace && /^\s+(\d+:|at )/.test(line))) {
      backtrace = false;
      if (line.trim() !== "") lines.push(line);
    }
  }
  return lines;
}

/**
 * What an agent that ended with `code` said last, to quote: the error that
 * ended it when it died of one (Deno's `error: Uncaught ...`, which its
 * stack follows, and exit code 1), else its last line worth quoting (such a
 * line printed earlier is not why an agent killed later ended).
 */
export function lastWords(tail: string[], code: number): string {
  const lines = meaningfulLines(tail);
  const uncaught = code === 1
    ? lines.findLast((l) => l.startsWith("error: Uncaught"))
    : undefined;
  return uncaught ?? lines.at(-1) ?? "";
}

/**
 * Deno's own message when it refused to run (`error: ...`), with what its
 * `Caused by:` lines add to it; undefined when there is none.
 */
function denoMessage(lines: string[]): string | undefined {
  const at = lines.findLastIndex((l) => l.startsWith("error: "));
  if (at < 0) return undefined;
  const said = [lines[at].slice("error: ".length)];
  if (lines[at + 1] === "Caused by:") {
    for (const line of lines.slice(at + 2)) {
      const cause = line.match(/^\s+(?:\d+: )?(.+)$/)?.[1];
      if (cause === undefined) break;
      if (!said.some((s) => s.includes(cause))) said.push(cause);
    }
  }
  return said.join(": ");
}

/** Why the process ended before the agent's handshake, and what to do. */
export interface ExitCause {
  /** The stage that failed. */
  stage: ConnectStage;
  /** What exited: "the agent script", "deno", or the transport's command. */
  who: string;
  /** The line that says why (empty when there is none). */
  said: string;
  /** What to do (empty when there is nothing to add). */
  hint: string;
}

/**
 * Tells from the stderr tail why the process that should have become the
 * agent ended before the handshake: the agent script's own failures (no
 * deno, a `cwd` it cannot enter, a tool missing from PATH, its output relay
 * killed), Deno refusing to start (its message, without the backtrace), or
 * else the transport's (`command`, with the transport's `hint`).
 */
export function exitCause(
  tail: string[],
  code: number,
  command: string,
  hint: string,
): ExitCause {
  const relay = relayEnded(tail);
  if (relay) return relay;
  const lines = meaningfulLines(tail);
  const script = (said: string, stage: ConnectStage, hint: string) => ({
    stage,
    who: "the agent script",
    said: said.trim(),
    hint,
  });
  const noDeno = lines.find((l) => l.startsWith("chopsticks: deno not found"));
  if (code === 127 && noDeno) return script(noDeno, "deno", STAGE_HINTS.deno);
  const cwd = lines.find((l) => l.startsWith("chopsticks: cannot enter "));
  if (code === 125 && cwd) return script(cwd, "agent", STAGE_HINTS.cwd);
  // The first: the script's exit trap may not find its tools either. Only
  // with the codes the script then exits with (a login script's line
  // must not hide a failure of the transport).
  const tool = lines.find((l) => TOOL_MISSING.test(l));
  if ((code === 125 || code === 127) && tool) {
    const name = tool.match(TOOL_MISSING)![1];
    return script(
      tool,
      "agent",
      `${name}, a tool of the agent script, is not on PATH: install it on the target, or keep its directory in the PATH of the env option (env applies to the agent script too)`,
    );
  }
  const deno = denoMessage(lines);
  if (deno !== undefined) {
    return {
      stage: "agent",
      who: "deno",
      said: deno,
      hint: STAGE_HINTS.denoRefused,
    };
  }
  return { stage: "transport", who: command, said: lines.at(-1) ?? "", hint };
}

/**
 * For a module that could not be loaded on the agent, names the module
 * whose import failed (the first frame of the stack), which Deno's message
 * leaves out for dynamic imports.
 */
export function importer(e: Error): string {
  const resolution =
    /^(npm package|jsr package|Import |Module not found|Relative import|Unable to load|Cannot resolve|Could not find)/i;
  if (!resolution.test(e.message)) return "";
  const frame = String(e.stack).split("\n").find((l) => /^\s+at /.test(l));
  const where = frame?.match(/(file:\/\/\/[^\s)]+)/)?.[1];
  return where && !e.message.includes(where) ? ` (imported by ${where})` : "";
}
