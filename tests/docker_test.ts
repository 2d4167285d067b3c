import assert from "node:assert/strict";
import {
  ConnectError,
  ConnectionLostError,
  DENO_MOUNT,
  Docker,
  type DockerOptions,
  type TunnelOptions,
} from "../mod.ts";
import { add, pid, spin } from "./fixtures/funcs.ts";
import { conformance } from "./_conformance.ts";
import { filesConformance } from "./_files_conformance.ts";
import {
  hosts,
  hostTest,
  sh,
  skipReason,
  sleepingContainer,
  startContainer,
} from "./_hosts.ts";

let count = 0;

/** A new-container tunnel on the test dockerd, with a fresh name. */
export function docker(options: DockerOptions = {}): Docker {
  const env = hosts().docker;
  return new Docker(`chop-test-${Deno.pid}-${count++}`, {
    image: env.image,
    engineFlags: env.globalFlags,
    runFlags: [...env.runFlags, ...env.networkFlags],
    pull: "never",
    ...options,
  });
}

conformance("Docker", docker, { ignore: skipReason() });

// The files suite reopens tunnels and expects what an earlier agent left,
// so it runs in exec mode, in one container that lives for the whole file
// (in run mode each agent gets a new container).
const keep = startContainer("docker", DENO_MOUNT);
if (keep) {
  filesConformance(
    "Docker exec",
    (options?: TunnelOptions) =>
      new Docker(keep, {
        exec: true,
        deno: DENO_MOUNT,
        engineFlags: hosts().docker.globalFlags,
        ...options,
      }),
  );
}

hostTest(
  "Docker: an image without deno runs the controller's deno, mounted read-only",
  async (env) => {
    await using box = docker();
    assert.equal(await box.call(Deno.execPath), "/opt/chopsticks/deno");
    assert.equal(await box.call(Deno.hostname), await box.call(Deno.hostname));
    const write = await box.call(
      Deno.writeFile,
      "/opt/chopsticks/deno",
      new Uint8Array(1),
    )
      .catch((e) => e);
    assert.match(String(write), /Read-only file system/);
    const ps = await sh("docker", [
      ...env.docker.globalFlags,
      "ps",
      "--format",
      "{{.Names}}",
    ]);
    assert.ok(ps.stdout.split("\n").includes(box.host), ps.stdout);
  },
);

hostTest(
  "Docker: exec: true runs the agent in a running container",
  async (env) => {
    const name = `chop-test-exec-${Deno.pid}`;
    const flags = env.docker.globalFlags;
    await sleepingContainer(env, name, { deno: true });
    try {
      await using box = new Docker(name, { exec: true, engineFlags: flags });
      assert.equal(await box.call(add, 2, 2), 4);
      const first = await box.call(pid);
      await box.close();
      assert.notEqual(await box.call(pid), first, "a fresh agent after close");
      await box.close();
      const ps = await sh("docker", [...flags, "ps", "--format", "{{.Names}}"]);
      assert.ok(
        ps.stdout.split("\n").includes(name),
        "the container still runs",
      );
    } finally {
      await sh("docker", [...flags, "rm", "-f", name]);
    }
  },
);

hostTest(
  "Docker: the next call after a lost connection starts a fresh container",
  async (env) => {
    // The liveness check gives up on an agent that blocks its event loop;
    // its container ran on under the name the next one takes, and the next
    // call failed with "already in use", for good.
    await using box = docker({
      output: () => {},
      liveness: { interval: 300, timeout: 2_000 },
    });
    // (A container's hostname is its id: pids repeat in a fresh one.)
    const first = await box.call(Deno.hostname);
    const lost = await box.call(spin, 30_000).then(() => undefined, (e) => e);
    assert.ok(lost instanceof ConnectionLostError, String(lost));
    assert.equal(await box.call(add, 2, 3), 5);
    assert.notEqual(await box.call(Deno.hostname), first);
    const ps = await sh("docker", [
      ...env.docker.globalFlags,
      "ps",
      "-a",
      "--format",
      "{{.Names}}",
    ]);
    assert.equal(
      ps.stdout.split("\n").filter((n) => n === box.host).length,
      1,
      ps.stdout,
    );
  },
);

hostTest("Docker: rm: false keeps the stopped container", async (env) => {
  const box = docker({ rm: false });
  try {
    assert.equal(await box.call(add, 1, 1), 2);
    await box.close();
    const ps = await sh("docker", [
      ...env.docker.globalFlags,
      "ps",
      "-a",
      "--filter",
      `name=^${box.host}$`,
      "--format",
      "{{.Status}}",
    ]);
    assert.match(ps.stdout, /Exited/);
  } finally {
    await sh("docker", [...env.docker.globalFlags, "rm", "-f", box.host]);
  }
});

hostTest(
  'Docker: exec into a container without deno works with deno: "upload"',
  async (env) => {
    const name = `chop-test-upload-${Deno.pid}`;
    const flags = env.docker.globalFlags;
    await sleepingContainer(env, name);
    try {
      const quiet = { exec: true, engineFlags: flags, output: () => {} };
      const missing = await new Docker(name, quiet).connect().catch((e) => e);
      assert.ok(missing instanceof ConnectError, String(missing));
      assert.match(missing.message, /deno not found/);
      assert.match(missing.message, /deno: "upload"/);

      const lines: string[] = [];
      await using box = new Docker(name, {
        ...quiet,
        deno: "upload",
        output: (line) => lines.push(line),
      });
      const path = await box.call(Deno.execPath);
      assert.match(
        path,
        /^\/root\/\.cache\/chopsticks\/deno-[\d.]+-[0-9a-f]{16}$/,
      );
      assert.ok(lines.some((l) => l.startsWith("chopsticks: uploaded deno")));
      await box.close();
      lines.length = 0;
      assert.equal(await box.call(Deno.execPath), path);
      assert.deepEqual(
        lines,
        [],
        "the second connection reuses the cached deno",
      );
    } finally {
      await sh("docker", [...flags, "rm", "-f", name]);
    }
  },
);
