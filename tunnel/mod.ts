/**
 * Tunnels: the base class and every transport.
 *
 * ```ts
 * import { Local } from "@chopsticks/chopsticks/tunnel";
 * await using tun = new Local();
 * console.log(await tun.call(Date.now));
 * ```
 *
 * @module
 */
export {
  type AnyFunction,
  BaseTunnel,
  type CallOptions,
  type OutputSink,
  type Permissions,
  type PermissionValue,
  type SpawnSpec,
  type TunnelOptions,
} from "./base_tunnel.ts";
export { Local } from "../transports/local.ts";
export {
  ConnectError,
  ConnectionLostError,
  type ConnectStage,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "../errors.ts";
