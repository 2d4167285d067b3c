/**
 * The SSH host-key policy, mapped onto OpenSSH's own options, and the
 * hints for host keys it refuses.
 *
 * @module
 */
import { type HintRule, lineMatches } from "./_hints.ts";

/**
 * How ssh treats the host's key: `"strict"` refuses a host whose key is not
 * in known_hosts, `"accept-new"` records the key of a host seen for the
 * first time, `"off"` checks nothing (and says so). A key that changed is
 * refused by both `"strict"` and `"accept-new"`.
 *
 * @example
 * ```ts
 * import type { HostKeyPolicy } from "@chopsticks/chopsticks";
 * const policy: HostKeyPolicy = Deno.env.get("CI") ? "accept-new" : "strict";
 * ```
 */
export type HostKeyPolicy = "strict" | "accept-new" | "off";

const POLICIES: readonly HostKeyPolicy[] = ["strict", "accept-new", "off"];

/** The ssh `-o` arguments of `policy`; a TypeError for anything else. */
export function hostKeyArgs(host: string, policy: unknown): string[] {
  if (!POLICIES.includes(policy as HostKeyPolicy)) {
    throw new TypeError(
      `Cannot use hostKeys ${
        JSON.stringify(policy)
      } for "${host}": expected "strict", "accept-new" or "off"`,
    );
  }
  if (policy === "strict") return ["-o", "StrictHostKeyChecking=yes"];
  if (policy === "accept-new") {
    return ["-o", "StrictHostKeyChecking=accept-new"];
  }
  return [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "GlobalKnownHostsFile=/dev/null",
  ];
}

/** The line printed once per tunnel whose host keys are not checked. */
export function hostKeysOffWarning(host: string): string {
  return `chopsticks: warning: host-key checking is off for "${host}" (hostKeys: "off"): its identity is not verified and anyone on the path can pose as it`;
}

/** ssh's lines when a host's key changed. */
const CHANGED =
  /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed|POSSIBLE DNS SPOOFING/;

/** ssh's lines when a key is unknown or refused. */
const REFUSED =
  /Host key verification failed|No \S+ host key is known for|host key is known|Host key .* differs/;

/**
 * The rules for host keys: a changed key (checked first, over the whole
 * tail, since ssh's last line is the same for both), or an unknown one.
 */
export function hostKeyRules(
  tail: string[],
  host: string,
  port: number | undefined,
): HintRule[] {
  const scan = `ssh-keyscan${port === undefined ? "" : ` -p ${port}`} ${host}`;
  // known_hosts records a host on another port than 22 as [host]:port.
  const recorded = port === undefined || port === 22
    ? host
    : `'[${host}]:${port}'`;
  if (tail.some((l) => lineMatches(CHANGED, l))) {
    return [{
      pattern: new RegExp(`${CHANGED.source}|${REFUSED.source}`),
      hint:
        `the host key of "${host}" has CHANGED since it was recorded in known_hosts, so ssh refuses it (hostKeys "accept-new" too): this may be an attack; if the host was reinstalled, check its new key, remove the old one (ssh-keygen -R ${recorded}) and add the new one`,
      permanent: true,
    }];
  }
  return [{
    pattern: REFUSED,
    hint:
      `the host key of "${host}" is not known (host keys are checked strictly): check it and add it to known_hosts (for example ${scan} >> ~/.ssh/known_hosts), or pass hostKeys: "accept-new" to record it on first use`,
    permanent: true,
  }];
}
