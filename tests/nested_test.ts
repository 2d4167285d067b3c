import assert from "node:assert/strict";
import { Local, RemoteError } from "../mod.ts";
import { capture } from "./_conformance.ts";
import { chain, viaInner, viaSsh } from "./fixtures/nested.ts";
import { hosts, hostTest } from "./_hosts.ts";
import { CHECKOUT, LOCAL_PACKAGE, runProject } from "./_project.ts";

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

/**
 * A user's project that links this checkout and a local JSR package (see
 * `LOCAL_PACKAGE`), as the README sets one up: a function on a Local agent
 * opens a tunnel of its own (Local, or to `sshHost`), whose agent imports
 * the library by its name and a subpath of it, and the local package.
 */
function nestedLinked(sshHost?: string): Promise<unknown> {
  return runProject({
    ...LOCAL_PACKAGE,
    "project/deno.json": {
      imports: {
        "@chopsticks/chopsticks": "jsr:@chopsticks/chopsticks@^0.1.0",
        "@chopsticks-test/local": "jsr:@chopsticks-test/local@^0.3.0",
      },
      links: [CHECKOUT, "../local"],
    },
    "project/nested.ts":
      `import { Local, Tunnel } from "@chopsticks/chopsticks";
import { hostname } from "@chopsticks/chopsticks/facts";
export async function innerWork() {
  const local = await import("@chopsticks-test/local")
    .then((m) => m.describe(7), (e) => "failed: " + e.message);
  return { pid: Deno.pid, facts: hostname() === Deno.hostname(), local };
}
export async function viaInner(host?: string, sshConfig?: string) {
  await using inner = host
    ? new Tunnel(host, { sshArgs: ["-F", sshConfig!], output: () => {} })
    : new Local("inner");
  return { outer: Deno.pid, inner: await inner.call(innerWork) };
}\n`,
    "project/main.ts": `import { Local } from "@chopsticks/chopsticks";
import { viaInner } from "./nested.ts";
await using outer = new Local("outer");
const [host, sshConfig] = Deno.args;
console.log(JSON.stringify(await outer.call(viaInner, host, sshConfig)));\n`,
  }, sshHost ? [sshHost, hosts().ssh.config] : []);
}

function checkNested(result: unknown) {
  const { outer, inner } = result as {
    outer: number;
    inner: { pid: number; facts: boolean; local: string };
  };
  assert.notEqual(inner.pid, outer);
  assert.deepEqual(
    { facts: inner.facts, local: inner.local },
    { facts: true, local: "local: true, extra from src" },
  );
}

Deno.test("in a project that links the library and a local package, an agent's own tunnel loads both, by name, on its agent", async () => {
  checkNested(await nestedLinked());
});

hostTest(
  "an agent's own tunnel to a host with no route loads the linked library and local package of the project",
  async (env) => checkNested(await nestedLinked(env.ssh.multiHosts[0])),
);
