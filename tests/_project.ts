/**
 * A user's project, as the README sets one up, for tests that run it as
 * its own controller: files written into a temporary directory, and its
 * `main.ts` run there under a stand-in JSR registry.
 *
 * @module
 */
import assert from "node:assert/strict";
import { startJsr } from "./fixtures/registries.ts";

/** This checkout, as a project's `links` names it. */
export const CHECKOUT: string = new URL("..", import.meta.url).pathname
  .replace(/\/$/, "");

/**
 * A local JSR package, never published (JSR, even the stand-in, has no such
 * package), in `local/` beside the project: its `describe` imports an npm
 * package through its own `deno.json` and its `./extra` export by its own
 * name; `localPid` is for calls by reference.
 */
export const LOCAL_PACKAGE: Record<string, unknown> = {
  "local/deno.json": {
    name: "@chopsticks-test/local",
    version: "0.3.0",
    exports: { ".": "./mod.ts", "./extra": "./src/extra.ts" },
    imports: { "is-number": "npm:is-number@7.0.0" },
  },
  "local/mod.ts": `import isNumber from "is-number";
import { extra } from "@chopsticks-test/local/extra";
export function describe(x: unknown): string {
  return "local: " + isNumber(x) + ", " + extra;
}
export function localPid(): number {
  return Deno.pid;
}\n`,
  "local/src/extra.ts": `export const extra: string = "extra from src";\n`,
};

/**
 * Writes `files` (paths under a new temporary directory; objects as
 * JSON), runs `project/main.ts` with `args` in `project/`, and returns what
 * it printed on stdout, parsed as JSON.
 */
export async function runProject(
  files: Record<string, unknown>,
  args: string[] = [],
): Promise<unknown> {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-project-" });
  const jsr = startJsr();
  try {
    for (const [name, content] of Object.entries(files)) {
      const path = `${dir}/${name}`;
      await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), {
        recursive: true,
      });
      await Deno.writeTextFile(
        path,
        typeof content === "string" ? content : JSON.stringify(content),
      );
    }
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", "main.ts", ...args],
      cwd: `${dir}/project`,
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
