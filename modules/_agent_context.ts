/**
 * What a program running on an agent knows about where it runs: the
 * agent's module server, how deep it is, the chain of hosts that led to it,
 * and the controller's project. The agent sets it; the library reads it to
 * open nested tunnels (whose module requests are relayed up the chain).
 *
 * @module
 */

/** The controller project an agent's code came from. */
export interface ProjectImports {
  /** Directory of the project's `deno.json`. */
  configDir: string;
  /** Its "imports", as the controller resolved them (see `Project`). */
  imports: Record<string, string>;
  /** Its "scopes", and one for each package it links, so resolved. */
  scopes: Record<string, Record<string, string>>;
}

/** The agent's context. */
export interface AgentContext {
  /** URL prefix of this agent's module server, with its secret. */
  base: string;
  /** 1 on an agent of the controller, 2 on an agent of that agent, ... */
  depth: number;
  /** Host names from the controller down to this agent. */
  path: string[];
  /** The controller's project. */
  project: ProjectImports;
}

const KEY = Symbol.for("chopsticks.agent");

/** This process's agent context, or undefined on a controller. */
export function agentContext(): AgentContext | undefined {
  return (globalThis as Record<symbol, AgentContext | undefined>)[KEY];
}

/** Records the agent context (done once, by the agent). */
export function setAgentContext(context: AgentContext): void {
  Object.defineProperty(globalThis, KEY, { value: Object.freeze(context) });
}
