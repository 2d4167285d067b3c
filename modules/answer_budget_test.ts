import assert from "node:assert/strict";
import {
  ANSWER_BUDGET,
  answerBytesHeld,
  hold,
  release,
  reserve,
  unreserve,
} from "./_answer_budget.ts";

Deno.test("the answer budget refuses what does not fit, and counts a body shared by many agents once", () => {
  const start = answerBytesHeld();
  const body = new Uint8Array(1000);
  assert.ok(hold(body));
  assert.ok(hold(body), "a body held already always fits");
  assert.equal(answerBytesHeld(), start + 1000);
  release(body);
  assert.equal(answerBytesHeld(), start + 1000, "one agent still holds it");
  release(body);
  assert.equal(answerBytesHeld(), start);
  release(body); // one release too many changes nothing
  assert.equal(answerBytesHeld(), start);
  assert.ok(reserve(ANSWER_BUDGET - start));
  assert.equal(reserve(1), false);
  assert.equal(hold(new Uint8Array(1)), false);
  unreserve(ANSWER_BUDGET - start);
  assert.equal(answerBytesHeld(), start);
});
