/**
 * The agent's own code, read once: its bootstrap and its bundle.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ModuleAnswer } from "../modules/_module_server.ts";

/** The agent's own code: its bootstrap (a data URL) and its bundle. */
export interface AgentCode {
  /** The bootstrap, as a data URL. */
  bootstrap: string;
  /** The bundle, as a module server answer. */
  bundle: ModuleAnswer;
  /** Hex sha256 of the bundle: agents keep it in their cache by this name. */
  bundleHash: string;
}

let agentCode: Promise<AgentCode> | undefined;

/**
 * Reads the agent's code once, relative to this module, so it works from
 * local files and from a registry alike.
 */
export function loadAgentCode(): Promise<AgentCode> {
  return agentCode ??= (async () => {
    const read = async (name: string) => {
      const response = await fetch(
        new URL(`../agent/${name}`, import.meta.url),
      );
      if (!response.ok) {
        throw new Error(`Cannot read the agent's ${name}: ${response.status}`);
      }
      return new Uint8Array(await response.arrayBuffer());
    };
    const [bootstrap, bundle] = await Promise.all([
      read("_bootstrap.bundle.js"),
      read("_agent.bundle.js"),
    ]);
    let binary = "";
    for (const b of bootstrap) binary += String.fromCharCode(b);
    return {
      bootstrap: "data:application/javascript;base64," + btoa(binary),
      bundle: { status: 200, type: 2, body: bundle },
      bundleHash: createHash("sha256").update(bundle).digest("hex"),
    };
  })();
}
