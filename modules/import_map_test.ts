import assert from "node:assert/strict";
import { agentImportMap, currentProject, libraryRoots } from "./_import_map.ts";
import { toUrlPath } from "./_paths.ts";

const BASE = "http://127.0.0.1:20000/s3cr3t/";

/**
 * The agent's import map for a project whose `deno.json` is `config`.
 * Deno resolves `jsr:@chopsticks/chopsticks` to this checkout here (its
 * workspace), as it does in a project that links it.
 */
async function mapOf(config: unknown) {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-map-" });
  try {
    await Deno.writeTextFile(`${dir}/deno.json`, JSON.stringify(config));
    const project = await currentProject(dir);
    return { dir, ...JSON.parse(agentImportMap(project, BASE)) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("agentImportMap maps subpaths of npm: and jsr: entries as Deno does a deno.json's, keeping the user's own", async () => {
  const { dir, imports, scopes } = await mapOf({
    imports: {
      "preact": "npm:preact@10.24.3",
      "@std/path": "jsr:/@std/path@^1",
      "num": "npm:is-number@7.0.0",
      "num/": "./vendor/num/",
      "dir": "npm:/left-pad@1.3.0/",
      "rel": "./rel.ts",
      "remote": "https://example.com/remote.ts",
    },
    scopes: { "./s/": { "hooks": "npm:preact@10.24.3/hooks" } },
  });
  const project = BASE + "f" + toUrlPath(dir);
  assert.equal(imports["preact/"], "npm:/preact@10.24.3/");
  assert.equal(imports["@std/path/"], "jsr:/@std/path@^1/");
  assert.equal(imports["num/"], project + "/vendor/num/");
  assert.equal(imports["rel"], project + "/rel.ts");
  for (const key of ["dir/", "rel/", "remote/"]) {
    assert.ok(!(key in imports), `${key} was added`);
  }
  assert.deepEqual(scopes[project + "/s/"], {
    "hooks": "npm:preact@10.24.3/hooks",
    "hooks/": "npm:/preact@10.24.3/hooks/",
  });
});

Deno.test("a local package's jsr: targets map to the files Deno resolves them to, each export of its name, and its own imports in its scope", async () => {
  const library = BASE + "f" + toUrlPath(libraryRoots().library!);
  const { dir, imports, scopes } = await mapOf({
    imports: {
      "@chopsticks/chopsticks": "jsr:@chopsticks/chopsticks@^0.1.0",
      "@chopsticks/chopsticks/facts": "./my_facts.ts",
      "tunnel": "jsr:@chopsticks/chopsticks@^0.1.0/tunnel",
      "cs/": "jsr:/@chopsticks/chopsticks@^0.1.0/",
      // Deno takes a version the package does not have from JSR.
      "old": "jsr:@chopsticks/chopsticks@^0.0.1",
    },
  });
  assert.equal(imports["@chopsticks/chopsticks"], library + "/mod.ts");
  assert.equal(
    imports["@chopsticks/chopsticks/group"],
    library + "/group/mod.ts",
  );
  assert.equal(
    imports["@chopsticks/chopsticks/facts"],
    BASE + "f" + toUrlPath(dir) + "/my_facts.ts",
  );
  assert.ok(!("@chopsticks/chopsticks/" in imports));
  assert.equal(imports["tunnel"], library + "/tunnel/mod.ts");
  assert.ok(!("tunnel/" in imports));
  // A prefix: each export under it, not the prefix (JSR has no package).
  assert.equal(imports["cs/facts"], library + "/facts.ts");
  assert.ok(!("cs/" in imports));
  assert.equal(imports["old"], "jsr:@chopsticks/chopsticks@^0.0.1");
  assert.equal(imports["old/"], "jsr:/@chopsticks/chopsticks@^0.0.1/");
  // The library's modules get its own imports, msgpack from its files.
  const own = scopes[library + "/"];
  assert.match(own["@msgpack/msgpack"], /^http:.*\/dist\.esm\/index\.mjs$/);
  assert.equal(own["@chopsticks/chopsticks/errors"], library + "/errors.ts");
});

Deno.test("a subpath a local package does not export maps to a module that throws Deno's error", async () => {
  const { imports } = await mapOf({
    imports: { "x": "jsr:@chopsticks/chopsticks@^0.1.0/nope" },
  });
  assert.match(imports["x"], /^data:text\/javascript,/);
  const error = await import(imports["x"]).catch((e) => e);
  assert.ok(error instanceof TypeError, String(error));
  let expected = "";
  try {
    import.meta.resolve("jsr:@chopsticks/chopsticks@^0.1.0/nope");
  } catch (e) {
    expected = (e as Error).message;
  }
  assert.match(expected, /Unknown export '\.\/nope'/);
  assert.equal(error.message, expected);
});
