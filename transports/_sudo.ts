/**
 * The `sudo` words that run a command as another user without ever
 * prompting: `sudo -n -H [-u user] --`.
 *
 * @module
 */

/**
 * The words before the command. `user` true means sudo's default target
 * (root); a string names the user.
 */
export function sudoWords(user: true | string): string[] {
  if (user !== true && (typeof user !== "string" || !/^[\w.-]+$/.test(user))) {
    throw new TypeError(
      `Cannot use sudo user ${JSON.stringify(user)}: expected a user name`,
    );
  }
  return ["sudo", "-n", "-H", ...(user === true ? [] : ["-u", user]), "--"];
}
