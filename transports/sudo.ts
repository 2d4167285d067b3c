/**
 * The `Sudo` transport: the agent on this machine as another user, through
 * `sudo`: `sudo -n` (never prompts), or `sudo -S` with a password.
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
import { checkSudoUser, PasswordSource, SudoStep } from "./_sudo.ts";
import type { SudoPassword } from "./sudo_password.ts";

/**
 * Options of a `Sudo` tunnel, besides the common ones.
 *
 * @example With a password from the environment
 * ```ts ignore
 * import { Sudo, type SudoOptions } from "@chopsticks/chopsticks";
 * const options: SudoOptions = {
 *   password: () => Deno.env.get("SUDO_PASSWORD") ?? "",
 * };
 * await using tun = new Sudo("root", options);
 * ```
 */
export interface SudoOptions extends TunnelOptions {
  /**
   * The password sudo asks for, or a function that gives it (called only
   * when sudo asks, then kept for this tunnel until sudo refuses it; share
   * one between tunnels with `sudoPassword()`). It is written to sudo's
   * stdin (`sudo -S`), never put in an argument. Without it, sudo runs with
   * `-n` and must not ask (a NOPASSWD rule, or running as root).
   */
  password?: SudoPassword;
}

/**
 * A tunnel to an agent on this machine run as `user` through
 * `sudo -H -u user`: with `-n` (sudo must not ask for a password), or with
 * `-S` and the `password` option. The host name is `sudo:<user>`. A
 * failure of sudo itself (a refused password, no sudoers rule) is a
 * `ConnectError` of stage `"sudo"`.
 *
 * @example Run a function as root
 * ```ts ignore
 * import { Sudo } from "@chopsticks/chopsticks";
 * await using tun = new Sudo();
 * console.log(await tun.call(Deno.uid)); // 0
 * ```
 *
 * @example With a password
 * ```ts ignore
 * import { Sudo } from "@chopsticks/chopsticks";
 * await using tun = new Sudo("root", { password: () => prompt("sudo:") ?? "" });
 * console.log(await tun.call(Deno.uid)); // 0
 * ```
 */
export class Sudo extends BaseTunnel {
  #user: string;
  #source: PasswordSource | undefined;
  #step: SudoStep | undefined;

  /** Makes a tunnel that runs the agent as `user` (default `"root"`). */
  constructor(user: string = "root", options: SudoOptions = {}) {
    checkSudoUser(user);
    const source = options.password === undefined
      ? undefined
      : new PasswordSource(options.password);
    const { password: _, ...common } = options;
    super(`sudo:${user}`, common);
    this.#user = user;
    this.#source = source;
  }

  /** Runs the agent script with `sudo -n -H -u user -- sh -c script`. */
  protected spawnSpec(script: string): SpawnSpec {
    const step = new SudoStep(this.host, this.#source);
    this.#step = step;
    const [command, ...args] = step.command(this.#user, script);
    return { command, args, preamble: step.preamble() };
  }

  /** A hint shown when connecting fails. */
  protected override get connectHint(): string {
    return this.#source
      ? "check the password"
      : "check that sudo lets this user run commands as the target user without a password";
  }

  /** Names the likely cause: sudo's own failure, or its stderr lines. */
  protected override explainConnectError(error: ConnectError): ConnectError {
    const sudo = this.#step?.explain(error) ?? error;
    if (sudo !== error) return sudo;
    return explainWith(error, COMMON_RULES, this.connectHint);
  }
}
