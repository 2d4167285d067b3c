/**
 * The engine of a group operation: every host in parallel, at most N at
 * once, with progress events, collected in the group's order.
 *
 * @module
 */
import type { BaseTunnel } from "../tunnel/base_tunnel.ts";
import { ErrorResult } from "./error_result.ts";
import { GroupResult } from "./group_result.ts";
import { limiter } from "./_limiter.ts";
import { attempt } from "./_attempt.ts";
import type { HostEvent } from "./run_options.ts";
import { ConnectError } from "../errors.ts";

/** How to run: the limit, progress, an abort signal, and the group's close. */
export interface HostsRun {
  concurrency: number;
  onHost: (event: HostEvent) => void;
  signal: AbortSignal | undefined;
  /** Aborts when the group is closed: hosts not started yet never start. */
  closed?: AbortSignal;
}

/**
 * Runs `op` on every tunnel; failures become `ErrorResult` values. An
 * error `onHost` throws changes nothing for the hosts: every one runs to
 * its end, then the run rejects with it (an AggregateError when it threw
 * more than once), as a queue's `run()` does for its callbacks.
 */
export async function runOnHosts<T>(
  tunnels: BaseTunnel[],
  op: (tunnel: BaseTunnel) => Promise<T>,
  { concurrency, onHost, signal, closed }: HostsRun,
): Promise<GroupResult<T>> {
  const limit = limiter(concurrency);
  const thrown: unknown[] = [];
  const tell = (event: HostEvent) => {
    try {
      onHost(event);
    } catch (e) {
      thrown.push(e);
    }
  };
  const one = async (tunnel: BaseTunnel): Promise<T | ErrorResult> => {
    const host = tunnel.host;
    const value = await attempt(tunnel, () => op(tunnel), () => {
      // Started now, it would open a fresh agent that outlives the close.
      if (closed?.aborted) throw closedBeforeStart(host);
      signal?.throwIfAborted();
      tell({ host, state: "running" });
    });
    tell(
      value instanceof ErrorResult
        ? { host, state: "failed", error: value }
        : { host, state: "ok", value },
    );
    return value;
  };
  const values = await Promise.all(
    tunnels.map((tunnel) => limit(() => one(tunnel))),
  );
  if (thrown.length === 1) throw thrown[0];
  if (thrown.length > 1) {
    throw new AggregateError(thrown, "The onHost callback threw");
  }
  return new GroupResult(tunnels.map((t, i) => [t.host, values[i]]));
}

function closedBeforeStart(host: string): ConnectError {
  return new ConnectError(
    host,
    "closed",
    `Cannot run on "${host}": the group was closed before this host started`,
  );
}
