/**
 * The container transports: the agent in a new container made from an
 * image (`docker run -i`), or in a running one (`docker exec -i`), with
 * Docker or Podman. An image needs no deno: the controller's own binary is
 * mounted into the container read-only.
 *
 * ```ts ignore
 * import { Docker } from "@chopsticks/chopsticks";
 * await using box = new Docker("box", { image: "debian:12" });
 * console.log(await box.call(Deno.hostname));
 * ```
 *
 * @module
 */
import type { ConnectError } from "../errors.ts";
import { BaseTunnel, type TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";
import {
  COMMON_RULES,
  explainWith,
  type HintRule,
  isPermanent,
} from "./_hints.ts";

/**
 * Where the controller's deno appears inside a new container (mounted
 * read-only), and so the `deno` a {@linkcode Docker} tunnel runs there.
 *
 * @example
 * ```ts ignore
 * import { DENO_MOUNT, Docker } from "@chopsticks/chopsticks";
 * await using box = new Docker("box", { image: "debian:12" });
 * console.log(await box.call(Deno.execPath) === DENO_MOUNT); // true
 * ```
 */
export const DENO_MOUNT = "/opt/chopsticks/deno";

/**
 * Options of a container tunnel, besides the common ones.
 *
 * @example A private engine, no network, no pulls
 * ```ts ignore
 * import { Docker, type DockerOptions } from "@chopsticks/chopsticks";
 * const options: DockerOptions = {
 *   image: "debian:12",
 *   engineFlags: ["-H", "unix:///run/ci/docker.sock"],
 *   runFlags: ["--network", "none"],
 *   pull: "never",
 * };
 * await using box = new Docker("ci-1", options);
 * ```
 */
export interface DockerOptions extends TunnelOptions {
  /** The image of the new container. Required unless `exec` is true. */
  image?: string;
  /** Removes the container when the tunnel closes. Default: true. */
  rm?: boolean;
  /** The engine's command: `"docker"` (default) or `"podman"`. */
  engine?: "docker" | "podman";
  /**
   * Runs the agent in the running container `name` (`exec -i`) instead of
   * a new one. The controller's deno is not mounted there: give `deno`
   * (or `"upload"`) unless the container has it on its PATH.
   */
  exec?: boolean;
  /**
   * Flags before the engine's subcommand, on every command it runs, such
   * as `["-H", "unix:///run/other.sock"]` or Podman's `["--root", dir]`.
   */
  engineFlags?: string[];
  /**
   * Extra flags of `run` (or of `exec` when `exec` is true), such as
   * `["--network", "none"]` or `["--ulimit", "nofile=20000:20000"]`.
   */
  runFlags?: string[];
  /** The engine's pull policy for `run`. Default: the engine's. */
  pull?: "always" | "missing" | "never";
}

const DOCKER_RULES: HintRule[] = [
  {
    pattern:
      /No such image|Unable to find image|image not known|pull access denied|manifest unknown|repository does not exist/,
    hint:
      "the image is not there and could not be pulled: pull, build or import it first",
    permanent: true,
  },
  {
    pattern:
      /Error response from daemon: (Get|Head) "?https?:|initializing source docker:|pinging container registry/,
    hint:
      'the image is not there and its registry cannot be reached: pull or import it first (pull: "never" fails at once)',
  },
  {
    pattern: /already in use/,
    hint:
      "a container of that name exists: remove it, choose another name, or use exec: true",
    permanent: true,
  },
  {
    pattern:
      /Cannot connect to the Docker daemon|docker daemon running|permission denied while trying to connect|unable to connect to Podman/,
    hint:
      "the engine cannot be reached: check that it runs, DOCKER_HOST, and engineFlags",
  },
  {
    pattern: /No such container|no container with name or ID/i,
    hint: "the container does not exist: exec: true needs a running container",
  },
  {
    pattern: /is not running|container state improper/,
    hint: "the container is not running: start it first",
  },
  {
    pattern: /chopsticks\/deno: (not found|.*No such file)|exec format error/,
    hint:
      "the image cannot run this deno binary (it needs glibc and the same architecture): use such an image, or give the path of the image's own deno",
    permanent: true,
  },
  ...COMMON_RULES,
];

/**
 * A tunnel to an agent in a container. By default a new container named
 * `name` is made from `image` with `run -i --rm`, the controller's deno
 * binary mounted read-only at {@linkcode DENO_MOUNT}, and removed when the
 * tunnel closes. With `exec: true` the agent runs in the running container
 * `name` instead. `engine: "podman"` uses Podman (see also
 * {@linkcode Podman}).
 *
 * @example A throwaway container
 * ```ts ignore
 * import { Docker } from "@chopsticks/chopsticks";
 * await using box = new Docker("build-1", {
 *   image: "debian:12",
 *   runFlags: ["--network", "none"],
 * });
 * console.log(await box.call(Deno.osRelease));
 * ```
 *
 * @example A container that is already running
 * ```ts ignore
 * import { Docker } from "@chopsticks/chopsticks";
 * await using db = new Docker("db", { exec: true, deno: "upload" });
 * console.log(await db.call(Deno.hostname));
 * ```
 */
export class Docker extends BaseTunnel {
  #engine: string;
  #engineFlags: string[];
  #runFlags: string[];
  #image: string | undefined;
  #rm: boolean;
  #exec: boolean;
  #pull: string | undefined;
  #mount: string | undefined;
  #label = `chopsticks.tunnel=${crypto.randomUUID()}`;
  #started = false;

  /** Makes a tunnel to the container `name`; nothing starts yet. */
  constructor(name: string, options: DockerOptions = {}) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
      throw new TypeError(
        `Cannot make a container tunnel "${name}": names are letters, digits, _ . and -, starting with a letter or digit`,
      );
    }
    const exec = options.exec ?? false;
    if (!exec && !options.image) {
      throw new TypeError(
        `Cannot make a container tunnel "${name}": give an image, or exec: true to use a running container`,
      );
    }
    if (!exec && options.deno === "upload") {
      throw new TypeError(
        `Cannot upload deno into "${name}": a new container forgets it; the controller's deno is mounted there already`,
      );
    }
    const mount = exec || options.deno !== undefined
      ? undefined
      : Deno.realPathSync(Deno.execPath());
    if (mount !== undefined && /[:,]/.test(mount)) {
      throw new TypeError(
        `Cannot mount deno from "${mount}": the path has a : or a comma; pass the deno option`,
      );
    }
    super(
      name,
      mount === undefined ? options : { ...options, deno: DENO_MOUNT },
    );
    this.#engine = options.engine ?? "docker";
    this.#engineFlags = [...(options.engineFlags ?? [])];
    this.#runFlags = [...(options.runFlags ?? [])];
    this.#image = options.image;
    this.#rm = options.rm ?? true;
    this.#exec = exec;
    this.#pull = options.pull;
    this.#mount = mount;
  }

  /** Runs the agent script with `run -i ... image sh -c script` or `exec`. */
  protected spawnSpec(script: string): SpawnSpec {
    const flags = this.#engineFlags;
    if (this.#exec) {
      return {
        command: this.#engine,
        args: [
          ...flags,
          "exec",
          "-i",
          ...this.#runFlags,
          this.host,
          "sh",
          "-c",
          script,
        ],
      };
    }
    this.#started = true;
    return {
      command: this.#engine,
      args: [
        ...flags,
        "run",
        "-i",
        "--name",
        this.host,
        "--label",
        this.#label,
        ...(this.#rm ? ["--rm"] : []),
        ...(this.#mount ? ["-v", `${this.#mount}:${DENO_MOUNT}:ro`] : []),
        ...(this.#pull ? ["--pull", this.#pull] : []),
        ...this.#runFlags,
        this.#image!,
        "sh",
        "-c",
        script,
      ],
    };
  }

  /** A hint shown when connecting fails. */
  protected override get connectHint(): string {
    return `check that ${this.#engine} runs, the image exists and has a POSIX sh`;
  }

  /** Names the likely cause from the engine's own stderr lines. */
  protected override explainConnectError(error: ConnectError): ConnectError {
    return explainWith(error, DOCKER_RULES, this.connectHint);
  }

  /** Never retries a missing image or a name in use. */
  protected override retryable(error: ConnectError): boolean {
    return super.retryable(error) && !isPermanent(error, DOCKER_RULES);
  }

  /**
   * Removes the container this tunnel made, if it is still there (the
   * engine was stopped before it could remove it, say). Only containers
   * with this tunnel's label are touched, never another of the same name.
   */
  protected override async cleanup(): Promise<void> {
    if (!this.#rm || !this.#started) return;
    this.#started = false;
    const ids = await this.#engineOutput([
      "ps",
      "-aq",
      "--filter",
      `label=${this.#label}`,
    ]);
    const list = ids.split("\n").filter((id) => id.trim() !== "");
    if (list.length > 0) await this.#engineOutput(["rm", "-f", ...list]);
  }

  async #engineOutput(args: string[]): Promise<string> {
    try {
      const out = await new Deno.Command(this.#engine, {
        args: [...this.#engineFlags, ...args],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
      return new TextDecoder().decode(out.stdout);
    } catch {
      return "";
    }
  }
}

/**
 * A {@linkcode Docker} tunnel that uses Podman: `new Podman(name, options)`
 * is `new Docker(name, { ...options, engine: "podman" })`.
 *
 * @example
 * ```ts ignore
 * import { Podman } from "@chopsticks/chopsticks";
 * await using box = new Podman("box", { image: "debian:12" });
 * console.log(await box.call(Deno.hostname));
 * ```
 */
export class Podman extends Docker {
  /** Makes a tunnel to the Podman container `name`. */
  constructor(name: string, options: Omit<DockerOptions, "engine"> = {}) {
    super(name, { ...options, engine: "podman" });
  }
}
