/**
 * Facts about the machine an agent runs on. Each function works locally and
 * through `call`, and needs only the permission it names.
 *
 * ```ts
 * import { Local } from "@chopsticks/chopsticks";
 * import { hostname, osRelease } from "@chopsticks/chopsticks/facts";
 * await using tun = new Local();
 * console.log(await tun.call(hostname), await tun.call(osRelease));
 * ```
 *
 * @module
 */

/**
 * The Deno version of the running process.
 *
 * @example
 * ```ts
 * import { denoVersion } from "@chopsticks/chopsticks/facts";
 * console.log(denoVersion()); // e.g. "2.9.6"
 * ```
 */
export function denoVersion(): string {
  return Deno.version.deno;
}

/**
 * The host name (needs `sys: ["hostname"]`).
 *
 * @example
 * ```ts
 * import { hostname } from "@chopsticks/chopsticks/facts";
 * console.log(hostname());
 * ```
 */
export function hostname(): string {
  return Deno.hostname();
}

/**
 * The kernel release (needs `sys: ["osRelease"]`).
 *
 * @example
 * ```ts
 * import { osRelease } from "@chopsticks/chopsticks/facts";
 * console.log(osRelease()); // e.g. "6.1.0-18-amd64"
 * ```
 */
export function osRelease(): string {
  return Deno.osRelease();
}

/** The operating system and CPU architecture Deno was built for. */
export interface Platform {
  /** `Deno.build.os`, e.g. `"linux"`. */
  os: string;
  /** `Deno.build.arch`, e.g. `"x86_64"`. */
  arch: string;
}

/**
 * The operating system and architecture.
 *
 * @example
 * ```ts
 * import { platform } from "@chopsticks/chopsticks/facts";
 * console.log(platform()); // { os: "linux", arch: "x86_64" }
 * ```
 */
export function platform(): Platform {
  return { os: Deno.build.os, arch: Deno.build.arch };
}

/**
 * The non-loopback IPv4 and IPv6 addresses of the host (needs
 * `sys: ["networkInterfaces"]`), loopback ones last.
 *
 * @example
 * ```ts
 * import { ip } from "@chopsticks/chopsticks/facts";
 * console.log(ip()); // e.g. ["10.0.0.5", "fe80::1", "127.0.0.1", "::1"]
 * ```
 */
export function ip(): string[] {
  const all = Deno.networkInterfaces();
  const loopback = (a: string) => a === "::1" || a.startsWith("127.");
  const addresses = [...new Set(all.map((i) => i.address))];
  return [
    ...addresses.filter((a) => !loopback(a)),
    ...addresses.filter(loopback),
  ];
}

/**
 * The process's user and group ids, or null where Deno cannot tell.
 *
 * @example
 * ```ts
 * import { user } from "@chopsticks/chopsticks/facts";
 * console.log(user()); // e.g. { uid: 1000, gid: 1000 }
 * ```
 */
export function user(): { uid: number | null; gid: number | null } {
  return { uid: Deno.uid(), gid: Deno.gid() };
}

/**
 * Load average over 1, 5 and 15 minutes (needs `sys: ["loadavg"]`).
 *
 * @example
 * ```ts
 * import { loadAverage } from "@chopsticks/chopsticks/facts";
 * console.log(loadAverage());
 * ```
 */
export function loadAverage(): number[] {
  return Deno.loadavg();
}

/**
 * Memory in bytes (needs `sys: ["systemMemoryInfo"]`).
 *
 * @example
 * ```ts
 * import { memory } from "@chopsticks/chopsticks/facts";
 * console.log(memory().total);
 * ```
 */
export function memory(): Deno.SystemMemoryInfo {
  return Deno.systemMemoryInfo();
}
