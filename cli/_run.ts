/**
 * Runs a parsed command: finds the hosts, builds the group, runs the
 * operation with progress, prints the outcome, and gives the exit status.
 *
 * @module
 */
import { Group } from "../group/group.ts";
import type { HostEvent } from "../group/run_options.ts";
import type { GroupResult } from "../group/group_result.ts";
import { ErrorResult } from "../group/error_result.ts";
import { fetchPaths } from "../group/_fetch_paths.ts";
import type { BaseTunnel, TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { OutputSink } from "../tunnel/_output.ts";
import { Local } from "../transports/local.ts";
import { type SshOptions, Tunnel } from "../transports/ssh.ts";
import { isAbsolute, join, normalize, resolve } from "node:path";
import type { CliCommand, HostOptions } from "./parse_command.ts";
import { parseInventory } from "./inventory.ts";
import { loadFunction } from "./_load_function.ts";
import { collectFacts } from "./_collect_facts.ts";
import type { Outcome } from "./_outcome.ts";
import { Progress } from "./_progress.ts";
import {
  renderBlocks,
  renderFooter,
  renderJson,
  renderPlain,
  renderTable,
  type Screen,
} from "./_render.ts";
import { UsageError } from "./usage_error.ts";

/** What the CLI reads and writes, so tests can run it in memory. */
export interface CliIo {
  /** Writes to stdout. */
  stdout(text: string): void;
  /** Writes to stderr. */
  stderr(text: string): void;
  /** Both stdout and stderr are terminals: progress and a table. */
  terminal: boolean;
  /** Terminal width. */
  columns: number;
  /** ANSI colours on a terminal. */
  color: boolean;
  /** The directory relative paths start from. */
  cwd: string;
}

type HostCommand = Exclude<CliCommand, { command: "help" }>;

/** Runs `cmd`; resolves to the exit status (0 all ok, 1 a host failed). */
export async function runCommand(cmd: HostCommand, io: CliIo): Promise<number> {
  const hosts = await hostNames(cmd.hosts, io.cwd);
  // Everything that can be refused is checked before any agent starts.
  let run: (group: Group) => Promise<GroupResult<unknown>>;
  let label: string;
  // Agents load a called module from its own project.
  let project: string | undefined;
  switch (cmd.command) {
    case "call": {
      const fn = await loadFunction(cmd.target, io.cwd);
      project = moduleFile(cmd.target, io.cwd);
      run = (group) => group.call(fn, ...cmd.args);
      label = `call ${cmd.target.split("/").pop()}`;
      break;
    }
    case "put": {
      const local = resolve(io.cwd, cmd.local);
      const info = await Deno.stat(local).catch((e) => {
        throw new UsageError(`Cannot put "${cmd.local}": ${e.message}`, "put");
      });
      // Every host would refuse it, each after starting its agent.
      if (!info.isFile) {
        throw new UsageError(
          `Cannot put "${cmd.local}": it is not a regular file`,
          "put",
        );
      }
      const options = cmd.mode === undefined ? {} : { mode: cmd.mode };
      run = (group) => group.put(local, cmd.remote, options);
      label = `put ${cmd.local}`;
      break;
    }
    case "fetch": {
      const template = fromCwd(io.cwd, cmd.template);
      try {
        fetchPaths(template, hosts, cmd.remote);
      } catch (e) {
        throw new UsageError((e as Error).message, "fetch");
      }
      run = (group) => group.fetch(cmd.remote, template);
      label = `fetch ${cmd.remote}`;
      break;
    }
    case "facts":
      run = (group) => group.call(collectFacts);
      label = "facts";
      break;
  }
  const screen: Screen = { columns: io.columns, color: io.color };
  const progress = io.terminal && cmd.run.progress
    ? new Progress(label, hosts.length, {
      write: io.stderr,
      columns: io.columns,
    })
    : undefined;
  const times = new Map<string, [number, number]>();
  const onHost = (event: HostEvent) => {
    const now = performance.now();
    if (event.state === "running") times.set(event.host, [now, now]);
    else times.set(event.host, [times.get(event.host)?.[0] ?? now, now]);
    progress?.onHost(event);
  };
  let group: Group;
  try {
    group = new Group(hosts, {
      tunnel: tunnelMaker(cmd.hosts, progress?.line, project),
      concurrency: cmd.run.concurrency,
      timeout: cmd.run.timeout,
      onHost,
    });
  } catch (e) {
    progress?.stop();
    throw new UsageError((e as Error).message, cmd.command);
  }
  const started = performance.now();
  let result: GroupResult<unknown>;
  try {
    result = await run(group);
  } finally {
    progress?.stop();
    await group.close();
  }
  const outcomes: Outcome[] = [...result].map(([host, value]) => {
    const [start, end] = times.get(host) ?? [0, 0];
    return value instanceof ErrorResult
      ? { host, ok: false, error: value, ms: end - start }
      : { host, ok: true, value, ms: end - start };
  });
  if (cmd.run.json) {
    io.stdout(renderJson(describe(cmd), outcomes));
  } else if (io.terminal) {
    const failed = outcomes.filter((o) => !o.ok).length;
    const counts = {
      total: outcomes.length,
      ok: outcomes.length - failed,
      failed,
      running: 0,
    };
    io.stdout(
      (cmd.command === "facts"
        ? renderBlocks(outcomes, screen)
        : renderTable(outcomes, screen)) +
        renderFooter(counts, performance.now() - started, screen),
    );
  } else {
    io.stdout(renderPlain(outcomes));
  }
  return result.ok ? 0 : 1;
}

/** The host names: `--hosts` (or `--local`), then the inventory's. */
async function hostNames(o: HostOptions, cwd: string): Promise<string[]> {
  const names = [...o.hosts];
  if (o.inventory !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(resolve(cwd, o.inventory));
    } catch (e) {
      throw new UsageError(
        `Cannot read inventory "${o.inventory}": ${(e as Error).message}`,
      );
    }
    names.push(...parseInventory(text, o.group, `"${o.inventory}"`));
  }
  if (!names.length) throw new UsageError("No hosts to run on");
  // Checked here, before a fetch template is: two hosts of one name would
  // be blamed on the template otherwise.
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) {
      throw new UsageError(
        `Cannot run: host "${name}" appears twice; host names must be unique`,
      );
    }
    seen.add(name);
  }
  return names;
}

/**
 * `path` from `cwd`, keeping a trailing "/": it names a directory that the
 * fetched file goes in under its own name (`resolve` would drop it, and
 * the file would be written as the directory).
 */
function fromCwd(cwd: string, path: string): string {
  // An empty template stays empty, to be refused as the library refuses it
  // (join would make it the directory itself).
  if (path === "") return path;
  return normalize(isAbsolute(path) ? path : join(cwd, path));
}

function tunnelMaker(
  o: HostOptions,
  output: OutputSink | undefined,
  project?: string,
): (host: string) => BaseTunnel {
  const common: TunnelOptions = {};
  if (project !== undefined) common.project = project;
  if (o.deno !== undefined) common.deno = o.deno;
  if (o.connectTimeout !== undefined) common.connectTimeout = o.connectTimeout;
  if (output) common.output = output;
  if (o.transport === "local") return (host) => new Local(host, common);
  const ssh: SshOptions = { ...common };
  if (o.user !== undefined) ssh.user = o.user;
  if (o.port !== undefined) ssh.port = o.port;
  if (o.identityFile !== undefined) ssh.identityFile = o.identityFile;
  if (Object.keys(o.sshOptions).length) ssh.sshOptions = o.sshOptions;
  return (host) => new Tunnel(host, ssh);
}

/** The file of a `module#export` target, when it is a local file. */
function moduleFile(target: string, cwd: string): string | undefined {
  const at = target.lastIndexOf("#");
  const path = at < 0 ? target : target.slice(0, at);
  if (/^[a-z][a-z0-9+.-]+:/i.test(path) && !path.startsWith("file:")) {
    return undefined;
  }
  return path.startsWith("file:") ? path : resolve(cwd, path);
}

function describe(cmd: HostCommand): Record<string, unknown> {
  switch (cmd.command) {
    case "call":
      return { command: "call", target: cmd.target, args: cmd.args };
    case "put":
      return { command: "put", local: cmd.local, remote: cmd.remote ?? null };
    case "fetch":
      return { command: "fetch", remote: cmd.remote, template: cmd.template };
    case "facts":
      return { command: "facts" };
  }
}
