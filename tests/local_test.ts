import assert from "node:assert/strict";
import { Local, RemoteError } from "../mod.ts";
import { conformance } from "./_conformance.ts";
import { filesConformance } from "./_files_conformance.ts";
import { add, badThen, bump, bumped, thenable } from "./fixtures/funcs.ts";

conformance("Local", (options) => new Local("local", options));
filesConformance("Local", (options) => new Local("local", options));

// An agent answers a function that returns at once in the turn its call
// arrived, and waits for one that returns a promise or another thenable.
Deno.test("Local: a result is awaited as `await` would, whether it comes at once or not", async () => {
  await using tun = new Local("local");
  assert.equal(await tun.call(thenable, "settled"), "settled");
  const rejected = await tun.call(thenable, "reject").catch((e) => e);
  assert.ok(rejected instanceof RemoteError, String(rejected));
  assert.equal(rejected.remoteName, "RangeError");
  assert.equal(rejected.message, "the thenable rejected");
  const getter = await tun.call(badThen).catch((e) => e);
  assert.ok(getter instanceof RemoteError, String(getter));
  assert.equal(getter.message, "its then getter threw");
  // What a function that returned at once left to run is done before the
  // next call runs.
  const before = await tun.call(bump);
  assert.equal(await tun.call(bumped), before + 1);
  const sums = await Promise.all(
    Array.from({ length: 300 }, (_, i) => tun.call(add, i, 1)),
  );
  assert.deepEqual(sums, Array.from({ length: 300 }, (_, i) => i + 1));
  assert.equal(await tun.call(add, 2, 2), 4, "the agent still answers");
});
