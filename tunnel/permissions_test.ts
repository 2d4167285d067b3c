import assert from "node:assert/strict";
import { permissionFlags, shellQuote } from "./_permissions.ts";

Deno.test("permissionFlags() grants everything by default", () => {
  const flags = permissionFlags(undefined, { write: [`"$d/o"`] });
  assert.ok(flags.includes("--allow-read"));
  assert.ok(flags.includes("--allow-write"), "true is not narrowed");
  assert.equal(flags.length, 8);
});

Deno.test("permissionFlags() gives exactly the set plus the agent's own needs", () => {
  const flags = permissionFlags(
    { read: ["/etc", "/my dir"], net: false },
    { read: [`"$d/i"`], net: ["127.0.0.1:9"], import: ["127.0.0.1:9"] },
  );
  assert.deepEqual(flags, [
    `--allow-read=/etc,'/my dir',"$d/i"`,
    "--allow-net=127.0.0.1:9",
    "--allow-import=127.0.0.1:9",
  ]);
});

Deno.test("permissionFlags() refuses unknown names and bad entries", () => {
  assert.throws(
    () => permissionFlags({ hack: true } as never, {}),
    /Cannot use permission "hack"/,
  );
  assert.throws(() => permissionFlags({ read: ["a,b"] }, {}), RangeError);
  assert.throws(() => permissionFlags({ read: [""] }, {}), RangeError);
  assert.throws(() => permissionFlags({ read: "yes" as never }, {}), TypeError);
});

Deno.test("shellQuote() quotes what a shell would split or expand", () => {
  assert.equal(shellQuote("/usr/bin/deno"), "/usr/bin/deno");
  assert.equal(shellQuote("a b"), "'a b'");
  assert.equal(shellQuote("it's $HOME"), `'it'\\''s $HOME'`);
});
