import assert from "node:assert/strict";
import { parseInventory } from "./inventory.ts";
import { UsageError } from "./usage_error.ts";

const text = await Deno.readTextFile(
  new URL("../tests/fixtures/inventory.json", import.meta.url),
);

Deno.test("parseInventory() reads a plain list", () => {
  assert.deepEqual(parseInventory('["a", "b"]'), ["a", "b"]);
});

Deno.test("parseInventory() picks a group, or every host once", () => {
  assert.deepEqual(parseInventory(text, "web"), ["web1", "web2"]);
  assert.deepEqual(parseInventory(text, "db"), ["db1", "web1"]);
  assert.deepEqual(parseInventory(text), ["solo", "web1", "web2", "db1"]);
});

Deno.test("parseInventory() refuses bad files with a UsageError naming the problem", () => {
  const cases: [string, string | undefined, RegExp][] = [
    ["{", undefined, /not valid JSON/],
    ["42", undefined, /not an object/],
    ['[1, "a"]', undefined, /the list is not a list of host names/],
    ['{ "groups": { "web": "a" } }', undefined, /group "web" is not a list/],
    ['{ "servers": [] }', undefined, /unknown key "servers"/],
    [text, "cache", /no such group \(groups: "web", "db"\)/],
    ['["a"]', "web", /plain list with no groups/],
  ];
  for (const [input, group, message] of cases) {
    assert.throws(
      () => parseInventory(input, group, "hosts.json"),
      (e: Error) => e instanceof UsageError && message.test(e.message),
      input,
    );
  }
});
