/**
 * File transfer limits on a Local tunnel: bounded memory on a 1 GiB put,
 * no head-of-line blocking, a full disk (for a file and for a tree), and
 * the channel's pipes widened while a file streams, and a reply read into
 * the buffer of a data frame before it kept whole.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConnectionLostError, Local } from "../mod.ts";
import {
  add,
  channelPipes,
  list,
  peakRss,
  pid,
  ppid,
  readBytes,
  sleep,
} from "./fixtures/funcs.ts";
import {
  appendFor,
  sparseFile,
  truncateWhenArriving,
} from "./fixtures/hostile_funcs.ts";
import { smallTree, stoppedMidway } from "./_trees.ts";
import { pipeSizes } from "./_pipe_sizes.ts";

const GiB = 1024 * 1024 * 1024;
const MiB = 1024 * 1024;

for (const kind of ["put", "fetch"] as const) {
  Deno.test({
    name:
      `a 1 GiB ${kind} keeps both sides' memory bounded, and small calls are not held up`,
    // Peak RSS of the agent and the controller's growth are both measured.
    async fn() {
      const dir = await Deno.makeTempDir({ prefix: "chopsticks-big-" });
      try {
        await sparseFile(`${dir}/src.bin`, GiB);
        await using tun = new Local("big");
        await tun.call(pid);
        const agentBefore = await tun.call(peakRss);
        const controllerBefore = Deno.memoryUsage().rss;
        let controllerPeak = controllerBefore;
        const sampler = setInterval(() => {
          controllerPeak = Math.max(controllerPeak, Deno.memoryUsage().rss);
        }, 20);
        let done = false;
        const transfer = (kind === "put" ? tun.put : tun.fetch).call(
          tun,
          `${dir}/src.bin`,
          `${dir}/dst.bin`,
        ).finally(() => done = true);
        const latencies: number[] = [];
        await new Promise((r) => setTimeout(r, 200));
        while (!done) {
          const start = performance.now();
          assert.equal(await tun.call(add, 2, 2), 4);
          latencies.push(performance.now() - start);
          await new Promise((r) => setTimeout(r, 50));
        }
        const result = await transfer;
        clearInterval(sampler);
        assert.equal(result.size, GiB);
        const agentGrowth = (await tun.call(peakRss)) - agentBefore;
        const controllerGrowth = controllerPeak - controllerBefore;
        assert.ok(latencies.length >= 3, `only ${latencies.length} calls ran`);
        // The machine is small and shared: judge the typical call, and bound
        // the worst one loosely.
        const sorted = [...latencies].sort((a, b) => a - b);
        const median = sorted[sorted.length >> 1];
        const worst = sorted.at(-1)!;
        assert.ok(median < 100, `small calls took ${median.toFixed(1)} ms`);
        assert.ok(worst < 1000, `a small call took ${worst.toFixed(1)} ms`);
        assert.ok(
          agentGrowth < 64 * MiB,
          `agent grew ${(agentGrowth / MiB).toFixed(1)} MiB`,
        );
        assert.ok(
          controllerGrowth < 64 * MiB,
          `controller grew ${(controllerGrowth / MiB).toFixed(1)} MiB`,
        );
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name:
    "a putTree or fetchTree of big files keeps both sides' memory bounded: they go one at a time",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-big-tree-" });
    try {
      // A tree's files go several at a time, but with no more than a window
      // of their bytes in flight: these go one by one.
      await Deno.mkdir(`${dir}/src`);
      for (let i = 0; i < 16; i++) {
        await sparseFile(`${dir}/src/${i}.bin`, 16 * MiB);
      }
      await using tun = new Local("big-tree");
      await tun.call(pid);
      for (
        const [name, copy] of [
          ["putTree", () => tun.putTree(`${dir}/src`, `${dir}/put`)],
          ["fetchTree", () => tun.fetchTree(`${dir}/src`, `${dir}/fetched`)],
        ] as const
      ) {
        const agentBefore = await tun.call(peakRss);
        const controllerBefore = Deno.memoryUsage().rss;
        let controllerPeak = controllerBefore;
        const sampler = setInterval(() => {
          controllerPeak = Math.max(controllerPeak, Deno.memoryUsage().rss);
        }, 20);
        const result = await copy().finally(() => clearInterval(sampler));
        assert.equal(result.bytes, 16 * 16 * MiB);
        const agentGrowth = (await tun.call(peakRss)) - agentBefore;
        const controllerGrowth = controllerPeak - controllerBefore;
        // A fetch grows the agent more than a put, tree or not (one fetch
        // of 512 MiB: about 80 MiB). These files all in flight at once
        // took the controller past 128 MiB on a putTree, the agent past 200
        // MiB on a fetchTree.
        const agentLimit = name === "putTree" ? 64 * MiB : 128 * MiB;
        assert.ok(
          agentGrowth < agentLimit,
          `${name}: the agent grew ${(agentGrowth / MiB).toFixed(1)} MiB`,
        );
        assert.ok(
          controllerGrowth < 64 * MiB,
          `${name}: the controller grew ${
            (controllerGrowth / MiB).toFixed(1)
          } MiB`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * The disk that holds `dir`, as its line in /proc/diskstats names it, or
 * undefined when it is not a block device (tmpfs, overlay, btrfs).
 */
function diskOf(dir: string): string | undefined {
  const dev = Deno.statSync(dir).dev;
  const major = (dev >> 8) & 0xfff;
  const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
  return Deno.readTextFileSync("/proc/diskstats").split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find(([ma, mi]) => Number(ma) === major && Number(mi) === minor)?.[2];
}

/** Bytes written to `disk` so far (sectors of 512 bytes). */
function bytesWritten(disk: string): number {
  const fields = Deno.readTextFileSync("/proc/diskstats").split("\n")
    .map((line) => line.trim().split(/\s+/))
    .find((f) => f[2] === disk)!;
  return Number(fields[9]) * 512;
}

// The repository's disk: /tmp may be a tmpfs.
const root = new URL("..", import.meta.url).pathname;
const disk = diskOf(root);

Deno.test({
  name:
    "put and fetch are on disk when they resolve: the destination never names a file a crash could empty",
  // Without a sync, what was written would stay in the page cache for 30 s.
  ignore: disk === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ dir: root, prefix: ".sync-test-" });
    try {
      const data = new Uint8Array(48 * MiB);
      for (let i = 0; i < data.length; i += 65536) {
        crypto.getRandomValues(data.subarray(i, i + 65536));
      }
      await Deno.writeFile(`${dir}/src.bin`, data);
      // On disk already: its writing back must not count for a transfer.
      using src = await Deno.open(`${dir}/src.bin`, { read: true });
      await src.sync();
      await using tun = new Local("sync");
      await tun.call(pid);
      for (
        const [name, transfer] of [
          ["put", () => tun.put(`${dir}/src.bin`, `${dir}/put.bin`)],
          ["fetch", () => tun.fetch(`${dir}/src.bin`, `${dir}/fetched.bin`)],
        ] as const
      ) {
        const before = bytesWritten(disk!);
        await transfer();
        const written = bytesWritten(disk!) - before;
        assert.ok(
          written >= data.length,
          `${name}: ${
            (written / MiB).toFixed(1)
          } MiB reached ${disk} by the time it resolved`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "a full disk fails the put clearly and leaves no file behind",
  ignore: Deno.uid() !== 0 && !Deno.env.get("CI"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-full-" });
    await Deno.mkdir(`${dir}/disk`);
    const { success: mounted } = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", `${dir}/disk`],
    }).output();
    assert.ok(mounted, "cannot mount a tmpfs (needs root)");
    try {
      await sparseFile(`${dir}/src.bin`, 4 * MiB);
      await Deno.writeTextFile(`${dir}/disk/keep.txt`, "old");
      await using tun = new Local("full");
      const error = await tun.put(`${dir}/src.bin`, `${dir}/disk/keep.txt`)
        .catch((e) => e);
      assert.ok(error instanceof Error, String(error));
      assert.match(error.message, /No space left|space/i);
      assert.deepEqual(await tun.call(list, `${dir}/disk`), ["keep.txt"]);
      assert.equal(await Deno.readTextFile(`${dir}/disk/keep.txt`), "old");
      assert.equal(await tun.call(add, 1, 1), 2, "the tunnel stays usable");
    } finally {
      await new Deno.Command("umount", { args: [`${dir}/disk`] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("a fetch of a file that grows meanwhile (a log) brings it as it was when the fetch began; the tunnel goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-grow-" });
  try {
    const log = `${dir}/app.log`;
    await Deno.writeFile(log, new Uint8Array(64 * MiB).fill(46));
    await using tun = new Local("grow");
    const agent = await tun.call(pid);
    const appending = tun.call(appendFor, log, 1500);
    await new Promise((r) => setTimeout(r, 50));
    const got = await tun.fetch(log, `${dir}/copy.log`);
    assert.ok(await appending > 0);
    const now = await Deno.readFile(log);
    const copy = await Deno.readFile(`${dir}/copy.log`);
    assert.ok(now.length > got.size, "the log grew after the fetch began");
    assert.equal(copy.length, got.size);
    assert.deepEqual(copy, now.subarray(0, got.size));
    assert.equal(await tun.call(pid), agent, "the same agent goes on");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a fetch of a file cut short meanwhile fails alone, saying so, and leaves no file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-shrink-" });
  try {
    const src = `${dir}/src.bin`;
    await sparseFile(src, GiB);
    await using tun = new Local("shrink");
    const agent = await tun.call(pid);
    const cutting = tun.call(truncateWhenArriving, src, dir);
    await assert.rejects(
      () => tun.fetch(src, `${dir}/copy.bin`),
      /Cannot fetch ".*src\.bin" from "shrink": the file shrank on the host while it was read: \d+ of its 1073741824 bytes came/,
    );
    await cutting;
    assert.deepEqual(await tun.call(list, dir), ["src.bin"]);
    assert.equal(await tun.call(pid), agent, "the same agent goes on");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("when the agent dies, each transfer and call under way fails with an error of its own, naming only its own file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-lost-" });
  try {
    for (const name of ["a.bin", "b.bin", "r.bin"]) {
      await sparseFile(`${dir}/${name}`, GiB);
    }
    await using tun = new Local("lost");
    const agent = await tun.call(pid);
    const failures = [
      tun.call(sleep, 10_000, "late"),
      tun.put(`${dir}/a.bin`, `${dir}/a.copy`),
      tun.put(`${dir}/b.bin`, `${dir}/b.copy`),
      tun.fetch(`${dir}/r.bin`, `${dir}/r.copy`),
    ].map((p) => p.then(() => undefined, (e) => e));
    await new Promise((r) => setTimeout(r, 200));
    Deno.kill(agent, "SIGKILL");
    const [call, putA, putB, fetch] = await Promise.all(failures);
    for (const error of [call, putA, putB, fetch]) {
      assert.ok(error instanceof ConnectionLostError, String(error));
      assert.equal(error.exitCode, 137);
    }
    assert.equal(new Set([call, putA, putB, fetch]).size, 4);
    assert.match(call.message, /^Agent on "lost" exited with code 137/);
    assert.match(
      putA.message,
      /^Cannot put "[^"]*\/a\.bin" to "lost": Agent on "lost" exited/,
    );
    assert.match(
      putB.message,
      /^Cannot put "[^"]*\/b\.bin" to "lost": Agent on "lost" exited/,
    );
    assert.match(
      fetch.message,
      /^Cannot fetch "[^"]*\/r\.bin" from "lost": Agent on "lost" exited/,
    );
    assert.match(
      putA.stack,
      /^ConnectionLostError: Cannot put "[^"]*\/a\.bin"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "a putTree or fetchTree that fills the disk midway fails clearly: nothing lands after it rejects, no temporary file stays, every file there is whole",
  ignore: Deno.uid() !== 0 && !Deno.env.get("CI"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-full-tree-" });
    await Deno.mkdir(`${dir}/disk`);
    const { success: mounted } = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", `${dir}/disk`],
    }).output();
    assert.ok(mounted, "cannot mount a tmpfs (needs root)");
    try {
      // About 2.4 MB in 300 files: the 1 MiB disk fills with many of them
      // in flight.
      const src = `${dir}/src`;
      await smallTree(src, 300, 16 * 1024);
      await using tun = new Local("full-tree");
      for (
        const [name, copy] of [
          ["putTree", () => tun.putTree(src, `${dir}/disk/tree`)],
          ["fetchTree", () => tun.fetchTree(src, `${dir}/disk/tree`)],
        ] as const
      ) {
        const dest = `${dir}/disk/tree`;
        const { error, files } = await stoppedMidway(name, copy(), src, dest);
        assert.ok(error instanceof Error, String(error));
        assert.match(error.message, /No space left/, name);
        assert.ok(files.length > 0, `${name}: nothing was copied`);
        await Deno.remove(dest, { recursive: true });
      }
      assert.equal(await tun.call(add, 1, 1), 2, "the tunnel stays usable");
    } finally {
      await new Deno.Command("umount", { args: [`${dir}/disk`] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** The largest size each pipe had while `during` ran, looked at every ms. */
async function widest(paths: string[], during: Promise<unknown>) {
  let max = pipeSizes(paths);
  let done = false;
  const ended = during.finally(() => done = true);
  while (!done) {
    max = pipeSizes(paths).map((size, i) => Math.max(size, max[i]));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await ended;
  return max;
}

Deno.test("a streamed put or fetch widens the channel's pipes to 1 MiB, on both sides, and they narrow again a second after it; a small file leaves them at 64 KiB, and so does an agent without ffi, the controller widening its own", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-pipes-" });
  const narrow = [64 * 1024, 64 * 1024, 64 * 1024];
  const wide = [MiB, MiB, MiB];
  const narrowed = async (pipes: string[]) => {
    const until = Date.now() + 5000;
    while (
      Date.now() < until && pipeSizes(pipes).some((n) => n !== 64 * 1024)
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return pipeSizes(pipes);
  };
  try {
    // Big enough that a fetch takes tens of ms, for widest() to look.
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(32 * MiB));
    await Deno.writeFile(`${dir}/small.bin`, new Uint8Array(200 * 1024));
    {
      await using tun = new Local("pipes");
      const pipes = await tun.call(channelPipes);
      assert.equal(pipes[1], `/proc/${await tun.call(ppid)}/fd/1`);
      assert.deepEqual(pipeSizes(pipes), narrow);
      await tun.put(`${dir}/small.bin`, `${dir}/small-put.bin`);
      await tun.fetch(`${dir}/small.bin`, `${dir}/small-fetched.bin`);
      assert.deepEqual(pipeSizes(pipes), narrow, "a whole file");
      await tun.put(`${dir}/big.bin`, `${dir}/put.bin`);
      assert.deepEqual(pipeSizes(pipes), wide, "just after a put");
      assert.deepEqual(await narrowed(pipes), narrow, "a second after");
      // The agent's pipes are looked at while the fetch runs: their second
      // starts when the agent sent its last chunk, before the controller
      // syncs the file.
      assert.deepEqual(
        await widest(pipes, tun.fetch(`${dir}/big.bin`, `${dir}/fetched.bin`)),
        wide,
        "during a fetch",
      );
      assert.deepEqual(await narrowed(pipes), narrow, "a second after");
      assert.deepEqual(
        await Deno.readFile(`${dir}/fetched.bin`),
        new Uint8Array(32 * MiB),
      );
    }
    {
      await using tun = new Local("no-ffi", {
        permissions: { read: [dir], write: [dir] },
      });
      const pipes = await tun.call(channelPipes);
      assert.equal(pipes[1], pipes[0].replace(/i$/, "o"), "an output FIFO");
      // The pipe from the script's stdout to the controller, which the
      // controller (granted ffi here) widens on its side.
      const controllers = [`/proc/${await tun.call(ppid)}/fd/1`];
      await tun.put(`${dir}/big.bin`, `${dir}/scoped.bin`);
      assert.deepEqual(pipeSizes(pipes), narrow);
      await tun.fetch(`${dir}/big.bin`, `${dir}/scoped-fetched.bin`);
      assert.deepEqual(pipeSizes(pipes), narrow);
      assert.deepEqual(pipeSizes(controllers), [MiB], "the controller's");
      assert.deepEqual(await narrowed(controllers), [64 * 1024]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a reply read into the buffer a fetch's data frame used keeps its bytes while the next fetch reuses buffers (the decoder hands out views of a reply's buffer)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-reuse-" });
  try {
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(4 * MiB).fill(0xee));
    // Smaller than a data frame, so that it is read into that frame's buffer.
    const value = new Uint8Array(200_000);
    for (let at = 0; at < value.length; at += 65_536) {
      value.set(
        crypto.getRandomValues(new Uint8Array(65_536)).subarray(
          0,
          value.length - at,
        ),
        at,
      );
    }
    await Deno.writeFile(`${dir}/value.bin`, value);
    await using tun = new Local("reuse");
    await tun.fetch(`${dir}/big.bin`, `${dir}/first.bin`);
    const got = await tun.call(readBytes, `${dir}/value.bin`);
    await tun.fetch(`${dir}/big.bin`, `${dir}/second.bin`);
    assert.ok(got.every((byte, i) => byte === value[i]), "the reply changed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
