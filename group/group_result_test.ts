import assert from "node:assert/strict";
import { ErrorResult } from "./error_result.ts";
import { GroupError } from "./group_error.ts";
import { GroupResult } from "./group_result.ts";
import { RemoteError } from "../errors.ts";

const failure = (host: string, message: string) =>
  new ErrorResult(host, new Error(message));

Deno.test("GroupResult gives successes and failures in order", () => {
  const result = new GroupResult<number>([
    ["b", 2],
    ["a", failure("a", "down")],
    ["c", 0],
  ]);
  assert.equal(result.ok, false);
  assert.equal(result.size, 3);
  assert.deepEqual(result.hosts, ["b", "a", "c"]);
  assert.deepEqual(result.successful(), [["b", 2], ["c", 0]]);
  assert.deepEqual(result.failures().map(([h]) => h), ["a"]);
  assert.equal(result.get("c"), 0);
  assert.deepEqual([...result].map(([h]) => h), ["b", "a", "c"]);
  assert.throws(() => result.values(), GroupError);
});

Deno.test("GroupResult of no hosts is ok and empty", () => {
  const result = new GroupResult<number>();
  assert.equal(result.ok, true);
  assert.deepEqual([...result], []);
  assert.deepEqual(result.values(), new Map());
  assert.equal(result.raiseFailures(), result);
});

Deno.test("GroupResult refuses a host twice", () => {
  assert.throws(
    () => new GroupResult([["a", 1], ["a", 2]]),
    /host "a" appears twice/,
  );
});

Deno.test("GroupResult.raiseFailures() throws a GroupError naming each failed host", () => {
  const result = new GroupResult<number>([
    ["a", failure("a", "disk full")],
    ["b", 1],
    ["c", failure("c", "line one\nline two")],
  ]);

  try {
    result.raiseFailures();
  } catch (e) {
    assert.ok(e instanceof GroupError && e instanceof AggregateError);
    assert.equal(e.name, "GroupError");
    assert.equal(
      e.message,
      "2 of 3 hosts failed:\n  a: Error: disk full\n  c: Error: line one\n    line two",
    );
    assert.deepEqual(e.errors.map((x) => (x as Error).message), [
      "disk full",
      "line one\nline two",
    ]);
  }

  const one = new GroupResult([["solo", failure("solo", "no")]]);
  assert.throws(() => one.raiseFailures(), {
    message: "1 of 1 host failed: solo: Error: no",
  });
});

Deno.test("ErrorResult keeps the remote name and stack and the original error", () => {
  const remote = new RemoteError("web1", {
    name: "NotFound",
    message: "no such file",
    stack: "NotFound: no such file\n    at read (file:///x.ts:1:1)",
  });
  const result = new ErrorResult("web1", remote);
  assert.equal(result.name, "RemoteError");
  assert.equal(result.remoteName, "NotFound");
  assert.match(result.remoteStack!, /x\.ts/);
  assert.equal(result.cause, remote);
  assert.equal(result.toError(), remote);
  assert.equal(String(result), "NotFound: no such file");
  assert.deepEqual(JSON.parse(JSON.stringify(result)), {
    host: "web1",
    name: "RemoteError",
    message: "no such file",
    remoteName: "NotFound",
    remoteStack: remote.remoteStack,
  });
  const odd = new ErrorResult("h", "a string");
  assert.equal(odd.message, "a string");
  assert.equal(odd.remoteName, undefined);
  assert.ok(odd.toError() instanceof Error);
});
