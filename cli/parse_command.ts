/**
 * Turns the command line into a {@linkcode CliCommand}, with
 * `node:util` `parseArgs`. Pure: reads no files.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { UsageError } from "./usage_error.ts";

/** The commands the CLI knows. */
export const COMMANDS = ["call", "put", "fetch", "facts"] as const;

/** A command that runs on hosts. */
export type CommandName = typeof COMMANDS[number];

/** Where the hosts come from, and how to reach them. */
export interface HostOptions {
  /** SSH hosts from `--hosts` (comma lists, repeatable). */
  hosts: string[];
  /** An inventory file (`--inventory`). */
  inventory?: string;
  /** The inventory group to use (`--group`). */
  group?: string;
  /**
   * How to reach the hosts (`--transport`): `"ssh"` (the default), or
   * `"local"` for agents run as subprocesses here, named after the hosts.
   * `--local N` (hosts `local1`..`localN`) and `--local a,b` imply it.
   */
  transport: "ssh" | "local";
  /** SSH user (`--user`). */
  user?: string;
  /** SSH port (`--port`). */
  port?: number;
  /** SSH private key file (`--identity`). */
  identityFile?: string;
  /** SSH `-o` options (`--ssh-option Key=Value`, repeatable). */
  sshOptions: Record<string, string>;
  /** The deno binary on the targets (`--deno`). */
  deno?: string;
  /** Milliseconds to wait for each agent to start (`--connect-timeout`). */
  connectTimeout?: number;
}

/** How a command runs and prints. */
export interface RunFlags {
  /** At most this many hosts at once (`--concurrency`). */
  concurrency?: number;
  /** Time limit per host, in milliseconds (`--timeout`). */
  timeout?: number;
  /** One JSON document on stdout (`--json`). */
  json: boolean;
  /** Live progress on a terminal (`--no-progress` turns it off). */
  progress: boolean;
}

/** A parsed command line. */
export type CliCommand =
  | { command: "help"; topic?: string }
  | {
    command: "call";
    /** `module#export`, e.g. `./tasks.ts#uptime`. */
    target: string;
    /** The arguments, from `--args` (a JSON array). */
    args: unknown[];
    hosts: HostOptions;
    run: RunFlags;
  }
  | {
    command: "put";
    local: string;
    remote?: string;
    /** File mode from `--mode` (octal, e.g. `644`). */
    mode?: number;
    hosts: HostOptions;
    run: RunFlags;
  }
  | {
    command: "fetch";
    remote: string;
    /** The local path template, with `{host}`. */
    template: string;
    hosts: HostOptions;
    run: RunFlags;
  }
  | { command: "facts"; hosts: HostOptions; run: RunFlags };

const options = {
  hosts: { type: "string", multiple: true },
  inventory: { type: "string" },
  group: { type: "string" },
  local: { type: "string" },
  transport: { type: "string" },
  user: { type: "string" },
  port: { type: "string" },
  identity: { type: "string" },
  "ssh-option": { type: "string", multiple: true },
  deno: { type: "string" },
  "connect-timeout": { type: "string" },
  concurrency: { type: "string" },
  timeout: { type: "string" },
  json: { type: "boolean" },
  progress: { type: "boolean" },
  args: { type: "string" },
  mode: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const only: Record<string, CommandName> = { args: "call", mode: "put" };
const positionals: Record<CommandName, [number, number, string]> = {
  call: [1, 1, "module#export"],
  put: [1, 2, "local [remote]"],
  fetch: [2, 2, "remote local-template"],
  facts: [0, 0, ""],
};

/**
 * Parses the arguments after `chopsticks`.
 *
 * @param argv The arguments, e.g. `Deno.args`.
 * @returns The command to run.
 * @throws {UsageError} When the command line is wrong.
 *
 * @example Parsing a call
 * ```ts
 * import { parseCommand } from "@chopsticks/chopsticks/cli";
 * const cmd = parseCommand(["call", "--local", "2", "./tasks.ts#uptime", "--args", "[1]"]);
 * console.log(cmd.command); // "call"
 * ```
 */
export function parseCommand(argv: string[]): CliCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options,
      allowPositionals: true,
      allowNegative: true,
      strict: true,
    });
  } catch (e) {
    // Options may come before the command: the first word that names one
    // (the first word may be an option's value, such as a host).
    const name = argv.find((a) => (COMMANDS as readonly string[]).includes(a));
    throw new UsageError((e as Error).message.split(". To specify")[0], name);
  }
  const { values: v, positionals: [name, ...rest] } = parsed;
  if (name === "help") return { command: "help", topic: rest[0] };
  if (name === undefined) {
    if (v.help) return { command: "help" };
    throw new UsageError("Missing a command: call, put, fetch or facts");
  }
  if (!(COMMANDS as readonly string[]).includes(name)) {
    throw new UsageError(
      `Unknown command "${name}": expected call, put, fetch, facts or help`,
    );
  }
  const command = name as CommandName;
  if (v.help) return { command: "help", topic: command };
  const fail = (message: string) => new UsageError(message, command);
  for (const [option, owner] of Object.entries(only)) {
    if (option in v && owner !== command) {
      throw fail(`Option --${option} is only for "${owner}"`);
    }
  }
  const [least, most, shape] = positionals[command];
  if (rest.length < least || rest.length > most) {
    throw fail(
      `"${command}" takes ${shape ? `${shape}` : "no arguments"}, got ${
        rest.length ? rest.map((r) => `"${r}"`).join(" ") : "none"
      }`,
    );
  }
  const hosts = hostOptions(v, fail);
  const run: RunFlags = {
    concurrency: integer(v.concurrency, "--concurrency", fail),
    timeout: positive(v.timeout, "--timeout", fail),
    json: v.json ?? false,
    progress: v.progress ?? true,
  };
  switch (command) {
    case "call":
      return {
        command,
        target: rest[0],
        args: jsonArgs(v.args, fail),
        hosts,
        run,
      };
    case "put":
      return {
        command,
        local: rest[0],
        remote: rest[1],
        mode: mode(v.mode, fail),
        hosts,
        run,
      };
    case "fetch":
      return { command, remote: rest[0], template: rest[1], hosts, run };
    case "facts":
      return { command, hosts, run };
  }
}

type Values = ReturnType<typeof parseArgs<{ options: typeof options }>>[
  "values"
];
type Fail = (message: string) => UsageError;

function hostOptions(v: Values, fail: Fail): HostOptions {
  const list = (s: string) => s.split(",").map((h) => h.trim()).filter(Boolean);
  let hosts = (v.hosts ?? []).flatMap(list);
  const transport = v.transport ?? (v.local === undefined ? "ssh" : "local");
  if (transport !== "ssh" && transport !== "local") {
    throw fail(`--transport "${transport}" is not "ssh" or "local"`);
  }
  if (v.local !== undefined) {
    if (hosts.length || v.inventory !== undefined) {
      throw fail("--local cannot be combined with --hosts or --inventory");
    }
    if (transport !== "local") {
      throw fail(`--local cannot be combined with --transport ${transport}`);
    }
    const n = /^\d+$/.test(v.local) ? Number(v.local) : undefined;
    hosts = n === undefined
      ? list(v.local)
      : Array.from({ length: n }, (_, i) => `local${i + 1}`);
    if (!hosts.length) throw fail(`--local needs a count or names`);
  } else if (!hosts.length && v.inventory === undefined) {
    throw fail("No hosts: give --hosts, --inventory or --local");
  }
  if (v.group !== undefined && v.inventory === undefined) {
    throw fail("--group needs --inventory");
  }
  if (transport === "local") {
    for (const flag of ["user", "port", "identity", "ssh-option"] as const) {
      if (v[flag] !== undefined) {
        throw fail(`--${flag} is for SSH hosts: local hosts do not use it`);
      }
    }
  }
  const sshOptions: Record<string, string> = {};
  for (const option of v["ssh-option"] ?? []) {
    const at = option.indexOf("=");
    if (at < 1) {
      throw fail(`--ssh-option "${option}" is not Key=Value`);
    }
    sshOptions[option.slice(0, at)] = option.slice(at + 1);
  }
  if (v.deno === "") {
    throw fail('--deno is empty: give a path, "deno" (on PATH) or "upload"');
  }
  const port = integer(v.port, "--port", fail);
  if (port !== undefined && port > 65535) {
    throw fail(`--port ${port} is not a port number`);
  }
  return {
    hosts,
    inventory: v.inventory,
    group: v.group,
    transport,
    user: v.user,
    port,
    identityFile: v.identity,
    sshOptions,
    deno: v.deno,
    connectTimeout: positive(v["connect-timeout"], "--connect-timeout", fail),
  };
}

function integer(s: string | undefined, flag: string, fail: Fail) {
  if (s === undefined) return undefined;
  if (!/^\d+$/.test(s) || Number(s) < 1) {
    throw fail(`${flag} "${s}" is not a positive whole number`);
  }
  return Number(s);
}

function positive(s: string | undefined, flag: string, fail: Fail) {
  if (s === undefined) return undefined;
  // Written in decimal, as the help says: Number() would also take "0x10"
  // (16 ms) and "1e3".
  const n = Number(s);
  if (!/^(\d+\.?\d*|\.\d+)$/.test(s) || n <= 0) {
    throw fail(`${flag} "${s}" is not a positive number of milliseconds`);
  }
  return n;
}

function jsonArgs(s: string | undefined, fail: Fail): unknown[] {
  if (s === undefined) return [];
  let value: unknown;
  try {
    value = JSON.parse(s);
  } catch (e) {
    throw fail(`--args is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(value)) {
    throw fail(`--args must be a JSON array of arguments, e.g. '[1, "x"]'`);
  }
  return value;
}

function mode(s: string | undefined, fail: Fail): number | undefined {
  if (s === undefined) return undefined;
  if (!/^0?[0-7]{3,4}$/.test(s)) {
    throw fail(`--mode "${s}" is not an octal file mode such as 644`);
  }
  return parseInt(s, 8);
}
