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
import { createHash } from "node:crypto";
import type { ConnectError } from "../errors.ts";
import { BaseTunnel, type TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";
import { shellQuote } from "../tunnel/_permissions.ts";
import { controlDir } from "./_control_dir.ts";
import {
  COMMON_RULES,
  explainWith,
  type HintRule,
  isPermanent,
} from "./_hints.ts";
import {
  hostKeyArgs,
  type HostKeyPolicy,
  hostKeyRules,
  hostKeysOffWarning,
} from "./_host_keys.ts";
import { checkSudoUser, PasswordSource, SudoStep } from "./_sudo.ts";
import type { SudoPassword } from "./sudo_password.ts";
import { prefixToStderr } from "../tunnel/_output.ts";

export type { HostKeyPolicy };

/**
 * sudo on the remote host, as an object: the target user (default root)
 * and the password sudo asks for, if it asks.
 *
 * @example
 * ```ts ignore
 * import { type SshSudo, Tunnel } from "@chopsticks/chopsticks";
 * const sudo: SshSudo = { user: "postgres", password: () => Deno.env.get("PW")! };
 * await using tun = new Tunnel("db1", { sudo });
 * ```
 */
export interface SshSudo {
  /** The user to run the agent as. Default: root. */
  user?: string;
  /**
   * The password sudo asks for, or a function that gives it (called only
   * when sudo asks, then kept for this tunnel until sudo refuses it; share
   * one between the tunnels of a group with `sudoPassword()`). It travels
   * on ssh's stdin to `sudo -S`, never in an argument. Without it sudo runs
   * with `-n` and must not ask.
   */
  password?: SudoPassword;
}

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
   * Runs the remote agent through sudo: `true` as root, a string as that
   * user, both with `sudo -n` (sudo must not ask for a password: a NOPASSWD
   * rule); or `{ user?, password }` when sudo asks for a password. A
   * failure of sudo itself is a `ConnectError` of stage `"sudo"`.
   */
  sudo?: boolean | string | SshSudo;
  /**
   * How ssh checks the host's key, mapped onto OpenSSH's
   * `StrictHostKeyChecking`: `"strict"` (`yes`: a host whose key is not in
   * known_hosts is refused, with a message that says how to add it),
   * `"accept-new"` (records the key of a host seen for the first time), or
   * `"off"` (`no`, with no known_hosts at all; a warning line goes to the
   * output once per tunnel). A key that changed is refused unless `"off"`.
   * Default: `"strict"`, over what the ssh config says; a
   * `StrictHostKeyChecking` in `sshOptions` (without `hostKeys`) wins.
   *
   * @example Trust a new host on first use
   * ```ts ignore
   * import { Tunnel } from "@chopsticks/chopsticks";
   * await using tun = new Tunnel("new-vm", { hostKeys: "accept-new" });
   * ```
   */
  hostKeys?: HostKeyPolicy;
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
    permanent: true,
  },
  {
    pattern:
      /Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|host key is known|Host key .* differs/,
    hint:
      'the host key is unknown or has changed: verify it and add it to known_hosts (for example with ssh-keyscan), or pass hostKeys: "accept-new" for a new host',
    permanent: true,
  },
  {
    pattern: /Temporary failure in name resolution/,
    hint: "the host name could not be resolved now: check DNS and the network",
  },
  {
    pattern:
      /Could not resolve hostname|Name or service not known|nodename nor servname/,
    hint:
      "the host name does not resolve: check its spelling, DNS, or the Host entries of the ssh config",
    permanent: true,
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
 * password) and the `hostKeys` policy (default `"strict"`).
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
  #password: PasswordSource | undefined;
  #step: SudoStep | undefined;
  #controlPersist: number | undefined;
  #controlTag: string;
  #port: number | undefined;
  #warning: (() => void) | undefined;

  /** Makes a tunnel to `host` (a name, an address, or a config alias). */
  constructor(host: string, options: SshOptions = {}) {
    super(host, options);
    if (host.startsWith("-") || /[\s\0]/.test(host)) {
      throw new TypeError(
        `Cannot make an SSH tunnel to "${host}": not a host name`,
      );
    }
    this.#ssh = options.ssh ?? "ssh";
    const sudo = options.sudo;
    if (sudo === true || typeof sudo === "string") this.#sudo = sudo;
    else if (sudo !== null && typeof sudo === "object") {
      this.#sudo = sudo.user ?? true;
      if (sudo.password !== undefined) {
        this.#password = new PasswordSource(sudo.password);
      }
    } else if (sudo !== undefined && sudo !== false) {
      throw new TypeError(
        `Cannot use sudo ${
          JSON.stringify(sudo)
        } for "${host}": expected true, a user name, or { user, password }`,
      );
    }
    if (this.#sudo !== undefined) checkSudoUser(this.#sudo);
    this.#port = options.port;
    if (options.hostKeys === "off") {
      const output = options.output ?? prefixToStderr;
      this.#warning = () => {
        this.#warning = undefined;
        output(hostKeysOffWarning(host), host);
      };
    }
    const c = options.controlPersist;
    if (c !== undefined && (!Number.isInteger(c) || c < 1)) {
      throw new RangeError(
        `Cannot keep ssh connections to "${host}" open for ${c} s: expected a whole number of seconds, at least 1`,
      );
    }
    this.#controlPersist = c;
    this.#args = sshArgs(host, options);
    // %C names the host, port and users only: a tunnel shares a master
    // connection only with tunnels that give ssh the same options (a strict
    // one rode on a master that hostKeys "off" had opened, its key never
    // checked; another identity or ProxyJump would ride on it too).
    this.#controlTag = createHash("sha256")
      .update(JSON.stringify([this.#ssh, this.#args])).digest("hex")
      .slice(0, 12);
  }

  /** Runs the agent script with `ssh host "sh -c '<script>'"`. */
  protected spawnSpec(script: string): SpawnSpec {
    this.#warning?.();
    const step = this.#sudo === undefined
      ? undefined
      : new SudoStep(this.host, this.#password);
    this.#step = step;
    const words = step?.command(this.#sudo!, script) ?? ["sh", "-c", script];
    const control = this.#controlPersist === undefined ? [] : [
      "-o",
      "ControlMaster=auto",
      "-o",
      `ControlPersist=${this.#controlPersist}`,
      "-o",
      `ControlPath=${controlDir()}/%C-${this.#controlTag}`,
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
      preamble: step?.preamble(),
    };
  }

  /** A hint shown when connecting fails. */
  protected override get connectHint(): string {
    return "check the host, the user and the key (ssh runs with BatchMode=yes)";
  }

  /**
   * Names the likely cause: sudo's own failure (stage `"sudo"`), or ssh's
   * stderr lines (a host key, a refused login, an unknown host).
   */
  protected override explainConnectError(error: ConnectError): ConnectError {
    const sudo = this.#step?.explain(error, [255]) ?? error;
    if (sudo !== error) return sudo;
    return explainWith(error, this.#rules(error), this.connectHint);
  }

  /** Never retries a refused login or host key, or an unknown host. */
  protected override retryable(error: ConnectError): boolean {
    return super.retryable(error) && !isPermanent(error, this.#rules(error));
  }

  #rules(error: ConnectError): HintRule[] {
    return [
      ...hostKeyRules(error.stderrTail, this.host, this.#port),
      ...SSH_RULES,
    ];
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
  const own = Object.keys(o.sshOptions ?? {}).some((k) =>
    k.toLowerCase() === "stricthostkeychecking"
  );
  if (o.hostKeys !== undefined && own) {
    throw new TypeError(
      `Cannot use both hostKeys and sshOptions.StrictHostKeyChecking for "${host}": give one`,
    );
  }
  if (!own) args.push(...hostKeyArgs(host, o.hostKeys ?? "strict"));
  // Keepalives: a host that stops answering is noticed by ssh itself
  // (about 45 s), besides the tunnel's own ping.
  args.push(
    "-o",
    "BatchMode=yes",
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
  );
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
