import assert from "node:assert/strict";
import { envLine } from "./_agent_script.ts";

Deno.test("envLine() quotes values and refuses names the agent script uses", () => {
  assert.equal(envLine({}), ":");
  assert.equal(envLine({ A: "it's" }), `export A='it'\\''s'`);
  for (const name of ["_d", "_rc", "_D", "IFS"]) {
    assert.throws(
      () => envLine({ [name]: "/tmp/x" }),
      /the agent script uses that name/,
      name,
    );
  }
  assert.equal(
    envLine({ d: "x", X: "z", _1: "w", _abc: "y" }),
    `export d='x' X='z' _1='w' _abc='y'`,
  );
  assert.throws(() => envLine({ "A-B": "x" }), /letters, digits and _/);
  assert.throws(() => envLine({ A: "a\nb" }), /newline/);
});
