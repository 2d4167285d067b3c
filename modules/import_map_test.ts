import assert from "node:assert/strict";
import { agentImportMap, libraryRoots } from "./_import_map.ts";
import { toUrlPath } from "./_paths.ts";

const BASE = "http://127.0.0.1:20000/s3cr3t/";

Deno.test("agentImportMap maps subpaths of npm: and jsr: entries as Deno does a deno.json's, keeping the user's own", () => {
  const library = BASE + "f" + toUrlPath(libraryRoots().library!);
  const { imports, scopes } = JSON.parse(agentImportMap({
    roots: [],
    imports: {
      "preact": "npm:preact@10.24.3",
      "@std/path": "jsr:/@std/path@^1",
      "num": "npm:is-number@7.0.0",
      "num/": "./vendor/num/",
      "dir": "npm:/left-pad@1.3.0/",
      "rel": "./rel.ts",
      "remote": "https://example.com/remote.ts",
      "@chopsticks/chopsticks": "jsr:@chopsticks/chopsticks@^0.1.0",
      "@chopsticks/chopsticks/facts": "./my_facts.ts",
      "tunnel": "jsr:@chopsticks/chopsticks@^0.1.0/tunnel",
    },
    scopes: { "./s/": { "hooks": "npm:preact@10.24.3/hooks" } },
    configDir: "/p",
  }, BASE));
  assert.equal(imports["preact/"], "npm:/preact@10.24.3/");
  assert.equal(imports["@std/path/"], "jsr:/@std/path@^1/");
  assert.equal(imports["num/"], BASE + "f/p/vendor/num/");
  for (const key of ["dir/", "rel/", "remote/", "tunnel/"]) {
    assert.ok(!(key in imports), `${key} was added`);
  }
  // The library, served from its files: each export, no prefix.
  assert.equal(imports["@chopsticks/chopsticks"], library + "/mod.ts");
  assert.equal(
    imports["@chopsticks/chopsticks/group"],
    library + "/group/mod.ts",
  );
  assert.equal(
    imports["@chopsticks/chopsticks/facts"],
    BASE + "f/p/my_facts.ts",
  );
  assert.ok(!("@chopsticks/chopsticks/" in imports));
  assert.deepEqual(scopes[BASE + "f/p/s/"], {
    "hooks": "npm:preact@10.24.3/hooks",
    "hooks/": "npm:/preact@10.24.3/hooks/",
  });
});
