/**
 * Dependencies without internet on the target: npm, JSR and http modules
 * reach agents only through their tunnel, and a target keeps a cache.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startJsr, startModules } from "./fixtures/registries.ts";
import { hostTest } from "./_hosts.ts";

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
