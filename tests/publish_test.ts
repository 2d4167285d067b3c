/**
 * What is published stands on its own: no documentation example of a
 * published file imports a file that the publish settings leave out.
 *
 * @module
 */
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url);

/** The folders `deno.json` "publish.exclude" leaves out, as URLs. */
async function excluded(): Promise<URL[]> {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  );
  return (config.publish?.exclude ?? []).map((p: string) =>
    new URL(p.endsWith("/") ? p : p + "/", root)
  );
}

/** The published TypeScript files: every .ts not excluded, not a test. */
async function* published(dir: URL, skip: URL[]): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.name.startsWith(".")) continue;
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (skip.some((s) => url.href.startsWith(s.href))) continue;
    if (entry.isDirectory) yield* published(url, skip);
    else if (/(?<!_test)\.ts$/.test(entry.name)) yield url;
  }
}

Deno.test("no doc example of a published file imports a file left out of the package", async () => {
  const skip = await excluded();
  const found: string[] = [];
  for await (const file of published(root, skip)) {
    const text = await Deno.readTextFile(file);
    for (const comment of text.match(/\/\*\*[\s\S]*?\*\//g) ?? []) {
      for (
        const [, specifier] of comment.matchAll(/from "(\.{1,2}\/[^"]+)"/g)
      ) {
        const target = new URL(specifier, file);
        if (skip.some((s) => target.href.startsWith(s.href))) {
          found.push(`${file.href.slice(root.href.length)}: ${specifier}`);
        }
      }
    }
  }
  assert.deepEqual(found, []);
});
