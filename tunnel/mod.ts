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
  type FetchResult,
  type Liveness,
  type OutputSink,
  type Permissions,
  type PermissionValue,
  type Preamble,
  type PutOptions,
  type PutResult,
  type SpawnSpec,
  type TransferOptions,
  type TreeResult,
  type TunnelOptions,
  type TunnelStats,
} from "./base_tunnel.ts";
export { Local } from "../transports/local.ts";
export { callSignal } from "./call_signal.ts";
export {
  type HostKeyPolicy,
  type SshOptions,
  type SshSudo,
  Tunnel,
  Tunnel as Ssh,
} from "../transports/ssh.ts";
export { Sudo, type SudoOptions } from "../transports/sudo.ts";
export {
  type SharedPassword,
  type SudoPassword,
  sudoPassword,
} from "../transports/sudo_password.ts";
export {
  DENO_MOUNT,
  Docker,
  type DockerOptions,
  Podman,
} from "../transports/docker.ts";
export {
  ConnectError,
  ConnectionLostError,
  type ConnectStage,
  ProtocolError,
  RemoteError,
  TimeoutError,
} from "../errors.ts";
