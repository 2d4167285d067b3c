/**
 * sudo passwords: the type the `sudo` options take, and
 * {@linkcode sudoPassword}, which asks once for many tunnels.
 *
 * ```ts ignore
 * import { Group, sudoPassword, Tunnel } from "@chopsticks/chopsticks";
 * const password = sudoPassword(() => Deno.env.get("SUDO_PASSWORD") ?? "");
 * await using group = new Group(["web1", "web2"], {
 *   tunnel: (host) => new Tunnel(host, { sudo: { password } }),
 * });
 * ```
 *
 * @module
 */

/**
 * A sudo password: the text itself, or a function that gives it (called
 * only when sudo asks). It never contains a newline.
 *
 * @example
 * ```ts
 * import type { SudoPassword } from "@chopsticks/chopsticks";
 * const fromEnv: SudoPassword = () => Deno.env.get("SUDO_PASSWORD") ?? "";
 * ```
 */
export type SudoPassword = string | (() => string | Promise<string>);

/**
 * A password function that asks once and shares the answer, from
 * {@linkcode sudoPassword}. `forget()` drops the answer, so the next call
 * asks again; a tunnel calls it when sudo refuses the password.
 *
 * @example
 * ```ts
 * import { sudoPassword } from "@chopsticks/chopsticks";
 * const password = sudoPassword(() => "s3cret");
 * await password(); // asks
 * await password(); // the same answer, not asked again
 * password.forget(); // the next call asks again
 * ```
 */
export interface SharedPassword {
  /** The password: asks the first time, then gives the same answer. */
  (): Promise<string>;
  /** Drops the answer (or a question still pending): the next call asks again. */
  forget(): void;
}

/**
 * Wraps `ask` so that it is called once, however many tunnels need the
 * password: give the result as the `password` of every tunnel of a group,
 * and the user is asked once, when the first sudo asks (hosts where sudo
 * does not ask never call it). When `ask` fails, or sudo refuses the
 * answer, the next connection asks again.
 *
 * @param ask Gives the password, for example by prompting the user.
 * @returns A password function to share between tunnels.
 *
 * @example One prompt for a whole group
 * ```ts ignore
 * import { Group, sudoPassword, Tunnel } from "@chopsticks/chopsticks";
 * const password = sudoPassword(() => prompt("sudo password:") ?? "");
 * await using group = new Group(["web1", "web2", "web3"], {
 *   tunnel: (host) => new Tunnel(host, { sudo: { password } }),
 * });
 * console.log(await group.call(Deno.uid)); // asked once, on the first host
 * ```
 */
export function sudoPassword(
  ask: () => string | Promise<string>,
): SharedPassword {
  if (typeof ask !== "function") {
    throw new TypeError(
      "Cannot share a sudo password: expected a function that gives it",
    );
  }
  let answer: Promise<string> | undefined;
  const shared = (): Promise<string> => {
    if (answer) return answer;
    const asking = Promise.resolve().then(ask);
    answer = asking;
    asking.catch(() => {
      if (answer === asking) answer = undefined;
    });
    return asking;
  };
  shared.forget = () => {
    answer = undefined;
  };
  return shared;
}
