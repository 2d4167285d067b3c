import assert from "node:assert/strict";
import { type CallStorage, callStorage, nodeStorage } from "./_call_storage.ts";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function followsAsyncWork(
  storage: CallStorage<AbortSignal>,
): Promise<void> {
  const a = new AbortController().signal;
  const b = new AbortController().signal;
  const seen: [string, AbortSignal | undefined][] = [];
  const work = (name: string, signal: AbortSignal, ms: number) =>
    storage.run(signal, async () => {
      await tick(ms);
      seen.push([`${name} after a timer`, storage.get()]);
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          seen.push([`${name} in a timer callback`, storage.get()]);
          resolve();
        }, 1)
      );
      queueMicrotask(() =>
        seen.push([`${name} in a microtask`, storage.get()])
      );
      await null;
    });
  await Promise.all([work("a", a, 20), work("b", b, 5)]);
  assert.equal(seen.length, 6);
  for (const [what, signal] of seen) {
    assert.equal(signal, what.startsWith("a") ? a : b, what);
  }
  assert.equal(storage.get(), undefined, "outside run()");
}

Deno.test("callStorage() keeps each call's signal through timers, callbacks and microtasks", async () => {
  await followsAsyncWork(callStorage());
});

Deno.test("callStorage() uses Deno core's async variable here, not node:async_hooks", () => {
  assert.equal(
    callStorage().kind,
    "core",
    "this Deno lacks core.AsyncVariable: agents fall back to node:async_hooks",
  );
  assert.equal(nodeStorage().kind, "node");
});

Deno.test("nodeStorage() (the fallback) keeps each call's signal too", async () => {
  await followsAsyncWork(nodeStorage());
});
