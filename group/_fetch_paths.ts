/**
 * The local paths of a group fetch: `{host}` in the template becomes each
 * host's name, and two hosts may never map to one file.
 *
 * @module
 */
import { resolve } from "node:path";

/**
 * Maps each host to its local path from `template`. Throws a TypeError,
 * before anything is transferred, when two hosts would write one file, or
 * when a host's name cannot be one name in a path (`../x`, `a/b`).
 */
export function fetchPaths(
  template: string,
  hosts: string[],
  remotePath: string,
): Map<string, string> {
  if (typeof template !== "string" || template === "") {
    throw new TypeError(
      `Cannot fetch "${remotePath}": the local path template is empty`,
    );
  }
  const paths = new Map<string, string>();
  const owners = new Map<string, string>();
  for (const host of hosts) {
    // A name from an inventory could climb out of the directory meant
    // ("../x") or name another's ("a/."): it is used in a path as one name.
    if (
      template.includes("{host}") &&
      (host.includes("/") || host === "." || host === ".." || host === "")
    ) {
      throw new TypeError(
        `Cannot fetch "${remotePath}" to "${template}": the host name ${
          JSON.stringify(host)
        } cannot be put in a local path (it holds a "/" or is "." or "..")`,
      );
    }
    const path = template.replaceAll("{host}", host);
    const key = resolve(path);
    const other = owners.get(key);
    if (other !== undefined) {
      throw new TypeError(
        `Cannot fetch "${remotePath}" to "${template}": hosts "${other}" and "${host}" would both write "${path}"; put {host} in the local path`,
      );
    }
    owners.set(key, host);
    paths.set(host, path);
  }
  return paths;
}
