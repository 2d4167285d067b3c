/**
 * The inventory file format: the hosts the CLI runs on, in JSON.
 *
 * @module
 */
import { UsageError } from "./usage_error.ts";

/**
 * An inventory: either a JSON list of host names, or an object with
 * `hosts` (a list) and/or `groups` (group name to a list of hosts).
 *
 * ```json
 * { "hosts": ["bastion"], "groups": { "web": ["web1", "web2"], "db": ["db1"] } }
 * ```
 */
export type Inventory = string[] | {
  /** Hosts in no group. */
  hosts?: string[];
  /** Named groups of hosts. */
  groups?: Record<string, string[]>;
};

/**
 * Reads an inventory's text and picks its hosts: those of `group` when
 * given, else every host (`hosts` then each group's, each host once).
 *
 * @param text The file's JSON text.
 * @param group A group name, or undefined for all hosts.
 * @param source The file name, for messages.
 * @returns The host names, in file order.
 * @throws {UsageError} When the JSON or its shape is wrong, or the group
 * does not exist.
 *
 * @example Picking a group
 * ```ts
 * import { parseInventory } from "@chopsticks/chopsticks/cli";
 * const text = '{ "groups": { "web": ["web1", "web2"], "db": ["db1"] } }';
 * console.log(parseInventory(text, "web")); // ["web1", "web2"]
 * console.log(parseInventory(text)); // ["web1", "web2", "db1"]
 * ```
 */
export function parseInventory(
  text: string,
  group?: string,
  source = "inventory",
): string[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(
      `Cannot read ${source}: not valid JSON: ${(e as Error).message}`,
    );
  }
  const bad = (what: string) =>
    new UsageError(
      `Cannot read ${source}: ${what}; expected a list of hosts or { "hosts": [...], "groups": { "name": [...] } }`,
    );
  const hostList = (value: unknown, where: string): string[] => {
    if (
      !Array.isArray(value) ||
      !value.every((h) => typeof h === "string" && h !== "")
    ) {
      throw bad(`${where} is not a list of host names`);
    }
    return value;
  };
  if (Array.isArray(data)) {
    if (group !== undefined) {
      throw new UsageError(
        `Cannot use group "${group}": ${source} is a plain list with no groups`,
      );
    }
    return hostList(data, "the list");
  }
  if (data === null || typeof data !== "object") throw bad("not an object");
  const { hosts, groups, ...other } = data as Record<string, unknown>;
  const extra = Object.keys(other);
  if (extra.length) throw bad(`unknown key "${extra[0]}"`);
  if (groups !== undefined && (groups === null || typeof groups !== "object")) {
    throw bad(`"groups" is not an object`);
  }
  const named = Object.entries((groups ?? {}) as Record<string, unknown>).map((
    [name, list],
  ) => [name, hostList(list, `group "${name}"`)] as const);
  const loose = hosts === undefined ? [] : hostList(hosts, `"hosts"`);
  if (group !== undefined) {
    const found = named.find(([name]) => name === group);
    if (!found) {
      const names = named.map(([name]) => `"${name}"`).join(", ") || "none";
      throw new UsageError(
        `Cannot use group "${group}": ${source} has no such group (groups: ${names})`,
      );
    }
    return [...found[1]];
  }
  return [...new Set([...loose, ...named.flatMap(([, list]) => list)])];
}
