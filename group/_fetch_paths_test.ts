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
    () => fetchPaths("{host}.txt", ["a", "./a"], "/x"),
    /the host name "\.\/a" cannot be put in a local path/,
  );
  assert.throws(() => fetchPaths("", ["a"], "/x"), /template is empty/);
});

Deno.test("fetchPaths() refuses a host name that is not one name in a path", () => {
  // out/../evil.txt was written outside out/.
  for (const host of ["../evil", "a/b", "..", "."]) {
    assert.throws(
      () => fetchPaths("out/{host}.txt", ["ok", host], "/x"),
      (e: Error) =>
        e instanceof TypeError &&
        e.message.includes(
          `the host name ${JSON.stringify(host)} cannot be put in a local path`,
        ),
    );
  }
  // Without {host}, the name is not in the path.
  assert.deepEqual([...fetchPaths("one.txt", ["a/b"], "/x")], [[
    "a/b",
    "one.txt",
  ]]);
});
