/**
 * The tunnel a group makes for a host given by name: SSH.
 *
 * @module
 */
import type { BaseTunnel } from "../tunnel/base_tunnel.ts";
import { Tunnel } from "../transports/ssh.ts";

/** Makes an SSH tunnel to `host` with default options. */
export function sshTunnel(host: string): BaseTunnel {
  return new Tunnel(host);
}
