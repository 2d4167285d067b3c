/**
 * Keeping watch on connections: the liveness settings, and SIGINT and
 * SIGTERM, which close every open connection before the program exits.
 *
 * @module
 */

import { agentContext } from "../modules/_agent_context.ts";

/** What SIGINT and SIGTERM close. */
export interface Closable {
  /**
   * Stops the agent at once, leaving what waits on it unsettled: the
   * program is about to exit, and a call rejected now would end it first,
   * as an uncaught error, before the agents are gone.
   */
  interrupt(): Promise<void>;
}

/**
 * Liveness checks: when nothing has come from the agent for `interval`
 * milliseconds, it is pinged; when nothing has come for `timeout`, the
 * connection is declared lost (pending calls reject) and the process is
 * killed. A function that blocks the agent's event loop for longer than
 * `timeout` (a long synchronous loop) looks dead too.
 */
export interface Liveness {
  /** Quiet time before a ping, in ms. Default: 15,000. */
  interval: number;
  /** Quiet time before giving up, in ms. Default: 60,000. */
  timeout: number;
}

/** Liveness checks used when none are given. */
export const DEFAULT_LIVENESS: Liveness = { interval: 15_000, timeout: 60_000 };

/** Open connections, closed together when the controller gets a signal. */
const live = new Set<Closable>();

/** The signals that close every open connection, and the exit code after. */
const SIGNALS = [["SIGINT", 130, "interrupted"], [
  "SIGTERM",
  143,
  "terminated",
]] as const;
const handlers = SIGNALS.map(([signal, code, what]) =>
  [
    signal,
    () => stopAll(code, what),
  ] as const
);
let stopping = false;

function stopAll(code: number, what: string): void {
  // A second signal while the agents stop: the program goes at once (the
  // agents see their input end, and stop by themselves).
  if (stopping) Deno.exit(code);
  stopping = true;
  const all = [...live];
  console.error(`chopsticks: ${what}; closing ${all.length} tunnel(s)`);
  void Promise.allSettled(all.map((c) => c.interrupt())).then(() =>
    Deno.exit(code)
  );
}

/**
 * Adds or removes an open connection. The signal listeners are there while
 * a connection is open, and stay once a signal came, until the program
 * exits. An agent has its own (it stops what it started, tunnels included,
 * as it ends), so none are added there.
 */
export function track(conn: Closable, on: boolean): void {
  const before = live.size;
  if (on) live.add(conn);
  else live.delete(conn);
  if (stopping || agentContext()) return;
  try {
    for (const [signal, handler] of handlers) {
      if (before === 0 && live.size === 1) {
        Deno.addSignalListener(signal, handler);
      } else if (before > 0 && live.size === 0) {
        Deno.removeSignalListener(signal, handler);
      }
    }
  } catch {
    // No signals here (e.g. not supported): nothing to clean on a signal.
  }
}
