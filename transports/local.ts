/**
 * The `Local` transport: the agent as a subprocess on this machine.
 *
 * @module
 */
import { BaseTunnel, type TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";

/**
 * A tunnel to an agent on this machine, run as a plain subprocess. Handy
 * for tests, and for running code with narrower permissions.
 *
 * @example
 * ```ts
 * import { Local } from "@chopsticks/chopsticks";
 * await using tun = new Local();
 * console.log(await tun.call(Deno.hostname));
 * ```
 */
export class Local extends BaseTunnel {
  /** Makes a local tunnel named `name` (default `"localhost"`). */
  constructor(name: string = "localhost", options: TunnelOptions = {}) {
    super(name, options);
  }

  /** Runs the agent script with the local `sh`. */
  protected spawnSpec(script: string): SpawnSpec {
    return { command: "sh", args: ["-c", script] };
  }
}
