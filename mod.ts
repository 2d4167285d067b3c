/**
 * chopsticks: run your own functions on other machines. A tunnel starts
 * `deno run` on the target (a local subprocess, over SSH, in a container,
 * as another user); the agent loads your modules from this program through
 * the tunnel, runs the function you name, and sends the result back.
 *
 * ```ts
 * import { Local } from "@chopsticks/chopsticks";
 * await using tun = new Local();
 * console.log("Time on %s:", tun.host, await tun.call(Date.now));
 * ```
 *
 * @module
 */
export * from "./tunnel/mod.ts";
export * as facts from "./facts.ts";
export * from "./group/mod.ts";
