/**
 * Group benchmark (issue 4), everything in one run, against Python
 * chopsticks' published figures on a like machine:
 *
 * - connect plus first call on 10, 30 and 50 Local hosts (median of rounds);
 * - a warm call on 30 hosts (median of many);
 * - controller memory per connected agent (RSS delta over 30 agents).
 *
 *     deno task bench:group
 *     BENCH_ROUNDS=5 deno run -A bench/group.ts
 *
 * @module
 */
import { Group, Local } from "../mod.ts";
import { add } from "./_target.ts";
import { median } from "./_measure.ts";

const ROUNDS = Number(Deno.env.get("BENCH_ROUNDS") ?? 5);
const WARM_CALLS = Number(Deno.env.get("BENCH_WARM_CALLS") ?? 200);
const quiet = { output: () => {} };

function group(n: number): Group {
  return new Group(
    Array.from({ length: n }, (_, i) => new Local(`h${i + 1}`, quiet)),
  );
}

async function connectAndCall(n: number): Promise<number> {
  const g = group(n);
  try {
    const start = performance.now();
    (await g.call(add, 1, 2)).raiseFailures();
    return performance.now() - start;
  } finally {
    await g.close();
  }
}

// Warm up: load the library's code and the fixture once.
await connectAndCall(2);

// Memory first, before later rounds grow the heap.
const before = Deno.memoryUsage().rss;
const memGroup = group(30);
(await memGroup.connect()).raiseFailures();
(await memGroup.call(add, 1, 2)).raiseFailures();
const perAgent = (Deno.memoryUsage().rss - before) / 30;
await memGroup.close();

const cold = new Map<number, number>();
for (const n of [10, 30, 50]) {
  const samples: number[] = [];
  for (let r = 0; r < ROUNDS; r++) samples.push(await connectAndCall(n));
  cold.set(n, median(samples));
}

const warmGroup = group(30);
(await warmGroup.call(add, 1, 2)).raiseFailures();
for (let i = 0; i < 20; i++) await warmGroup.call(add, i, 1);
const warm: number[] = [];
for (let i = 0; i < WARM_CALLS; i++) {
  const start = performance.now();
  (await warmGroup.call(add, i, 1)).raiseFailures();
  warm.push(performance.now() - start);
}
await warmGroup.close();
const warmMs = median(warm);

const python: Record<string, number> = { 10: 660, 30: 2230, warm: 13 };
const ratio = (ours: number, theirs: number) =>
  `${(theirs / ours).toFixed(1)}x faster`;
const ms = (v: number) =>
  v < 10 ? `${v.toFixed(2)} ms` : `${Math.round(v).toLocaleString("en")} ms`;

console.log(
  `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, \
median of ${ROUNDS} rounds (cold) and ${WARM_CALLS} calls (warm)

| measure (median) | chopsticks (Deno) | Python chopsticks | ratio | target |
|---|---|---|---|---|
| 10 Local hosts: connect + first call | ${ms(cold.get(10)!)} | 660 ms | ${
    ratio(cold.get(10)!, python[10])
  } | >= 3x |
| 30 Local hosts: connect + first call | ${ms(cold.get(30)!)} | 2,230 ms | ${
    ratio(cold.get(30)!, python[30])
  } | >= 3x |
| 50 Local hosts: connect + first call | ${ms(cold.get(50)!)} | - | - | - |
| 30 hosts: one warm call | ${ms(warmMs)} | 13 ms | ${
    ratio(warmMs, python.warm)
  } | >= 3x |
| controller RSS per connected agent | ${
    (perAgent / 1024 / 1024).toFixed(2)
  } MiB | - | - | - |`,
);
