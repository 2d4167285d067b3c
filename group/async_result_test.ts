import assert from "node:assert/strict";
import { AsyncResult } from "./async_result.ts";

Deno.test("AsyncResult.value throws until set; withCallback runs once set, or at once", () => {
  let set!: (value: string) => void;
  const result = new AsyncResult<string>((s) => set = s);
  assert.equal(result.done, false);
  assert.throws(() => result.value, /not set yet/);
  const seen: string[] = [];
  assert.equal(result.withCallback((v) => seen.push(`1:${v}`)), result);
  result.withCallback((v) => seen.push(`2:${v}`));
  assert.equal(seen.length, 0);
  set("x");
  assert.deepEqual(seen, ["1:x", "2:x"]);
  assert.equal(result.value, "x");
  assert.equal(result.done, true);
  result.withCallback((v) => seen.push(`3:${v}`));
  assert.deepEqual(seen, ["1:x", "2:x", "3:x"], "at once when already set");
  assert.throws(() => set("y"), /twice/);
  assert.equal(result.value, "x");
});

Deno.test("AsyncResult runs every callback when one throws, then throws its error", () => {
  let set!: (value: number) => void;
  const result = new AsyncResult<number>((s) => set = s);
  const seen: number[] = [];
  result.withCallback(() => {
    throw new Error("first");
  });
  result.withCallback((v) => seen.push(v));
  assert.throws(() => set(1), /first/);
  assert.deepEqual(seen, [1]);
  assert.equal(result.value, 1);
});
