/**
 * The error for a command line that cannot be run as given.
 *
 * @module
 */

/**
 * The command line is wrong: an unknown option, a missing argument, a bad
 * value. The CLI prints its message and exits with status 2.
 *
 * @example Telling usage errors apart
 * ```ts
 * import { parseCommand, UsageError } from "@chopsticks/chopsticks/cli";
 * try {
 *   parseCommand(["call", "--hosts", "web1"]);
 * } catch (e) {
 *   if (e instanceof UsageError) console.error(e.message, e.command);
 * }
 * ```
 */
export class UsageError extends Error {
  /** Always `"UsageError"`. */
  override name = "UsageError";
  /** The command the error is about, for pointing at its help. */
  readonly command: string | undefined;

  /**
   * Builds the error.
   *
   * @param message What is wrong and what to do.
   * @param command The command it is about, if known.
   */
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}
