import assert from "node:assert/strict";
import { fetchPaths } from "./_fetch_paths.ts";

Deno.test("fetchPaths() puts each host's name in the template", () => {
  assert.deepEqual(
    [...fetchPaths("logs/{host}/app-{host}.log", ["a", "b"], "/var/log/app")],
    [["a", "logs/a/app-a.log"], ["b", "logs/b/app-b.log"]],
  );
  assert.deepEqual([...fetchPaths("one.txt", ["solo"], "/x")], [[
    "solo",
    "one.txt",
  ]]);
});

Deno.test("fetchPaths() refuses two hosts on one file", () => {
  assert.throws(
    () => fetchPaths("same.txt", ["a", "b"], "/x"),
    /hosts "a" and "b" would both write "same.txt"; put \{host\} in the local path/,
  );
  assert.throws(
    () => fetchPaths("{host}", ["a", "./a"], "/x"),
    /"a" and "\.\/a"/,
  );
  assert.throws(() => fetchPaths("", ["a"], "/x"), /template is empty/);
});
