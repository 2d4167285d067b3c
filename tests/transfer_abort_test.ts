/**
 * Stopping file transfers with an AbortSignal, and group time limits that
 * stop the transfer itself (not only the wait for it), on real agents.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ErrorResult, Group, Local, Queue, TimeoutError } from "../mod.ts";
import { add, list, pid, spin } from "./fixtures/funcs.ts";
import { sparseFile } from "./fixtures/hostile_funcs.ts";
import { cpuMs } from "./_processes.ts";
import { landed, smallTree, stoppedMidway } from "./_trees.ts";

const MiB = 1024 * 1024;
/** Big enough to take well over the moment the tests abort at. */
const BIG = 768 * MiB;

/** Names in `dir` that look like a transfer's temporary file. */
async function temporaries(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.includes(".chopsticks-")) names.push(e.name);
  }
  return names;
}

/** Waits until `dir` holds no temporary file (at most `ms`); returns them. */
async function settledTemporaries(dir: string, ms = 3000): Promise<string[]> {
  const end = Date.now() + ms;
  let left = await temporaries(dir);
  while (left.length > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
    left = await temporaries(dir);
  }
  return left;
}

/** Resolves once `dir` holds a temporary file: the transfer is under way. */
async function underWay(dir: string): Promise<void> {
  const end = Date.now() + 10_000;
  while ((await temporaries(dir)).length === 0) {
    if (Date.now() > end) throw new Error(`no transfer began in ${dir}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function withDirs(
  fn: (here: string, there: string) => Promise<void>,
): Promise<void> {
  const here = await Deno.makeTempDir({ prefix: "chopsticks-abort-here-" });
  const there = await Deno.makeTempDir({ prefix: "chopsticks-abort-there-" });
  try {
    await fn(here, there);
  } finally {
    await Deno.remove(here, { recursive: true });
    await Deno.remove(there, { recursive: true });
  }
}

Deno.test("an aborted put rejects with the reason, and the agent removes its partial file", async () => {
  await withDirs(async (here, there) => {
    await sparseFile(`${here}/big.bin`, BIG);
    await using tun = new Local("abort-put");
    await tun.call(add, 1, 1);
    const stop = new AbortController();
    const put = tun.put(`${here}/big.bin`, `${there}/big.bin`, {
      signal: stop.signal,
    });
    await underWay(there);
    const reason = new Error("changed my mind");
    stop.abort(reason);
    await assert.rejects(put, (e) => e === reason);
    assert.deepEqual(await settledTemporaries(there), []);
    await assert.rejects(Deno.stat(`${there}/big.bin`), Deno.errors.NotFound);
    // The tunnel goes on: a call, and a whole put after the aborted one.
    assert.equal(await tun.call(add, 2, 3), 5);
    await Deno.writeTextFile(`${here}/small.txt`, "small");
    const small = await tun.put(`${here}/small.txt`, `${there}/small.txt`);
    assert.equal(small.size, 5);
    assert.equal(await Deno.readTextFile(`${there}/small.txt`), "small");
  });
});

Deno.test("a small put aborted while its agent is busy rejects at once, and never lands", async () => {
  // A small file goes whole with the put's end, after its begin was
  // answered: an abort before then stops it as it stops a big one.
  await withDirs(async (here, there) => {
    await Deno.writeTextFile(`${here}/small.txt`, "small");
    await using tun = new Local("abort-small-put");
    await tun.call(add, 1, 1);
    // Located before (here and on the agent), the call goes out at once and
    // runs as it arrives, ahead of the put: a first call of a function waits
    // to learn its module, and the put could then go first (seen once in CI).
    await tun.call(spin, 1);
    const busy = tun.call(spin, 2_000);
    const start = performance.now();
    await assert.rejects(
      tun.put(`${here}/small.txt`, `${there}/small.txt`, {
        signal: AbortSignal.timeout(300),
      }),
      (e: Error) => e.name === "TimeoutError",
    );
    const took = performance.now() - start;
    assert.ok(took < 1_500, `it took ${took.toFixed(0)} ms`);
    await busy;
    assert.equal(await tun.call(add, 2, 3), 5);
    assert.deepEqual(await settledTemporaries(there), []);
    assert.deepEqual([...Deno.readDirSync(there)], [], "nothing landed");
  });
});

Deno.test("an aborted fetch rejects with the reason, removes its partial file and leaves the old one", async () => {
  await withDirs(async (here, there) => {
    await sparseFile(`${there}/big.bin`, BIG);
    await Deno.writeTextFile(`${here}/big.bin`, "the old file");
    await using tun = new Local("abort-fetch");
    await tun.call(add, 1, 1);
    const stop = new AbortController();
    const fetch = tun.fetch(`${there}/big.bin`, `${here}/big.bin`, {
      signal: stop.signal,
    });
    await underWay(here);
    stop.abort();
    await assert.rejects(fetch, (e) => e === stop.signal.reason);
    assert.equal((stop.signal.reason as Error).name, "AbortError");
    assert.deepEqual(await settledTemporaries(here), []);
    assert.equal(await Deno.readTextFile(`${here}/big.bin`), "the old file");
    // The agent stopped sending: a small fetch after it is whole and quick.
    await Deno.writeTextFile(`${there}/small.txt`, "small");
    const small = await tun.fetch(`${there}/small.txt`, `${here}/small.txt`);
    assert.equal(small.size, 5);
    assert.equal(await tun.call(add, 2, 3), 5);
  });
});

Deno.test("a transfer with an aborted signal is refused before it starts an agent", async () => {
  await withDirs(async (here, there) => {
    await Deno.writeTextFile(`${here}/a.txt`, "a");
    await using tun = new Local("abort-before");
    const signal = AbortSignal.abort(new Error("not now"));
    await assert.rejects(
      tun.put(`${here}/a.txt`, `${there}/a.txt`, { signal }),
      /not now/,
    );
    await assert.rejects(
      tun.fetch(`${there}/a.txt`, here, { signal }),
      /not now/,
    );
    await assert.rejects(
      tun.putTree(here, `${there}/t`, { signal }),
      /not now/,
    );
    await assert.rejects(
      tun.fetchTree(there, `${here}/t`, { signal }),
      /not now/,
    );
    assert.equal(tun.connected, false, "no agent was started");
    assert.deepEqual([...Deno.readDirSync(there)], []);
  });
});

Deno.test("an aborted putTree stops between and within files, and leaves no partial file", async () => {
  await withDirs(async (here, there) => {
    await Deno.mkdir(`${here}/tree`);
    await sparseFile(`${here}/tree/a.bin`, BIG);
    await sparseFile(`${here}/tree/b.bin`, BIG);
    await using tun = new Local("abort-tree");
    await tun.call(add, 1, 1);
    const stop = new AbortController();
    const copy = tun.putTree(`${here}/tree`, `${there}/tree`, {
      signal: stop.signal,
    });
    // The tree's directory is made first; then the first file streams.
    while (!(await Deno.stat(`${there}/tree`).catch(() => null))) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await underWay(`${there}/tree`);
    stop.abort();
    await assert.rejects(copy, (e) => e === stop.signal.reason);
    assert.deepEqual(await settledTemporaries(`${there}/tree`), []);
    assert.deepEqual(await tun.call(list, `${there}/tree`), []);
  });
});

Deno.test("an aborted putTree or fetchTree stops hashing on both sides at once", async () => {
  await withDirs(async (here, there) => {
    // Files of the same size on both sides are compared by hash: 8 GiB of
    // them take each side seconds.
    for (const dir of [`${here}/tree`, `${there}/tree`]) {
      await Deno.mkdir(dir);
      for (let i = 0; i < 8; i++) {
        await sparseFile(`${dir}/${i}.bin`, 1024 * MiB);
      }
    }
    await using tun = new Local("abort-hash");
    const agent = await tun.call(pid);
    for (
      const copy of [
        (signal: AbortSignal) =>
          tun.putTree(`${here}/tree`, `${there}/tree`, { signal }),
        (signal: AbortSignal) =>
          tun.fetchTree(`${there}/tree`, `${here}/tree`, { signal }),
      ]
    ) {
      const stop = new AbortController();
      const copying = copy(stop.signal);
      await new Promise((r) => setTimeout(r, 500));
      stop.abort();
      await assert.rejects(copying, (e) => e === stop.signal.reason);
      // Hashing left to run would keep a core busy on each side.
      const before = [cpuMs(agent), cpuMs(Deno.pid)];
      await new Promise((r) => setTimeout(r, 1000));
      const [agentMs, controllerMs] = [cpuMs(agent), cpuMs(Deno.pid)].map((
        ms,
        i,
      ) => ms - before[i]);
      assert.ok(agentMs < 250, `the agent used ${agentMs} ms of CPU since`);
      assert.ok(
        controllerMs < 250,
        `the controller used ${controllerMs} ms of CPU since`,
      );
    }
  });
});

Deno.test("a putTree or fetchTree of many files aborted midway: nothing lands after it rejects, no temporary file stays, every file there is whole", async () => {
  await withDirs(async (here, there) => {
    // Small enough that many are in flight at once, big enough that those
    // take a moment to finish.
    const src = `${here}/src`;
    const count = 300;
    await smallTree(src, count, 256 * 1024);
    await using tun = new Local("abort-many");
    await tun.call(add, 1, 1);
    for (
      const [name, dest, copy] of [
        [
          "putTree",
          `${there}/put`,
          (signal: AbortSignal) => tun.putTree(src, `${there}/put`, { signal }),
        ],
        [
          "fetchTree",
          `${there}/fetched`,
          (signal: AbortSignal) =>
            tun.fetchTree(src, `${there}/fetched`, { signal }),
        ],
      ] as const
    ) {
      const stop = new AbortController();
      let settled = false;
      const copying = copy(stop.signal).finally(() => settled = true);
      // Midway: some files have landed, most have not.
      while (!settled) {
        const now = await Deno.stat(dest).then(() => landed(dest), () => null);
        if (now && now.files.length >= 50) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      stop.abort();
      const { error, files } = await stoppedMidway(name, copying, src, dest);
      assert.equal(error, stop.signal.reason, name);
      assert.ok(files.length < count, `${name}: it did not stop`);
    }
    assert.equal(await tun.call(add, 2, 3), 5);
  });
});

Deno.test("a Group's timeout stops a put on each host: nothing is renamed into place later", async () => {
  await withDirs(async (here, there) => {
    await sparseFile(`${here}/big.bin`, BIG);
    await using group = new Group(["g1", "g2"], {
      tunnel: (host) => new Local(host),
    });
    await group.call(add, 1, 1);
    const result = await group.put(`${here}/big.bin`, `${there}/big.bin`, {
      timeout: 150,
    });
    const failures = new Map(result.failures());
    for (const host of ["g1", "g2"]) {
      const failure = failures.get(host);
      assert.ok(failure, `${host} did not time out`);
      assert.equal(failure.name, "TimeoutError");
      assert.ok(failure.cause instanceof TimeoutError, String(failure.cause));
      assert.match(failure.message, /timed out after 150 ms/);
    }
    // Before, the transfers went on after the timeout and put the file in
    // place; now they stop, and their partial files go.
    assert.deepEqual(await settledTemporaries(there), []);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual([...Deno.readDirSync(there)], []);
  });
});

Deno.test("a put or fetch aborted at any moment leaves no temporary file, while the agent lives on", async () => {
  await withDirs(async (here, there) => {
    await sparseFile(`${here}/src.bin`, 16 * MiB);
    await sparseFile(`${there}/src.bin`, 16 * MiB);
    await using tun = new Local("abort-any");
    await tun.call(add, 1, 1);
    let aborted = 0;
    for (let i = 0; i < 40; i++) {
      const stop = new AbortController();
      // Early ones abort while the agent opens its file (the Abort can
      // overtake the end of putBegin or fetchBegin), later ones mid-stream.
      const transfer = i % 2
        ? tun.put(`${here}/src.bin`, `${there}/dst-${i}.bin`, {
          signal: stop.signal,
        })
        : tun.fetch(`${there}/src.bin`, `${here}/dst-${i}.bin`, {
          signal: stop.signal,
        });
      await new Promise((r) => setTimeout(r, i % 8));
      stop.abort();
      // The outcome is the truth: a rejected transfer left no file, a
      // resolved one (its last byte was out before the abort) a whole one.
      const dst = i % 2 ? `${there}/dst-${i}.bin` : `${here}/dst-${i}.bin`;
      await transfer.then(async () => {
        assert.equal((await Deno.stat(dst)).size, 16 * MiB);
      }, async (e) => {
        assert.equal(e, stop.signal.reason);
        await assert.rejects(Deno.stat(dst), Deno.errors.NotFound, dst);
        aborted++;
      });
    }
    assert.ok(aborted >= 10, `only ${aborted} of 40 transfers were aborted`);
    assert.deepEqual(await settledTemporaries(there), []);
    assert.deepEqual(await settledTemporaries(here), []);
    assert.equal(await tun.call(add, 2, 3), 5);
  });
});

Deno.test("a Queue's timeout stops a fetch: no file lands here later", async () => {
  await withDirs(async (here, there) => {
    await sparseFile(`${there}/big.bin`, BIG);
    await using tun = new Local("queue-abort");
    await tun.call(add, 1, 1);
    const queue = new Queue({ timeout: 150 });
    const fetched = queue.fetch(tun, `${there}/big.bin`, `${here}/big.bin`);
    await queue.run();
    const failure = fetched.value;
    assert.ok(failure instanceof ErrorResult, "the fetch did not time out");
    assert.ok(failure.cause instanceof TimeoutError, String(failure.cause));
    assert.deepEqual(await settledTemporaries(here), []);
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual([...Deno.readDirSync(here)], []);
  });
});

Deno.test("a put with no remote path makes its file only when whole: an abort leaves nothing in the agent's TMPDIR", async () => {
  await withDirs(async (here, there) => {
    await sparseFile(`${here}/big.bin`, BIG);
    // The agent's temporary files go to its TMPDIR.
    await using tun = new Local("abort-fresh", {
      env: { TMPDIR: `${there}/` },
    });
    await Deno.writeTextFile(`${here}/small.txt`, "small");
    const { remotePath } = await tun.put(`${here}/small.txt`);
    assert.match(remotePath, /\/chopsticks-put-[0-9a-f]{32}$/);
    assert.equal(remotePath.slice(0, remotePath.lastIndexOf("/")), there);
    await Deno.remove(remotePath);
    const stop = new AbortController();
    const put = tun.put(`${here}/big.bin`, undefined, { signal: stop.signal });
    await underWay(there);
    // Only the temporary file beside it: the fresh name is not made yet,
    // nor shown by the temporary file's name.
    const during = (await tun.call(list, there)).filter((n) =>
      n.includes("chopsticks-put")
    );
    assert.equal(during.length, 1, String(during));
    assert.match(during[0], /^\.chopsticks-put\.chopsticks-[0-9a-f]{8}\.tmp$/);
    stop.abort();
    await assert.rejects(put, (e) => e === stop.signal.reason);
    assert.deepEqual(await settledTemporaries(there), []);
    assert.deepEqual(
      (await tun.call(list, there)).filter((n) => n.startsWith("chopsticks-")),
      [],
    );
  });
});

Deno.test("a Group's timeout on a transfer starts once the host is connected, as a call's does", async () => {
  await withDirs(async (here, there) => {
    await Deno.writeTextFile(`${here}/small.txt`, "small");
    // A deno that takes a second to start: connecting takes twice the
    // limit, the put itself a fraction of it.
    const slowDeno = `${here}/slow-deno`;
    await Deno.writeTextFile(
      slowDeno,
      `#!/bin/sh\nsleep 1\nexec "${Deno.execPath()}" "$@"\n`,
      { mode: 0o755 },
    );
    await using group = new Group(["c1", "c2"], {
      tunnel: (host) => new Local(host, { deno: slowDeno }),
    });
    const result = await group.put(`${here}/small.txt`, `${there}/small.txt`, {
      timeout: 500,
    });
    assert.deepEqual(result.failures(), []);
    assert.equal(await Deno.readTextFile(`${there}/small.txt`), "small");
  });
});

Deno.test("a queued transfer whose signal aborted before it ran fails with the reason and leaves no timer", async () => {
  await withDirs(async (here, there) => {
    await Deno.writeTextFile(`${here}/small.txt`, "small");
    await using tun = new Local("queue-aborted");
    const queue = new Queue({ timeout: 60_000 });
    const stop = new AbortController();
    const put = queue.put(tun, `${here}/small.txt`, `${there}/small.txt`, {
      signal: stop.signal,
    });
    const fetch = queue.fetch(tun, `${here}/small.txt`, `${there}/back.txt`, {
      signal: stop.signal,
    });
    stop.abort(new Error("never mind"));
    await queue.run();
    for (const result of [put.value, fetch.value]) {
      assert.ok(result instanceof ErrorResult);
      assert.match(result.message, /never mind/);
    }
    assert.equal(tun.connected, false, "no agent was started");
    assert.deepEqual([...Deno.readDirSync(there)], []);
    // (The test's sanitizer fails it if the 60 s timer were left armed.)
  });
});

Deno.test("a fetch whose tunnel closes while it starts fails clearly and leaves no temporary file", async () => {
  await withDirs(async (here, there) => {
    await Deno.writeTextFile(`${there}/small.txt`, "small");
    for (let i = 0; i < 10; i++) {
      const tun = new Local(`closing-${i}`);
      await tun.call(add, 1, 1);
      const fetch = tun.fetch(`${there}/small.txt`, `${here}/out-${i}.txt`);
      // Close while the fetch makes its temporary file, or a little later.
      for (let k = 0; k < i % 5; k++) await Promise.resolve();
      const closing = tun.close();
      await fetch.then(
        (r) => assert.equal(r.size, 5),
        (e) => assert.match(String(e), /Cannot fetch .*small\.txt/),
      );
      await closing;
    }
    assert.deepEqual(await temporaries(here), []);
  });
});
