/**
 * The `Sudo` transport: the agent on this machine as another user, through
 * `sudo -n` (which never prompts).
 *
 * ```ts ignore
 * import { Sudo } from "@chopsticks/chopsticks";
 * await using tun = new Sudo("www-data");
 * console.log(await tun.call(Deno.uid));
 * ```
 *
 * @module
 */
import type { ConnectError } from "../errors.ts";
import { BaseTunnel, type TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";
import { COMMON_RULES, explainWith } from "./_hints.ts";
import { sudoWords } from "./_sudo.ts";

/**
 * A tunnel to an agent on this machine run as `user` through
 * `sudo -n -H -u user`. sudo must let this user do that without a
 * password (a NOPASSWD rule, or running as root). The host name is
 * `sudo:<user>`.
 *
 * @example Run a function as root
 * ```ts ignore
 * import { Sudo } from "@chopsticks/chopsticks";
 * await using tun = new Sudo();
 * console.log(await tun.call(Deno.uid)); // 0
 * ```
 */
export class Sudo extends BaseTunnel {
  #words: string[];

  /** Makes a tunnel that runs the agent as `user` (default `"root"`). */
  constructor(user: string = "root", options: TunnelOptions = {}) {
    const words = sudoWords(user);
    super(`sudo:${user}`, options);
    this.#words = words;
  }

  /** Runs the agent script with `sudo -n -H -u user -- sh -c script`. */
  protected spawnSpec(script: string): SpawnSpec {
    const [command, ...args] = this.#words;
    return { command, args: [...args, "sh", "-c", script] };
  }

  /** A hint shown when connecting fails. */
  protected override get connectHint(): string {
    return "check that sudo lets this user run commands as the target user without a password, and that deno is on the secure_path";
  }

  /** Names the likely cause from sudo's own stderr lines. */
  protected override explainConnectError(error: ConnectError): ConnectError {
    return explainWith(error, COMMON_RULES, this.connectHint);
  }
}
