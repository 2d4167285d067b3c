/**
 * Words for failures: a hint for each connect stage, and the module whose
 * import failed on an agent.
 *
 * @module
 */

/** What to do when connecting fails at each stage (the transport's own
 * hint covers the "transport" stage). */
export const STAGE_HINTS = {
  handshake:
    "the target printed something else than the agent's handshake; check the login scripts (.bashrc, .profile) for output or prompts",
  agent:
    'the agent started but failed; the lines above come from it (an old deno on the target? use deno: "upload" or a newer deno)',
  deno:
    'install deno on the target, give its path with the deno option, or use deno: "upload"',
} as const;

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
