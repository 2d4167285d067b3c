import assert from "node:assert/strict";
import {
  checkCount,
  checkMilliseconds,
  checkMode,
  MAX_DELAY,
} from "./_option_checks.ts";

Deno.test("checkMilliseconds() takes 0 to MAX_DELAY and names what it refuses", () => {
  assert.equal(checkMilliseconds("timeout", undefined), undefined);
  assert.equal(checkMilliseconds("timeout", 0), 0);
  assert.equal(checkMilliseconds("timeout", 1.5), 1.5);
  assert.equal(checkMilliseconds("timeout", MAX_DELAY), MAX_DELAY);
  for (const bad of [-1, NaN, Infinity, MAX_DELAY + 1]) {
    assert.throws(() => checkMilliseconds("timeout", bad), RangeError);
  }
  assert.throws(
    () => checkMilliseconds("connectTimeout", "5s"),
    new TypeError(
      'Cannot use connectTimeout "5s": expected a number of milliseconds from 0 to 2147483647',
    ),
  );
  assert.throws(() => checkMilliseconds("timeout", null), TypeError);
});

Deno.test("checkCount() takes whole numbers from 0", () => {
  assert.equal(checkCount("maxDepth", 0), 0);
  assert.equal(checkCount("maxDepth", 3), 3);
  for (const bad of [-1, 0.5, NaN, Infinity]) {
    assert.throws(() => checkCount("maxDepth", bad), RangeError);
  }
  assert.throws(() => checkCount("maxDepth", "2"), TypeError);
});

Deno.test("checkMode() takes permission bits and says to write them in octal", () => {
  assert.equal(checkMode(0), 0);
  assert.equal(checkMode(0o6777), 0o6777);
  for (const bad of [-1, 0o10000, 6.5, 0o7777, 0o1000]) {
    assert.throws(() => checkMode(bad), RangeError);
  }
  assert.throws(() => checkMode("644"), /mode "644": .*such as 0o644/);
});
