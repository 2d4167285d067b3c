import assert from "node:assert/strict";
import { Local, RemoteError } from "../mod.ts";
import { capture } from "./_conformance.ts";
import { chain, viaInner, viaSsh } from "./fixtures/nested.ts";
import { hostTest } from "./_hosts.ts";

Deno.test("a function on an agent opens a tunnel of its own, with stacked output prefixes", async () => {
  const { lines, options } = capture();
  await using outer = new Local("outer", options);
  const { outer: outerPid, inner } = await outer.call(viaInner, "inner");
  assert.notEqual(outerPid, Deno.pid);
  assert.notEqual(inner, outerPid);
  assert.ok(
    lines.includes("[inner] inner says hi"),
    `the inner line reaches the controller through the outer agent: ${lines}`,
  );
});

Deno.test("nesting deeper than the limit is refused with the path", async () => {
  await using tun = new Local("a");
  const pids = await tun.call(chain, ["b"]);
  assert.equal(new Set(pids).size, 2, "two levels work");
  const error = await tun.call(chain, ["b", "c"]).catch((e) => e);
  assert.ok(error instanceof RemoteError, String(error));
  assert.match(error.message, /localhost -> a -> b -> c/);
  assert.match(error.message, /at most 2 deep/);
  assert.match(error.message, /raise maxDepth to allow it/);
  assert.doesNotMatch(error.message, /import\.meta\.main/);
});

Deno.test("a script that opens its tunnel in unguarded top-level code is told to guard it", async () => {
  const script = new URL("./fixtures/unguarded.ts", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script.pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.success, false, "the script fails");
  assert.match(stderr, /again -> again -> again/);
  assert.match(stderr, /under `if \(import\.meta\.main\)`/);
});

hostTest(
  "an agent's own tunnel to another host loads npm packages through it, with a cold cache there",
  async (env) => {
    // The inner agent is in another network namespace: what the outer agent
    // serves on its loopback port is out of its reach.
    const host = env.ssh.multiHosts[0];
    const cache = `/tmp/chopsticks-nested-${crypto.randomUUID()}`;
    try {
      await using outer = new Local("outer", capture().options);
      for (let i = 0; i < 2; i++) {
        const pid = await outer.call(
          viaSsh,
          host,
          ["-F", env.ssh.config],
          cache,
        );
        assert.equal(typeof pid, "number");
      }
    } finally {
      // The test hosts share this machine's file system.
      await Deno.remove(cache, { recursive: true }).catch(() => {});
    }
  },
);
