/**
 * Dependencies without internet on the target: npm, JSR and http modules
 * reach agents only through their tunnel, and a target keeps a cache.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startJsr, startModules } from "./fixtures/registries.ts";
import { hosts, hostTest } from "./_hosts.ts";

const controller = new URL("./fixtures/deps_controller.ts", import.meta.url)
  .pathname;

async function scenario(sshHost?: string) {
  const jsr = startJsr();
  const modules = startModules();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-lock",
        controller,
        modules.url,
        ...(sshHost ? [sshHost] : []),
      ],
      env: { JSR_URL: jsr.url },
      stderr: "inherit",
    }).output();
    assert.equal(out.code, 0, "the controller failed");
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await jsr.close();
    await modules.close();
  }
}

function check(report: {
  runs: { result: Record<string, unknown>; moduleBytes: number }[];
  broken: string;
  npmLeft: string[];
}) {
  const expected = (version: string) => ({
    isNumber: true,
    greet: "jsr says hello to you",
    dep: "served over http",
    version,
  });
  assert.deepEqual(report.runs.map((r) => r.result), [
    expected("one"),
    expected("one"),
    expected("two"),
  ]);
  const [first, second, third] = report.runs.map((r) => r.moduleBytes);
  assert.ok(first > 10_000, `the first agent got only ${first} bytes`);
  assert.ok(
    second <= first / 10,
    `the second agent got ${second} bytes, more than 10% of ${first}`,
  );
  assert.ok(third > second, "the edited module was sent again");
  assert.match(report.broken, /chopsticks-no-such-package-for-tests/);
  assert.match(report.broken, /imported by file:.*deps_[0-9a-f-]+\.ts:\d+/);
  // Only the running agent's unpacked npm packages are there (at most one
  // directory, under its port): those of the three that ended are gone.
  assert.ok(report.npmLeft.length <= 1, `left: ${report.npmLeft}`);
}

Deno.test("npm, JSR and http dependencies reach a Local agent through the tunnel, cached on the target", async () => {
  check(await scenario());
});

hostTest(
  "deps: npm, JSR and http dependencies reach a host with no route anywhere",
  async () => check(await scenario("h1")),
);

/**
 * A project of a user's, as the README sets one up: its deno.json maps
 * npm and JSR packages and this library (linked to this checkout), and
 * its module imports subpaths of them. Deno gives each such mapping a
 * subpath prefix (`"is-number/"`); a plain import map has none. Runs the
 * module on the controller and on an agent (`sshHost`, or Local) and
 * returns both results.
 */
async function subpaths(sshHost?: string): Promise<unknown[]> {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-subpaths-" });
  const jsr = startJsr();
  try {
    const files: Record<string, unknown> = {
      "deno.json": {
        imports: {
          "@chopsticks/chopsticks": "jsr:@chopsticks/chopsticks@^0.1.0",
          "is-number": "npm:is-number@7.0.0",
          "@chopsticks-test/greet": "jsr:@chopsticks-test/greet@1.0.0",
          // The user's own "num/" stays: Deno adds no prefix of its own.
          "num": "npm:is-number@7.0.0",
          "num/": "./num/",
        },
        scopes: { "./scoped/": { "n": "npm:is-number@7.0.0" } },
        links: [new URL("..", import.meta.url).pathname],
      },
      "num/own.ts": `export const own = "the project's num/";\n`,
      "scoped/mod.ts": `import isNumber from "n/index.js";
export const scoped: boolean = isNumber("7");\n`,
      "subpaths.ts":
        `const failed = (e: Error) => "failed: " + e.message.split("\\n")[0];
export async function subpaths() {
  return {
    library: await import("@chopsticks/chopsticks/facts")
      .then((m) => m.hostname() === Deno.hostname(), failed),
    npm: await import("is-number/index.js").then((m) => m.default(5), failed),
    jsr: await import("@chopsticks-test/greet/shout")
      .then((m) => m.shout("you"), failed),
    own: await import("num/own.ts").then((m) => m.own, failed),
    scoped: await import("./scoped/mod.ts").then((m) => m.scoped, failed),
  };
}\n`,
      "main.ts": `import { Local, Tunnel } from "@chopsticks/chopsticks";
import { subpaths } from "./subpaths.ts";
const [host, sshConfig] = Deno.args;
await using tun = host
  ? new Tunnel(host, { sshArgs: ["-F", sshConfig] })
  : new Local("subpaths");
console.log(JSON.stringify([await subpaths(), await tun.call(subpaths)]));\n`,
    };
    await Deno.mkdir(`${dir}/num`);
    await Deno.mkdir(`${dir}/scoped`);
    for (const [name, content] of Object.entries(files)) {
      await Deno.writeTextFile(
        `${dir}/${name}`,
        typeof content === "string" ? content : JSON.stringify(content),
      );
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--no-lock",
        "main.ts",
        ...(sshHost ? [sshHost, hosts().ssh.config] : []),
      ],
      cwd: dir,
      env: { JSR_URL: jsr.url },
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `the controller failed: ${stderr}`);
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await jsr.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function checkSubpaths([controller, agent]: unknown[]) {
  assert.deepEqual(controller, {
    library: true,
    npm: true,
    jsr: "JSR SHOUTS AT you",
    own: "the project's num/",
    scoped: true,
  });
  assert.deepEqual(agent, controller);
}

Deno.test("subpaths of a project's mapped npm and JSR packages, and of this library linked, resolve on a Local agent as on the controller", async () => {
  checkSubpaths(await subpaths());
});

hostTest(
  "deps: subpaths of mapped npm and JSR packages resolve on a host with no route anywhere",
  async () => checkSubpaths(await subpaths("h1")),
);
