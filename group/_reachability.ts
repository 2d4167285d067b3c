/**
 * Which tunnels could not connect, shared by every group holding them, so a
 * group made from another group skips the same hosts.
 *
 * @module
 */
import type { BaseTunnel } from "../tunnel/base_tunnel.ts";
import type { ErrorResult } from "./error_result.ts";

const failed = new WeakMap<BaseTunnel, ErrorResult>();

/** The connection failure kept for `tunnel`, unless it has connected since. */
export function unreachable(tunnel: BaseTunnel): ErrorResult | undefined {
  const failure = failed.get(tunnel);
  if (failure && tunnel.connected) {
    failed.delete(tunnel);
    return undefined;
  }
  return failure;
}

/** Keeps `failure` for `tunnel` until {@linkcode forget} is called. */
export function markUnreachable(tunnel: BaseTunnel, failure: ErrorResult) {
  failed.set(tunnel, failure);
}

/** Forgets a kept failure, before a new attempt to connect. */
export function forget(tunnel: BaseTunnel): void {
  failed.delete(tunnel);
}

/**
 * True when `error` says the tunnel could not connect. A connect stopped
 * by `close()` (stage `"closed"`) says nothing about the host: a group
 * closed while it connected must reach it again when used next.
 */
export function isConnectFailure(error: unknown): boolean {
  const e = error as { name?: unknown; stage?: unknown } | undefined;
  return e?.name === "ConnectError" && e.stage !== "closed";
}
