/**
 * The SSH transport: the agent on another machine, through the system's
 * OpenSSH client, so `~/.ssh/config`, ssh-agent, `ProxyJump` and the
 * user's known_hosts all apply.
 *
 * ```ts ignore
 * import { Tunnel } from "@chopsticks/chopsticks";
 * const tun = new Tunnel("web1");
 * console.log("Time on %s:", tun.host, await tun.call(Date.now));
 * await tun.close();
 * ```
 *
 * @module
 */
import type { ConnectError } from "../errors.ts";
import { BaseTunnel, type TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";
import { shellQuote } from "../tunnel/_permissions.ts";
import { controlDir } from "./_control_dir.ts";
import { COMMON_RULES, explainWith, type HintRule } from "./_hints.ts";
import { sudoWords } from "./_sudo.ts";

/**
 * Options of an SSH tunnel, besides the common ones.
 *
 * @example Through a bastion, with a key and a config file
 * ```ts ignore
 * import { type SshOptions, Tunnel } from "@chopsticks/chopsticks";
 * const options: SshOptions = {
 *   user: "deploy",
 *   identityFile: "~/.ssh/deploy_ed25519",
 *   sshOptions: { ProxyJump: "bastion" },
 *   sshArgs: ["-F", "ops/ssh_config"],
 * };
 * await using tun = new Tunnel("db1", options);
 * ```
 */
export interface SshOptions extends TunnelOptions {
  /** The remote user (`ssh -l`). Default: ssh's (config, then local user). */
  user?: string;
  /** The port (`ssh -p`). Default: ssh's (config, then 22). */
  port?: number;
  /** A private key file (`ssh -i`). */
  identityFile?: string;
  /**
   * ssh options as `-o Key=Value`, such as `{ ProxyJump: "bastion" }`.
   * They come first, so they win over this library's defaults
   * (`BatchMode=yes`) and over the ssh config files.
   */
  sshOptions?: Record<string, string | number | boolean>;
  /** Extra ssh arguments, such as `["-F", "ssh_config"]`. */
  sshArgs?: string[];
  /**
   * Runs the remote agent through `sudo -n`: `true` as root, a string as
   * that user. sudo must not ask for a password (a NOPASSWD rule).
   */
  sudo?: boolean | string;
  /**
   * Shares one SSH connection between tunnels to the same host
   * (ControlMaster), kept open this many seconds after the last one ends.
   * The sockets live in a private directory. Default: off.
   */
  controlPersist?: number;
  /** The ssh program. Default: `"ssh"`. */
  ssh?: string;
}

const SSH_RULES: HintRule[] = [
  {
    pattern:
      /Permission denied \(|Too many authentication failures|Authentication failed|Auth fail/,
    hint:
      "authentication failed: check the user and the key (identityFile, ssh-agent); BatchMode is on, so ssh never asks for a password",
  },
  {
    pattern:
      /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key is known|Host key .* differs/,
    hint:
      "the host key is unknown or has changed: verify it and add it to known_hosts (for example with ssh-keyscan); host-key checking stays on",
  },
  {
    pattern:
      /Could not resolve hostname|Name or service not known|nodename nor servname|Temporary failure in name resolution/,
    hint:
      "the host name does not resolve: check its spelling, DNS, or the Host entries of the ssh config",
  },
  {
    pattern: /Connection refused/,
    hint: "nothing listens there: check the port and that sshd runs",
  },
  {
    pattern:
      /Connection timed out|timed out during banner exchange|No route to host|Network is unreachable|Operation timed out/,
    hint: "the host cannot be reached: check the address and the network",
  },
  {
    pattern:
      /Connection closed by|Connection reset by|kex_exchange_identification/,
    hint:
      "the server closed the connection: check the port and the server's logs",
  },
  ...COMMON_RULES,
];

/**
 * A tunnel to an agent on another machine over SSH, through the system's
 * `ssh` client. ssh runs with `BatchMode=yes` (it never asks for a
 * password) and host-key checking as configured (never turned off here).
 * The remote user's login shell runs `sh -c '<agent script>'`, so it must
 * be a POSIX-style shell (sh, bash, dash, zsh, ksh). Also exported as
 * `Ssh`.
 *
 * @example Time on a host
 * ```ts ignore
 * import { Tunnel } from "@chopsticks/chopsticks";
 * await using tun = new Tunnel("web1", { user: "deploy", port: 2222 });
 * console.log("Time on %s:", tun.host, await tun.call(Date.now));
 * ```
 *
 * @example As root through sudo, sharing one SSH connection
 * ```ts ignore
 * import { Tunnel } from "@chopsticks/chopsticks";
 * await using tun = new Tunnel("web1", { sudo: true, controlPersist: 60 });
 * console.log(await tun.call(Deno.uid));
 * ```
 */
export class Tunnel extends BaseTunnel {
  #args: string[];
  #ssh: string;
  #sudo: true | string | undefined;
  #controlPersist: number | undefined;

  /** Makes a tunnel to `host` (a name, an address, or a config alias). */
  constructor(host: string, options: SshOptions = {}) {
    super(host, options);
    if (host.startsWith("-") || /[\s\0]/.test(host)) {
      throw new TypeError(
        `Cannot make an SSH tunnel to "${host}": not a host name`,
      );
    }
    this.#ssh = options.ssh ?? "ssh";
    this.#sudo = options.sudo === true || typeof options.sudo === "string"
      ? options.sudo
      : undefined;
    if (this.#sudo !== undefined) sudoWords(this.#sudo);
    const c = options.controlPersist;
    if (c !== undefined && (!Number.isInteger(c) || c < 1)) {
      throw new RangeError(
        `Cannot keep ssh connections to "${host}" open for ${c} s: expected a whole number of seconds, at least 1`,
      );
    }
    this.#controlPersist = c;
    this.#args = sshArgs(host, options);
  }

  /** Runs the agent script with `ssh host "sh -c '<script>'"`. */
  protected spawnSpec(script: string): SpawnSpec {
    const words = [
      ...(this.#sudo === undefined ? [] : sudoWords(this.#sudo)),
      "sh",
      "-c",
      script,
    ];
    const control = this.#controlPersist === undefined ? [] : [
      "-o",
      "ControlMaster=auto",
      "-o",
      `ControlPersist=${this.#controlPersist}`,
      "-o",
      `ControlPath=${controlDir()}/%C`,
    ];
    return {
      command: this.#ssh,
      args: [
        ...this.#args,
        ...control,
        "--",
        this.host,
        words.map(shellQuote).join(" "),
      ],
    };
  }

  /** A hint shown when connecting fails. */
  protected override get connectHint(): string {
    return "check the host, the user and the key (ssh runs with BatchMode=yes), and that deno is installed there";
  }

  /** Names the likely cause from ssh's own stderr lines. */
  protected override explainConnectError(error: ConnectError): ConnectError {
    return explainWith(error, SSH_RULES, this.connectHint);
  }
}

/** The ssh arguments before the ControlMaster ones and `--`. */
function sshArgs(host: string, o: SshOptions): string[] {
  const args = [...(o.sshArgs ?? [])];
  for (const [key, value] of Object.entries(o.sshOptions ?? {})) {
    if (!/^[A-Za-z]+$/.test(key) || /[\n\0]/.test(String(value))) {
      throw new TypeError(
        `Cannot use ssh option "${key}": expected a name of letters and a one-line value`,
      );
    }
    const text = typeof value === "boolean" ? (value ? "yes" : "no") : value;
    args.push("-o", `${key}=${text}`);
  }
  args.push("-o", "BatchMode=yes");
  if (o.port !== undefined) {
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
      throw new RangeError(
        `Cannot connect to "${host}" on port ${o.port}: expected 1 to 65535`,
      );
    }
    args.push("-p", String(o.port));
  }
  if (o.user !== undefined) {
    if (o.user === "" || o.user.startsWith("-") || /[\s\0@]/.test(o.user)) {
      throw new TypeError(`Cannot use ssh user "${o.user}": not a user name`);
    }
    args.push("-l", o.user);
  }
  if (o.identityFile !== undefined) args.push("-i", o.identityFile);
  args.push("-T", "-e", "none");
  return args;
}
