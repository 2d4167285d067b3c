/**
 * What a transport gives the connection: how to start the agent script,
 * and an optional step of its own before the boot lines.
 *
 * @module
 */

/** How a transport starts the agent script. */
export interface SpawnSpec {
  /** The program to run, such as `sh` or `ssh`. */
  command: string;
  /** Its arguments. */
  args: string[];
  /** A step of the transport's own before the boot lines (sudo's prompt). */
  preamble?: Preamble;
}

/**
 * A transport's own step between starting the process and writing the boot
 * lines, such as answering sudo's password prompt: it sees each stderr line
 * first, and the boot lines wait until `ready` resolves.
 *
 * @example A step that waits for a line the command prints first
 * ```ts
 * import { BaseTunnel, type SpawnSpec } from "@chopsticks/chopsticks";
 * class Gated extends BaseTunnel {
 *   protected spawnSpec(script: string): SpawnSpec {
 *     let go = () => {};
 *     const gate = new Promise<void>((resolve) => go = resolve);
 *     return {
 *       command: "sh",
 *       args: ["-c", `echo GATE >&2; exec sh -c "$0"`, script],
 *       preamble: {
 *         filter: (line) => line === "GATE" ? (go(), undefined) : line,
 *         ready: () => gate,
 *       },
 *     };
 *   }
 * }
 * await using tun = new Gated("gated");
 * console.log(await tun.call(Date.now));
 * ```
 */
export interface Preamble {
  /**
   * Sees each stderr line before the output and the stderr tail do;
   * returns what to keep (the line, or a part of it), or undefined to hide
   * it (a marker).
   */
  filter(line: string): string | undefined;
  /**
   * Resolves when the boot lines may be written; may first write to the
   * process's stdin through `write` (a password). A rejection (a
   * ConnectError) fails the connection. Without `ready`, the boot lines are
   * written at once.
   */
  ready?(write: (bytes: Uint8Array) => void): Promise<void>;
}
