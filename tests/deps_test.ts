/**
 * Dependencies without internet on the target: npm, JSR and http modules
 * reach agents only through their tunnel, and a target keeps a cache.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startJsr, startModules } from "./fixtures/registries.ts";
import { hosts, hostTest } from "./_hosts.ts";
import { CHECKOUT, LOCAL_PACKAGE, runProject } from "./_project.ts";

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
function subpaths(sshHost?: string): Promise<unknown> {
  return runProject({
    "project/deno.json": {
      imports: {
        "@chopsticks/chopsticks": "jsr:@chopsticks/chopsticks@^0.1.0",
        "is-number": "npm:is-number@7.0.0",
        "@chopsticks-test/greet": "jsr:@chopsticks-test/greet@1.0.0",
        // The user's own "num/" stays: Deno adds no prefix of its own.
        "num": "npm:is-number@7.0.0",
        "num/": "./num/",
      },
      scopes: { "./scoped/": { "n": "npm:is-number@7.0.0" } },
      links: [CHECKOUT],
    },
    "project/num/own.ts": `export const own = "the project's num/";\n`,
    "project/scoped/mod.ts": `import isNumber from "n/index.js";
export const scoped: boolean = isNumber("7");\n`,
    "project/subpaths.ts":
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
    "project/main.ts": `import { Local, Tunnel } from "@chopsticks/chopsticks";
import { subpaths } from "./subpaths.ts";
const [host, sshConfig] = Deno.args;
await using tun = host
  ? new Tunnel(host, { sshArgs: ["-F", sshConfig] })
  : new Local("subpaths");
console.log(JSON.stringify([await subpaths(), await tun.call(subpaths)]));\n`,
  }, sshHost ? [sshHost, hosts().ssh.config] : []);
}

function checkSubpaths(results: unknown) {
  const [controller, agent] = results as unknown[];
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

/**
 * A project that links local JSR packages, as Deno lets one (`links`):
 * this checkout, a package never published (`LOCAL_PACKAGE`), and one of a
 * version the project's import does not accept (Deno takes that one from
 * JSR, with a warning). An import map entry names a subpath the library
 * does not export. Runs `linked` on the controller and on an agent, and
 * calls a function of the local package by reference.
 */
function linked(sshHost?: string): Promise<unknown> {
  return runProject({
    ...LOCAL_PACKAGE,
    "greet9/deno.json": {
      name: "@chopsticks-test/greet",
      version: "9.0.0",
      exports: "./mod.ts",
    },
    "greet9/mod.ts": `export const greet = () => "the linked greet 9";\n`,
    "project/deno.json": {
      imports: {
        "@chopsticks/chopsticks": "jsr:@chopsticks/chopsticks@^0.1.0",
        "@chopsticks-test/local": "jsr:@chopsticks-test/local@^0.3.0",
        "@chopsticks-test/greet": "jsr:@chopsticks-test/greet@1.0.0",
        "nope": "jsr:@chopsticks/chopsticks@^0.1.0/nope",
      },
      links: [CHECKOUT, "../local", "../greet9"],
    },
    "project/linked.ts":
      `const failed = (e: Error) => "failed: " + e.message.split("\\n")[0];
export async function linked() {
  return {
    local: await import("@chopsticks-test/local")
      .then((m) => m.describe(5), failed),
    extra: await import("@chopsticks-test/local/extra")
      .then((m) => m.extra, failed),
    greet: await import("@chopsticks-test/greet")
      .then((m) => m.greet("you"), failed),
    nope: await import("nope").then(() => "loaded", failed),
  };
}\n`,
    "project/main.ts": `import { Local, Tunnel } from "@chopsticks/chopsticks";
import { localPid } from "@chopsticks-test/local";
import { linked } from "./linked.ts";
const [host, sshConfig] = Deno.args;
await using tun = host
  ? new Tunnel(host, { sshArgs: ["-F", sshConfig] })
  : new Local("linked");
const pid = await tun.call(localPid).catch((e) => e.message);
console.log(JSON.stringify([await linked(), await tun.call(linked), pid]));\n`,
  }, sshHost ? [sshHost, hosts().ssh.config] : []);
}

function checkLinked(results: unknown) {
  const [controller, agent, pid] = results as unknown[];
  assert.deepEqual(controller, {
    local: "local: true, extra from src",
    extra: "extra from src",
    greet: "jsr says hello to you",
    nope: "failed: Unknown export './nope' for '@chopsticks/chopsticks'.",
  });
  assert.deepEqual(agent, controller);
  assert.equal(typeof pid, "number", String(pid));
}

Deno.test("a project's linked local JSR packages resolve on a Local agent as on the controller, from their directories", async () => {
  checkLinked(await linked());
});

hostTest(
  "deps: a project's linked local JSR packages resolve on a host with no route anywhere",
  async () => checkLinked(await linked("h1")),
);
