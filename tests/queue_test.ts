/**
 * Queue and AsyncResult behaviour with real agents (Local tunnels).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type AsyncResult,
  ErrorResult,
  Group,
  GroupResult,
  Local,
  Queue,
  type SpawnSpec,
  TimeoutError,
} from "../mod.ts";
import { add, list, sleep } from "./fixtures/funcs.ts";
import { descendants } from "./_processes.ts";
import { boom, maxOverlap, type Span, span } from "./fixtures/group_funcs.ts";

const quiet = () => {};

Deno.test("Queue runs one host's operations in order and hosts in parallel", async () => {
  await using a = new Local("a");
  await using b = new Local("b");
  await Promise.all([a.call(span, 0, "warm"), b.call(span, 0, "warm")]);
  const queue = new Queue();
  const results = new Map<string, AsyncResult<Span | ErrorResult>[]>();
  for (const tun of [a, b]) {
    results.set(
      tun.host,
      [200, 10, 100, 0].map((ms, i) => queue.call(tun, span, ms, `${i}`)),
    );
  }
  assert.equal(results.get("a")![0].done, false, "nothing runs before run()");
  await queue.run();
  const spans = (host: string) =>
    results.get(host)!.map((r) => r.value as Span);
  for (const host of ["a", "b"]) {
    const list = spans(host);
    assert.deepEqual(list.map((s) => s.tag), ["0", "1", "2", "3"]);
    for (let i = 1; i < list.length; i++) {
      assert.ok(list[i].start >= list[i - 1].end, `${host}: in order`);
    }
  }
  const [a0, b0] = [spans("a")[0], spans("b")[0]];
  assert.ok(a0.start < b0.end && b0.start < a0.end, "a and b overlapped");
});

Deno.test("Queue.run() waits for work queued from a callback while it runs", async () => {
  await using a = new Local("a");
  await using b = new Local("b");
  const queue = new Queue();
  const seen: string[] = [];
  let late: AsyncResult<Span | ErrorResult> | undefined;
  queue.call(a, add, 1, 1).withCallback((two) => {
    seen.push(`a:${two}`);
    // Queued on another host whose queue is empty by now.
    late = queue.call(b, span, 300, "late").withCallback(() => {
      seen.push("b:late");
      queue.call(a, add, 2, 2).withCallback((v) => seen.push(`a:${v}`));
    });
  });
  queue.call(b, add, 0, 0).withCallback((v) => seen.push(`b:${v}`));
  await queue.run();
  assert.ok(late?.done);
  assert.deepEqual(seen.sort(), ["a:2", "a:4", "b:0", "b:late"]);
  await queue.run(); // an empty queue returns at once
});

Deno.test("Queue gives errors as ErrorResult values and never throws them from run()", async () => {
  await using a = new Local("a");
  const dead = new Local("dead", { deno: "/no/such/deno", output: quiet });
  const queue = new Queue({ timeout: 300 });
  const thrown = queue.call(a, boom, "bad");
  const slow = queue.call(a, span, 5_000, "slow");
  const after = queue.call(a, add, 1, 2);
  const down = queue.call(dead, add, 1, 2);
  const skipped = queue.call(dead, add, 1, 2);
  await queue.run();
  assert.ok(thrown.value instanceof ErrorResult);
  assert.equal(thrown.value.remoteName, "RangeError");
  assert.ok(
    slow.value instanceof ErrorResult &&
      slow.value.cause instanceof TimeoutError,
  );
  assert.equal(after.value, 3, "the queue goes on after a failure");
  assert.ok(down.value instanceof ErrorResult);
  assert.equal(down.value.name, "ConnectError");
  assert.equal(skipped.value, down.value, "an unreachable host is skipped");
});

Deno.test("Queue on a group gives a GroupResult once every host is done", async () => {
  await using group = new Group([new Local("a"), new Local("b")]);
  const queue = new Queue();
  const first = queue.call(group, span, 100, "first");
  const second = queue.call(group, add, 2, 3);
  const order: string[] = [];
  first.withCallback(() => order.push("first"));
  second.withCallback(() => order.push("second"));
  await queue.run();
  assert.ok(first.value instanceof GroupResult);
  assert.deepEqual(first.value.hosts, ["a", "b"]);
  assert.deepEqual([...second.value], [["a", 5], ["b", 5]]);
  assert.deepEqual(order, ["first", "second"]);
  assert.throws(() => queue.fetch(group, "/etc/hostname", "one-file"));
  const empty = queue.call(new Group([]), add, 1, 1);
  assert.equal(empty.value.size, 0);
});

Deno.test("Queue.run() rethrows a callback's error after all work is done", async () => {
  await using a = new Local("a");
  const queue = new Queue();
  queue.call(a, add, 1, 1).withCallback(() => {
    throw new Error("callback bug");
  });
  const later = queue.call(a, add, 2, 2);
  await assert.rejects(() => queue.run(), /callback bug/);
  assert.equal(later.value, 4, "the rest of the queue still ran");
});

Deno.test("Queue concurrency limits operations at once", async () => {
  const tunnels = ["a", "b", "c", "d"].map((n) => new Local(n));
  await using group = new Group(tunnels);
  // Load the module on every agent first, so only the spans are timed.
  (await group.call(span, 0, "warm")).raiseFailures();
  const queue = new Queue({ concurrency: 2 });
  const results = tunnels.map((t) => queue.call(t, span, 200, t.host));
  await queue.run();
  const spans = results.map((r) => r.value as Span);
  const most = maxOverlap(spans);
  assert.equal(most, 2);
});

Deno.test("Queue refuses a bad timeout or mode at once, before anything runs", async () => {
  assert.throws(
    () => new Queue({ timeout: 2 ** 31 }),
    (e: Error) =>
      e instanceof RangeError &&
      /timeout 2147483648: expected a number of milliseconds from 0 to 2147483647/
        .test(e.message),
  );
  let spawned = 0;
  const tun = new (class extends Local {
    protected override spawnSpec(script: string): SpawnSpec {
      spawned++;
      return super.spawnSpec(script);
    }
  })("a");
  const queue = new Queue();
  assert.throws(
    () => queue.put(tun, "deno.json", "/tmp/never", { mode: "644" as never }),
    (e: Error) => e instanceof TypeError && /mode "644".*0o644/.test(e.message),
  );
  await queue.run();
  assert.equal(spawned, 0, "no agent was started");
});

Deno.test("Queue refuses a target that is not a tunnel or a group, before anything is queued", async () => {
  const queue = new Queue();
  // A host name was queued, then failed as "tunnel.callWith is not a
  // function", for a host named undefined.
  assert.throws(
    () => queue.call("web1" as never, add, 1, 2),
    (e: Error) =>
      e instanceof TypeError &&
      e.message ===
        'Cannot queue an operation on "web1": expected a tunnel or a Group, such as new Tunnel("web1")',
  );
  for (const target of [undefined, { host: "web1" }]) {
    assert.throws(
      () => queue.fetch(target as never, "/etc/hostname", "/tmp/never"),
      (e: Error) =>
        e instanceof TypeError &&
        /^Cannot queue an operation on .*: expected a tunnel or a Group$/
          .test(e.message),
    );
  }
  assert.throws(
    () => queue.put(["web1"] as never, "deno.json"),
    /Cannot queue an operation on \["web1"\]/,
  );
  await queue.run();
});

Deno.test("Queue.fetch() on a tunnel puts the host's name for {host}, as on a group", async () => {
  // Queued per host in a loop, each fetch wrote a file named "{host}.txt"
  // over the one before.
  const dir = await Deno.makeTempDir();
  try {
    await using a = new Local("qa");
    await using b = new Local("qb");
    const queue = new Queue();
    const results = [a, b].map((tun) =>
      queue.fetch(tun, "/etc/hostname", `${dir}/{host}.txt`)
    );
    await queue.run();
    assert.deepEqual(
      results.map((r) => (r.value as { localPath: string }).localPath),
      [`${dir}/qa.txt`, `${dir}/qb.txt`],
    );
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["qa.txt", "qb.txt"],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Queue skips a tunnel whose connection failed, as groups do, until it connects again", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using tun = new Local("late", {
      deno: `${dir}/deno`,
      output: quiet,
      connectTimeout: 10_000,
    });
    const queue = new Queue();
    const first = queue.call(tun, add, 1, 1);
    await queue.run();
    assert.ok(first.value instanceof ErrorResult, String(first.value));
    assert.equal(first.value.name, "ConnectError");
    // Deno is there now, but the host is skipped with the failure kept:
    // each step of a deployment on a host that cannot connect fails at
    // once, rather than waiting for a connect of its own.
    await Deno.symlink(Deno.execPath(), `${dir}/deno`);
    const second = queue.call(tun, add, 2, 2);
    await queue.run();
    assert.equal(second.value, first.value);
    // Connecting the tunnel again (or a group's connect()) ends the skip.
    await tun.connect();
    const third = queue.call(tun, add, 3, 3);
    await queue.run();
    assert.equal(third.value, 6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Queue.close() stops what runs, drops what waits without starting it, and the queue goes on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-queue-close-" });
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "a");
    await Deno.mkdir(`${dir}/there`);
    await using busy = new Local("busy");
    await using idle = new Local("idle");
    await busy.call(add, 1, 1);
    // One at a time: idle's call waits for busy's to end.
    const queue = new Queue({ concurrency: 1 });
    const slow = queue.call(busy, sleep, 5_000, "slept");
    const after = queue.put(busy, `${dir}/a.txt`, `${dir}/there/a.txt`);
    const never = queue.call(idle, add, 1, 2);
    const running = queue.run();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const start = performance.now();
    await queue.close();
    await running;
    const took = performance.now() - start;
    assert.ok(took < 2_000, `close() took ${took.toFixed(0)} ms`);
    for (
      const [what, result] of [["slow", slow], ["after", after], [
        "never",
        never,
      ]] as const
    ) {
      assert.ok(
        result.value instanceof ErrorResult,
        `${what}: ${result.value}`,
      );
      assert.match(result.value.message, /The queue was closed/, what);
    }
    assert.equal(
      idle.connected,
      false,
      "nothing was started on a dropped host",
    );
    assert.deepEqual(
      await busy.call(list, `${dir}/there`),
      [],
      "the put never ran",
    );
    // The queue goes on, with the same tunnels.
    const again = queue.call(idle, add, 2, 3);
    await queue.run();
    assert.equal(again.value, 5);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("await using a Queue closes it: queued work on a group starts no agent", async () => {
  {
    await using group = new Group([new Local("q1"), new Local("q2")]);
    let result: AsyncResult<GroupResult<number>>;
    {
      await using queue = new Queue();
      result = queue.call(group, add, 1, 1);
    }
    assert.ok(result.done, "the queue's close() settled it");
    for (const [host, value] of result.value) {
      assert.ok(value instanceof ErrorResult, `${host}: ${value}`);
    }
    assert.deepEqual(group.tunnels.filter((t) => t.connected), []);
  }
  assert.deepEqual(descendants(), [], "no process is left");
});

Deno.test("Queue.close() also fails work that callbacks queue while it closes: a polling or retrying callback cannot keep it going", async () => {
  await using busy = new Local("busy");
  await using idle = new Local("idle");
  await busy.call(add, 1, 1);
  const queue = new Queue();
  let polls = 0, polledWhileClosing = 0, closing = false;
  const poll = () =>
    queue.call(busy, sleep, 200, "polled").withCallback((value) => {
      if (closing && value === "polled") polledWhileClosing++;
      if (++polls < 25) poll();
    });
  poll();
  const running = queue.run();
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Queued as it closes, on a host not yet connected, and retried once
  // the queue fails it.
  let retried: unknown;
  queue.call(idle, add, 1, 1).withCallback((value) => {
    if (value instanceof ErrorResult) {
      queue.call(idle, sleep, 1_000, "retried").withCallback((v) =>
        retried = v
      );
    }
  });
  const start = performance.now();
  closing = true;
  await queue.close();
  await running;
  const took = performance.now() - start;
  assert.ok(took < 500, `close() took ${took.toFixed(0)} ms`);
  assert.equal(polledWhileClosing, 0, "no poll ran while it closed");
  assert.ok(retried instanceof ErrorResult, `retried: ${retried}`);
  assert.match(retried.message, /The queue was closed/);
  assert.equal(idle.connected, false, "nothing was started on idle");
  // The queue goes on once close() has resolved.
  const again = queue.call(idle, add, 2, 3);
  await queue.run();
  assert.equal(again.value, 5);
});
