/**
 * Core benchmark (issue: a Local tunnel end to end). Everything is measured
 * in this one run and reported as medians and ratios against a baseline:
 *
 * - connect plus first call (and close), against a bare `deno run` of an
 *   empty module (its whole life too); the time until the first result is
 *   printed beside it, and so is the floor of this design
 *   (`bench/_floor.ts`: `deno run` with a loopback listener, one module
 *   imported through it over the pipe, one call);
 * - one sequential call after that, against the round trip of a Deno echo
 *   child behind the same plumbing as an agent (`bench/_echo.ts`): the
 *   median of 18,000 calls, each timed (as the echo's round trips are), and
 *   their mean beside it;
 * - calls per second with 1,000 in flight on one tunnel.
 *
 *     deno task bench
 *
 * @module
 */
import { Local } from "../mod.ts";
import { add } from "./_target.ts";
import { median } from "./_measure.ts";
import { floorCall } from "./_floor.ts";
import { echoRoundTripUs } from "./_echo.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 15);
const empty = "data:application/javascript;base64," + btoa("0");
const target = new URL("./_target.ts", import.meta.url);

// The three start-ups in turn, round by round, so that a busy moment of
// this shared machine falls on all of them.
const bare: number[] = [];
const floor: number[] = [];
const connect: number[] = [];
// The first result alone is noted too (the close takes a few ms more).
const firstResult: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  let start = performance.now();
  await new Deno.Command(Deno.execPath(), { args: ["run", "-q", empty] })
    .output();
  bare.push(performance.now() - start);
  start = performance.now();
  const sum = await floorCall(target, "add", [1, 2]);
  floor.push(performance.now() - start);
  if (sum !== 3) throw new Error(`the floor agent answered ${sum}, not 3`);
  // The whole life of an agent, as the baseline's: start, first call, close.
  start = performance.now();
  {
    await using tun = new Local("bench");
    await tun.call(add, 1, 2);
    firstResult.push(performance.now() - start);
  }
  connect.push(performance.now() - start);
}
const bareMs = median(bare);
const connectMs = median(connect);
const floorMs = median(floor);

await using tun = new Local("bench");
await tun.call(add, 1, 2);
for (let i = 0; i < 2000; i++) await tun.call(add, i, 1);
const seq: number[] = [];
const seqStart = performance.now();
for (let i = 0; i < 18_000; i++) {
  const start = performance.now();
  await tun.call(add, i, 1);
  seq.push((performance.now() - start) * 1000);
}
const callUs = median(seq);
const callMeanUs = (performance.now() - seqStart) * 1000 / seq.length;
const echoUs = await echoRoundTripUs(5000);

const rates: number[] = [];
for (let r = 0; r < 9; r++) {
  const n = 1000;
  const start = performance.now();
  const all = [];
  for (let i = 0; i < n; i++) all.push(tun.call(add, i, 1));
  await Promise.all(all);
  rates.push(n / ((performance.now() - start) / 1000));
}
const rate = median(rates);

console.log(`| measure (median) | chopsticks | baseline | ratio | target |
|---|---|---|---|---|
| connect + first call | ${connectMs.toFixed(1)} ms | bare deno run ${
  bareMs.toFixed(1)
} ms | ${(connectMs / bareMs).toFixed(2)}x | <= 1.5x |
| (of which until the first result) | ${
  median(firstResult).toFixed(1)
} ms | - | - | - |
| (the design's floor: bench/_floor.ts) | ${floorMs.toFixed(1)} ms | - | ${
  (floorMs / bareMs).toFixed(2)
}x | - |
| one call, sequential | ${
  callUs.toFixed(0)
} us | echo round trip, same plumbing ${echoUs.toFixed(0)} us | ${
  (callUs / echoUs).toFixed(2)
}x | <= 100 us |
| (their mean) | ${callMeanUs.toFixed(0)} us | - | - | - |
| calls/s, 1,000 in flight | ${
  Math.round(rate).toLocaleString("en")
} | - | - | >= 100,000 |`);
