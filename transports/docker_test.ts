import assert from "node:assert/strict";
import { ConnectError } from "../errors.ts";
import { DENO_MOUNT, Docker, type DockerOptions, Podman } from "./docker.ts";
import { Sudo } from "./sudo.ts";

/** Exposes what a Docker tunnel would run. */
class Probe extends Docker {
  spec(script: string) {
    return this.spawnSpec(script);
  }
  explain(tail: string[]): string {
    return this.explainConnectError(
      new ConnectError(
        this.host,
        "transport",
        `Cannot connect to "box": docker exited with code 125: ${
          tail.at(-1)
        }; ${this.connectHint}`,
        { stderrTail: tail },
      ),
    ).message;
  }
}

const probe = (options: DockerOptions) => new Probe("box", options);

Deno.test("Docker runs a new container with the controller's deno mounted read-only", () => {
  const { command, args } = probe({
    image: "debian:12",
    engineFlags: ["-H", "unix:///s.sock"],
    runFlags: ["--network", "none"],
    pull: "never",
  }).spec("echo hi");
  assert.equal(command, "docker");
  const deno = Deno.realPathSync(Deno.execPath());
  assert.deepEqual(args.slice(0, 6), [
    "-H",
    "unix:///s.sock",
    "run",
    "-i",
    "--name",
    "box",
  ]);
  assert.equal(args[6], "--label");
  assert.match(args[7], /^chopsticks\.tunnel=[0-9a-f-]{36}$/);
  assert.deepEqual(args.slice(8), [
    "--rm",
    "-v",
    `${deno}:${DENO_MOUNT}:ro`,
    "--pull",
    "never",
    "--network",
    "none",
    "debian:12",
    "sh",
    "-c",
    "echo hi",
  ]);
});

Deno.test("Docker leaves out --rm and the mount when asked, and uses podman", () => {
  const { command, args } = new Probe("box", {
    image: "img",
    rm: false,
    deno: "/usr/bin/deno",
    engine: "podman",
  }).spec("true");
  assert.equal(command, "podman");
  assert.ok(!args.includes("--rm") && !args.includes("-v"), String(args));
  const podman = new Podman("box", { image: "img" });
  assert.ok(podman instanceof Docker);
});

Deno.test("Docker with exec: true runs in the running container", () => {
  const { args } = probe({ exec: true, runFlags: ["-u", "app"] }).spec("true");
  assert.deepEqual(args, [
    "exec",
    "-i",
    "-u",
    "app",
    "box",
    "sh",
    "-c",
    "true",
  ]);
});

Deno.test("Docker refuses bad names and missing images before running anything", () => {
  assert.throws(() => new Docker("-it", { image: "x" }), TypeError);
  assert.throws(() => new Docker("a b", { image: "x" }), TypeError);
  assert.throws(() => new Docker("box"), /give an image, or exec: true/);
  assert.throws(
    () => new Docker("box", { image: "x", deno: "upload" }),
    /a new container forgets it/,
  );
});

Deno.test("Docker explains engine failures by their likely cause", () => {
  const p = probe({ image: "x" });
  const junk = ["", "Run 'docker run --help' for more information"];
  assert.match(
    p.explain([
      "docker: Error response from daemon: No such image: x:latest",
      ...junk,
    ]),
    /: docker: Error response from daemon: No such image: x:latest; the image is not there/,
  );
  assert.match(
    p.explain([
      'docker: Error response from daemon: Conflict. The container name "/box" is already in use',
      ...junk,
    ]),
    /choose another name/,
  );
  assert.match(
    p.explain([
      "docker: Cannot connect to the Docker daemon at unix:///x. Is the docker daemon running?",
      ...junk,
    ]),
    /the engine cannot be reached/,
  );
});

Deno.test("Sudo runs sh through sudo -n as the user", () => {
  class SudoProbe extends Sudo {
    spec(script: string) {
      return this.spawnSpec(script);
    }
  }
  const tun = new SudoProbe("www-data");
  assert.equal(tun.host, "sudo:www-data");
  const spec = tun.spec("id");
  assert.equal(spec.command, "sudo");
  assert.deepEqual(spec.args.slice(0, 7), [
    "-n",
    "-H",
    "-u",
    "www-data",
    "--",
    "sh",
    "-c",
  ]);
  assert.match(spec.args[7], /^echo chopsticks-sudo-ok-[0-9a-f]{16} >&2\nid$/);
  assert.equal(spec.preamble?.ready, undefined, "without a password, no wait");
  const [prompt] = new SudoProbe("root", { password: "pw" }).spec("id").args
    .slice(1, 3).filter((a) => a !== "-p");
  assert.match(prompt, /^chopsticks-sudo-prompt-[0-9a-f]{16}\n$/);
  assert.equal(new Sudo().host, "sudo:root");
  assert.throws(() => new Sudo("a b"), TypeError);
});
