/**
 * Deno permission flags for an agent.
 *
 * @module
 */

/** One permission: all (`true`), none (`false`), or a list of scopes. */
export type PermissionValue = boolean | string[];

/**
 * The Deno permissions an agent runs with. Each is `true` (all), `false`
 * (none) or a list (such as `read: ["/etc", "/var/log"]`). A missing key
 * means `false` once any key is given; with no `permissions` at all the
 * agent gets every permission, as a remote shell would.
 */
export interface Permissions {
  /** `--allow-read` */
  read?: PermissionValue;
  /** `--allow-write` */
  write?: PermissionValue;
  /** `--allow-net` */
  net?: PermissionValue;
  /** `--allow-env` */
  env?: PermissionValue;
  /** `--allow-run` */
  run?: PermissionValue;
  /** `--allow-sys` */
  sys?: PermissionValue;
  /** `--allow-ffi` */
  ffi?: PermissionValue;
  /** `--allow-import` */
  import?: PermissionValue;
}

/** Every permission Deno has, granted: the default. */
export const ALL_PERMISSIONS: Readonly<Required<Permissions>> = {
  read: true,
  write: true,
  net: true,
  env: true,
  run: true,
  sys: true,
  ffi: true,
  import: true,
};

const NAMES = Object.keys(ALL_PERMISSIONS) as (keyof Permissions)[];

/** True when `permissions` (undefined: the default) grant everything. */
export function grantsEverything(
  permissions: Permissions | undefined,
): boolean {
  return permissions === undefined ||
    NAMES.every((name) => permissions[name] === true);
}

/** Quotes `s` as one word for a POSIX shell. */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * Builds the `--allow-*` flags as POSIX shell words. `own` holds what the
 * agent itself needs, as shell words (they may use `$d`), and is added to
 * every list without widening a `true` or turning `false` into `true`
 * beyond those entries.
 */
export function permissionFlags(
  permissions: Permissions | undefined,
  own: Partial<Record<keyof Permissions, string[]>>,
): string[] {
  const given = permissions ?? ALL_PERMISSIONS;
  for (const key of Object.keys(given)) {
    if (!NAMES.includes(key as keyof Permissions)) {
      throw new TypeError(
        `Cannot use permission "${key}": known permissions are ${
          NAMES.join(", ")
        }`,
      );
    }
  }
  const flags: string[] = [];
  for (const name of NAMES) {
    const value = given[name] ?? false;
    const extra = own[name] ?? [];
    if (value === true) {
      flags.push(`--allow-${name}`);
      continue;
    }
    if (value !== false && !Array.isArray(value)) {
      throw new TypeError(
        `Cannot use permission "${name}": expected true, false or a list of strings, got ${typeof value}`,
      );
    }
    const items = (value || []).map((item) => {
      if (typeof item !== "string" || item === "" || item.includes(",")) {
        throw new RangeError(
          `Cannot use permission "${name}" entry ${
            JSON.stringify(item)
          }: entries must be non-empty strings without commas`,
        );
      }
      return shellQuote(item);
    });
    const all = [...items, ...extra];
    if (all.length > 0) flags.push(`--allow-${name}=${all.join(",")}`);
  }
  return flags;
}
