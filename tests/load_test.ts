/**
 * Load: 10,000 calls in flight on one tunnel, a group of 50 local agents,
 * and 1 GiB sent to three SSH hosts at once with the controller's memory
 * bounded.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Group, Local, Tunnel } from "../mod.ts";
import { removeAll } from "./fixtures/funcs.ts";
import { double } from "./fixtures/hostile_funcs.ts";
import { hostTest } from "./_hosts.ts";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const quiet = { output: () => {}, connectTimeout: 30_000 };

Deno.test("load: 10,000 concurrent calls on one tunnel all resolve to their own results", async () => {
  await using tun = new Local("busy", quiet);
  const [, agent] = await tun.call(double, 0);
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: 10_000 }, (_, i) => tun.call(double, i)),
  );
  const took = performance.now() - start;
  for (const [i, [value, pid]] of results.entries()) {
    assert.equal(value, i * 2, `call ${i}`);
    assert.equal(pid, agent);
  }
  console.error(`load: 10,000 calls in ${took.toFixed(0)} ms`);
});

Deno.test("load: a Group of 50 Local agents connects, calls and closes", async () => {
  const tunnels = Array.from(
    { length: 50 },
    (_, i) => new Local(`l${i}`, quiet),
  );
  await using group = new Group(tunnels);
  const start = performance.now();
  const result = await group.call(double, 21);
  const took = performance.now() - start;
  assert.deepEqual(result.failures(), []);
  const ok = result.successful();
  assert.equal(ok.length, 50);
  assert.deepEqual(ok.map(([host]) => host), tunnels.map((t) => t.host));
  assert.ok(ok.every(([, [value]]) => value === 42));
  const pids = new Set(ok.map(([, [, pid]]) => pid));
  assert.equal(pids.size, 50, "each host has its own agent");
  console.error(
    `load: group of 50 connected and called in ${took.toFixed(0)} ms`,
  );
  await group.close();
  assert.ok(tunnels.every((t) => !t.connected));
});

hostTest(
  "load: 1 GiB to three SSH hosts at once keeps the controller's memory bounded",
  async (env) => {
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-load-" });
    const file = `${dir}/big.bin`;
    const hosts = env.ssh.multiHosts;
    await using group = new Group(hosts, {
      tunnel: (host) =>
        new Tunnel(host, { sshArgs: ["-F", env.ssh.config], ...quiet }),
    });
    const written: [string, string][] = [];
    try {
      // Sparse: no disk here, yet 1 GiB of data to read and send.
      const f = await Deno.open(file, { write: true, create: true });
      await f.truncate(GiB);
      f.close();
      (await group.connect()).raiseFailures();
      const before = Deno.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, Deno.memoryUsage().rss);
      }, 20);
      const start = performance.now();
      // No remote path: each host writes a fresh temporary file (the three
      // network-namespace hosts share one /tmp).
      const result = await group.put(file);
      const took = (performance.now() - start) / 1000;
      clearInterval(sampler);
      for (const [host, put] of result.raiseFailures().successful()) {
        written.push([host, put.remotePath]);
        assert.equal(put.size, GiB, host);
      }
      assert.equal(written.length, 3);
      assert.equal(new Set(written.map(([, p]) => p)).size, 3);
      const grew = peak - before;
      console.error(
        `load: 3 GiB to ${hosts} in ${took.toFixed(1)} s, rss grew ${
          (grew / MiB).toFixed(0)
        } MiB`,
      );
      assert.ok(grew < 256 * MiB, `the controller grew ${grew / MiB} MiB`);
    } finally {
      for (const [host, path] of written) {
        await group.get(host)!.call(removeAll, path).catch(() => {});
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);
