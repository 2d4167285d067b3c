/**
 * Module bytes sent to agents (issue: dependencies through the controller).
 * Runs `tests/fixtures/deps_controller.ts` against a test JSR registry and
 * an http module server: a module importing an npm package, a JSR package
 * and an http module is called on three fresh agents, the module edited
 * before the third. Prints the bytes of module source each agent was sent.
 *
 *     deno run -A bench/deps.ts [ssh host alias of the test hosts]
 *
 * @module
 */
import { startJsr, startModules } from "../tests/fixtures/registries.ts";

const jsr = startJsr();
const modules = startModules();
try {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-lock",
      new URL("../tests/fixtures/deps_controller.ts", import.meta.url).pathname,
      modules.url,
      ...Deno.args,
    ],
    env: { JSR_URL: jsr.url },
    stderr: "null",
  }).output();
  const { runs } = JSON.parse(new TextDecoder().decode(out.stdout));
  const [first, second, third] = runs.map((r: { moduleBytes: number }) =>
    r.moduleBytes
  );
  console.log(
    `| agent on ${Deno.args[0] ?? "Local"} | module bytes sent | vs first |
|---|---|---|
| first (cold cache) | ${first} | 100% |
| second (nothing changed) | ${second} | ${(100 * second / first).toFixed(1)}% |
| third (one module edited) | ${third} | ${
      (100 * third / first).toFixed(1)
    }% |`,
  );
} finally {
  await jsr.close();
  await modules.close();
}
