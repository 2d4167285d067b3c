import assert from "node:assert/strict";
import { checkConcurrency, limiter } from "./_limiter.ts";

Deno.test("limiter() runs at most N tasks at once, in order", async () => {
  const limit = limiter(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  await Promise.all(
    [0, 1, 2, 3, 4].map((i) =>
      limit(async () => {
        started.push(i);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 10));
        running--;
      })
    ),
  );
  assert.equal(most, 2);
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
});

Deno.test("limiter() frees a slot when a task throws", async () => {
  const limit = limiter(1);
  await assert.rejects(() => limit(() => Promise.reject(new Error("x"))));
  assert.equal(await limit(() => Promise.resolve(5)), 5);
});

Deno.test("checkConcurrency() refuses bad values", () => {
  assert.equal(checkConcurrency(undefined), Infinity);
  assert.equal(checkConcurrency(3), 3);
  assert.equal(checkConcurrency(Infinity), Infinity);
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => checkConcurrency(bad), RangeError);
  }
  assert.throws(
    () => checkConcurrency("3"),
    /Cannot use concurrency "3": expected a whole number, 1 or more/,
  );
});
