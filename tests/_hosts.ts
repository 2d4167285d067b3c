/**
 * The real test hosts (see `tests/hosts/README.md`): loads
 * `$CHOPSTICKS_HOSTS_DIR/env.json` (default `/tmp/chopsticks-hosts`) and
 * decides what a test that needs them does when they are not up: with
 * `CI=true` it fails, saying so (nothing may be skipped in CI); otherwise it
 * is skipped with `ignore` and the reason is printed once.
 *
 * Loading is lazy and has no side effect at import time beyond reading the
 * file, so agents may import fixtures next to this module harmlessly.
 *
 * @module
 */

/** One ssh host alias of the test setup. */
export interface SshHost {
  address: string;
  port: number;
  user: string;
  hostname: string;
  netns?: string;
}

/** A container engine of the test setup. */
export interface EngineEnv {
  globalFlags: string[];
  runFlags: string[];
  networkFlags: string[];
  image: string;
}

/** What `tests/hosts/up.sh` writes to env.json. */
export interface HostsEnv {
  dir: string;
  deno: string;
  denoVersion: string;
  ssh: {
    config: string;
    knownHosts: string;
    identityFile: string;
    hosts: Record<string, SshHost>;
    multiHosts: string[];
    bridgeAddress: string;
  };
  docker: EngineEnv & { host: string };
  podman: EngineEnv & { env: Record<string, string> };
  sudo: {
    user: string;
    sshUser: string;
    passwordUser: string;
    password: string;
  };
}

const UP_COMMAND = "run `sudo bash tests/hosts/up.sh` (or `deno task test`)";

/** The directory env.json is read from. */
export const hostsDir: string = Deno.env.get("CHOPSTICKS_HOSTS_DIR") ||
  "/tmp/chopsticks-hosts";

/** True when running in CI, where no test may be skipped. */
export const inCI: boolean = Deno.env.get("CI") === "true";

let loaded: { env?: HostsEnv; why?: string } | undefined;

function load(): { env?: HostsEnv; why?: string } {
  if (loaded) return loaded;
  const file = `${hostsDir}/env.json`;
  try {
    return loaded = { env: JSON.parse(Deno.readTextFileSync(file)) };
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? `test hosts are not up (no ${file}): ${UP_COMMAND}`
      : `test hosts cannot be read from ${file}: ${
        (e as Error).message
      }; ${UP_COMMAND}`;
    return loaded = { why };
  }
}

/**
 * Why the hosts tests would be skipped here, or undefined when they run:
 * the hosts are up, or this is CI (where they fail instead).
 */
export function skipReason(): string | undefined {
  const { env, why } = load();
  return env || inCI ? undefined : why;
}

/**
 * The hosts. Throws, with the reason, when they are not up: in CI that
 * fails the test that asked.
 */
export function hosts(): HostsEnv {
  const { env, why } = load();
  if (env) return env;
  throw new Error(
    `${why}${
      inCI ? " (CI=true: tests that need the hosts may not be skipped)" : ""
    }`,
  );
}

const told = new Set<string>();

/**
 * Registers a test that needs the hosts: skipped with a printed reason
 * when they are not up (outside CI), failing in CI.
 */
export function hostTest(
  name: string,
  fn: (env: HostsEnv) => Promise<void>,
): void {
  const reason = skipReason();
  const group = name.split(":")[0];
  if (reason && !told.has(group)) {
    told.add(group);
    console.error(
      `${group}: skipping the tests that need the hosts: ${reason}`,
    );
  }
  Deno.test({
    name,
    ignore: reason !== undefined,
    fn: () => fn(hosts()),
  });
}

/** Runs a command on the controller; resolves to its trimmed stdout. */
export async function sh(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(command, {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout).trim(),
    stderr: text.decode(out.stderr).trim(),
  };
}

/**
 * Starts a long-lived container (`sleep`) with the controller's deno at
 * `denoPath`, removed when this test module unloads; undefined when the
 * hosts are not up. For suites whose tests reopen a tunnel and expect what
 * an earlier agent left: a new container per agent would forget it.
 */
export function startContainer(
  engine: "docker" | "podman",
  denoPath: string,
): string | undefined {
  if (skipReason() !== undefined || !load().env) return undefined;
  const e = hosts()[engine];
  const name = `chop-keep-${Deno.pid}-${engine}`;
  const run = (args: string[]) =>
    new Deno.Command(engine, {
      args: [...e.globalFlags, ...args],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).outputSync();
  const out = run([
    "run",
    "-d",
    "--rm",
    "--name",
    name,
    ...e.runFlags,
    ...e.networkFlags,
    "-v",
    `${Deno.realPathSync(Deno.execPath())}:${denoPath}:ro`,
    e.image,
    "sleep",
    "900",
  ]);
  if (!out.success) {
    throw new Error(
      `Cannot start the ${engine} container "${name}": ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  addEventListener("unload", () => run(["rm", "-f", name]));
  return name;
}

/**
 * Starts a Docker container `name` of the test image for one test (the test
 * removes it; unlike {@linkcode startContainer}, which lives as long as the
 * module): it sleeps for ten minutes; with `deno`, the targets' deno is
 * mounted on its PATH. Throws when the engine refuses.
 */
export async function sleepingContainer(
  env: HostsEnv,
  name: string,
  options: { deno?: boolean } = {},
): Promise<void> {
  const mount = options.deno
    ? ["-v", `${env.deno}:/usr/local/bin/deno:ro`]
    : [];
  const started = await sh("docker", [
    ...env.docker.globalFlags,
    "run",
    "-d",
    "--rm",
    "--name",
    name,
    ...env.docker.networkFlags,
    ...mount,
    env.docker.image,
    "sleep",
    "600",
  ]);
  if (started.code !== 0) {
    throw new Error(`Cannot start container ${name}: ${started.stderr}`);
  }
}
