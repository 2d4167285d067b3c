/**
 * The quick start: call functions through a `Local` tunnel.
 *
 *     deno run -A examples/hello.ts
 *
 * @module
 */
import { Local } from "@chopsticks/chopsticks";
import { denoVersion, hostname } from "@chopsticks/chopsticks/facts";

/** Runs on the agent: builds a greeting there. */
export function greet(name: string): string {
  return `Hello ${name}, from pid ${Deno.pid} on ${Deno.hostname()}`;
}

if (import.meta.main) {
  await using tun = new Local();
  console.log("Time on %s:", tun.host, await tun.call(Date.now));
  console.log(await tun.call(greet, "world"));
  console.log(
    "deno %s on %s",
    await tun.call(denoVersion),
    await tun.call(hostname),
  );
}
