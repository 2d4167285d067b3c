/**
 * Hints for failed connections: each transport lists the stderr lines it
 * recognises (an ssh authentication failure, a missing image) and what to
 * do about each; the error is rewritten to quote the line and say it.
 *
 * @module
 */
import { ConnectError } from "../errors.ts";

/** A stderr line a transport recognises, and the hint it gives. */
export interface HintRule {
  /** Matches the line. */
  pattern: RegExp;
  /** What the line means and what to do. */
  hint: string;
  /**
   * True when trying again cannot help (a refused login, a host key):
   * such a failure is never retried.
   */
  permanent?: boolean;
}

/**
 * How much of a stderr line the rules see. The lines come from the target
 * (up to 64 KiB each), and a pattern such as /Host key .* differs/
 * backtracks over the rest of the line from each place it could start:
 * 20 such lines held the controller for 17 s. The messages the rules look
 * for are short and near the start of their line.
 */
const SPAN = 1024;

/** Whether `pattern` matches `line`, looking at its first 1 KiB only. */
export function lineMatches(pattern: RegExp, line: string): boolean {
  return pattern.test(line.length > SPAN ? line.slice(0, SPAN) : line);
}

/** Rules every transport shares: sudo refusing. */
export const COMMON_RULES: HintRule[] = [
  {
    pattern: /sudo: (a password is required|a terminal is required)/,
    hint:
      "sudo asks for a password: give the user a NOPASSWD sudoers rule (sudo -n never prompts)",
    permanent: true,
  },
  {
    pattern: /is not in the sudoers file|is not allowed to (run|execute)/,
    hint: "sudo refuses this user: check the sudoers rules",
    permanent: true,
  },
  {
    pattern: /sudo: unknown user/,
    hint: "the sudo target user does not exist there",
    permanent: true,
  },
  {
    pattern: /sudo: (command )?not found/,
    hint: "sudo is not installed on the target",
    permanent: true,
  },
];

/**
 * Rewrites `error` when its message ends with the transport's generic
 * `oldHint` and a line of its stderr tail matches a rule: the message then
 * quotes that line (not a later, less useful one) and ends with the rule's
 * hint instead. Unchanged otherwise.
 */
export function explainWith(
  error: ConnectError,
  rules: HintRule[],
  oldHint: string,
): ConnectError {
  const lines = error.stderrTail.filter((l) => l.trim() !== "");
  for (let i = lines.length - 1; i >= 0; i--) {
    const rule = rules.find((r) => lineMatches(r.pattern, lines[i]));
    if (!rule) continue;
    // Only the transport's generic hint is replaced; a hint the core chose
    // for another stage (deno missing, a bad handshake) already fits.
    if (!error.message.endsWith(`; ${oldHint}`)) return error;
    let message = error.message.slice(0, -oldHint.length - 2);
    const last = error.stderrTail.at(-1);
    if (last !== undefined && message.endsWith(`: ${last}`)) {
      message = message.slice(0, -last.length - 2);
    }
    const line = lines[i].trim().replace(/\.$/, "");
    if (!message.endsWith(line)) message += `: ${line}`;
    return new ConnectError(
      error.host,
      error.stage,
      `${message}; ${rule.hint}`,
      {
        exitCode: error.exitCode,
        stderrTail: error.stderrTail,
        cause: error.cause,
      },
    );
  }
  return error;
}

/**
 * True when, for a line of `error`'s stderr tail, the first rule that
 * matches it is marked `permanent`: trying again cannot help.
 */
export function isPermanent(error: ConnectError, rules: HintRule[]): boolean {
  return error.stderrTail.some((line) =>
    rules.find((r) => lineMatches(r.pattern, line))?.permanent === true
  );
}
