/**
 * What the controller does to the text of an error an agent sent: cuts it
 * to a bounded size and maps the agent's file paths, in time linear in its
 * length (a backtracking regex over agent text lets a hostile agent freeze
 * the controller).
 *
 * @module
 */

/** What the controller keeps of a remote error's message, and of its stack. */
export const MAX_REMOTE_TEXT = 64 * 1024;

/**
 * `text` cut to `max` characters (not inside a surrogate pair), with a note
 * of how many were cut; unchanged when it is no longer.
 */
export function cutText(text: string, max = MAX_REMOTE_TEXT): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}… [${text.length - end} more characters cut]`;
}

const PREFIX = "file://";
const SUFFIX = "/agent-";
const HEX_DIGITS = 64;
/** `/agent-`, 64 hex digits, `.js`. */
const SUFFIX_LENGTH = SUFFIX.length + HEX_DIGITS + 3;

/** True when `/agent-<64 hex digits>.js` starts at `at` in `text`. */
function agentFileAt(text: string, at: number): boolean {
  if (!text.startsWith(SUFFIX, at)) return false;
  let i = at + SUFFIX.length;
  for (const end = i + HEX_DIGITS; i < end; i++) {
    const c = text.charCodeAt(i);
    // 0-9, a-f
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return text.startsWith(".js", i);
}

/**
 * Replaces what `/file:\/\/[^\s)]*\/agent-[0-9a-f]{64}\.js/g` matches in
 * `text` (a `file://` URL of a cached copy of the agent's code) with
 * `replacement`, in linear time: within each run of characters that are
 * neither white space nor `)`, the regex matches from the first `file://`
 * to the end of the last `/agent-<hex>.js` that starts after it.
 */
export function replaceAgentFiles(text: string, replacement: string): string {
  if (!text.includes(SUFFIX)) return text;
  // Each run is matched once, with nothing after it to backtrack for.
  return text.replace(/[^\s)]+/g, (run) => {
    const start = run.indexOf(PREFIX);
    if (start < 0) return run;
    // The last suffix in the run; each lastIndexOf scans on from the last.
    for (
      let at = run.lastIndexOf(SUFFIX);
      at >= start + PREFIX.length;
      at = at === 0 ? -1 : run.lastIndexOf(SUFFIX, at - 1)
    ) {
      if (agentFileAt(run, at)) {
        return run.slice(0, start) + replacement +
          run.slice(at + SUFFIX_LENGTH);
      }
    }
    return run;
  });
}
