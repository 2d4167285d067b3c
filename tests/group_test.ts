/**
 * Group behaviour with real agents (Local tunnels, each a `deno run`).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type BaseTunnel,
  ConnectError,
  ErrorResult,
  Group,
  GroupError,
  type HostEvent,
  Local,
  RemoteError,
  type SpawnSpec,
  TimeoutError,
  Tunnel,
} from "../mod.ts";
import { add, pid, sleep } from "./fixtures/funcs.ts";
import { descendants } from "./_processes.ts";
import {
  boom,
  envDelay,
  isWeb,
  maxOverlap,
  span,
} from "./fixtures/group_funcs.ts";

const quiet = () => {};
const locals = (...names: string[]) => names.map((n) => new Local(n));

Deno.test("Group.call() runs on every host and keeps the group's order", async () => {
  await using group = new Group(locals("c", "a", "b"));
  assert.deepEqual(group.hosts, ["c", "a", "b"]);
  assert.equal(group.size, 3);
  const result = await group.call(add, 20, 22);
  assert.ok(result.ok);
  assert.deepEqual([...result], [["c", 42], ["a", 42], ["b", 42]]);
  assert.deepEqual(result.successful(), [["c", 42], ["a", 42], ["b", 42]]);
  assert.deepEqual(result.failures(), []);
  assert.equal(result.get("a"), 42);
  assert.equal(result.get("nope"), undefined);
  assert.equal(result.raiseFailures(), result);
  const pids = await group.call(pid);
  assert.equal(new Set(pids.values().values()).size, 3, "one agent per host");
});

Deno.test("Group refuses a duplicate host name when it is built", () => {
  assert.throws(
    () => new Group(locals("a", "b", "a")),
    (e: Error) =>
      e instanceof TypeError && /host "a" appears twice/.test(e.message),
  );
  assert.throws(
    () => new Group(["x", "x"], { tunnel: (h) => new Local(h) }),
    /host "x" appears twice/,
  );
});

Deno.test("Group refuses a single host name, a list that is not one, and options of the wrong kind, saying what to give", () => {
  // A string is iterable: it made a host of each letter ("w", "e", ...).
  assert.throws(
    () => new Group("web1" as never),
    (e: Error) =>
      e instanceof TypeError &&
      e.message ===
        'Cannot build a group from the string "web1": give a list of host names or tunnels, such as ["web1"]',
  );
  for (const hosts of [5, null, { host: "web1" }]) {
    assert.throws(
      () => new Group(hosts as never),
      (e: Error) =>
        e instanceof TypeError &&
        /^Cannot build a group from .*: give a list of host names or tunnels/
          .test(e.message),
      String(hosts),
    );
  }
  assert.throws(
    () => new Group(["web1"], { tunnel: "local" as never }),
    (e: Error) =>
      e instanceof TypeError &&
      e.message === 'Cannot use tunnel "local": expected a function',
  );
  assert.throws(
    () => new Group([], { onHost: 5 as never }),
    (e: Error) =>
      e instanceof TypeError &&
      e.message === "Cannot use onHost 5: expected a function",
  );
  const group = new Group(["web1"]);
  assert.throws(
    () => group.callWith({ onHost: "log" as never }, add, 1, 2),
    (e: Error) => e instanceof TypeError && /onHost "log"/.test(e.message),
  );
});

Deno.test("Group makes an SSH tunnel for a host name, or what options.tunnel makes", () => {
  const ssh = new Group(["web1", "web2"]);
  assert.ok(ssh.get("web1") instanceof Tunnel);
  assert.equal(ssh.get("web1")!.connected, false, "nothing starts at once");
  const local = new Group(["x"], { tunnel: (h) => new Local(h) });
  assert.ok(local.get("x") instanceof Local);
});

Deno.test("Group.callWith() with an aborted signal fails every host", async () => {
  await using group = new Group(locals("a", "b"));
  const result = await group.callWith(
    { signal: AbortSignal.abort(new Error("stop")) },
    add,
    1,
    2,
  );
  assert.deepEqual(result.failures().map(([h, e]) => [h, e.message]), [
    ["a", "stop"],
    ["b", "stop"],
  ]);
  assert.equal(group.get("a")!.connected, false, "nothing was started");
});

Deno.test("Group with no hosts gives empty results", async () => {
  await using group = new Group([]);
  for (
    const result of [
      await group.call(add, 1, 2),
      await group.connect(),
      await group.put("deno.json", "/tmp/x"),
      await group.fetch("/etc/hostname", "x-{host}"),
    ]
  ) {
    assert.equal(result.size, 0);
    assert.ok(result.ok);
    assert.deepEqual([...result], []);
    result.raiseFailures();
  }
  assert.equal((await group.filter(isWeb)).size, 0);
});

Deno.test("Group keeps a failed connection as ErrorResult and skips the host until connect()", async () => {
  const dir = await Deno.makeTempDir();
  const deno = `${dir}/deno`;
  try {
    await using group = new Group([
      new Local("good"),
      new Local("late", { deno, output: quiet }),
    ]);
    const first = await group.call(add, 1, 1);
    assert.equal(first.get("good"), 2);
    const failure = first.get("late");
    assert.ok(failure instanceof ErrorResult);
    assert.equal(failure.name, "ConnectError");
    assert.ok(failure.cause instanceof ConnectError);
    assert.deepEqual([...group.unreachable.keys()], ["late"]);

    await Deno.symlink(Deno.execPath(), deno);
    const second = await group.call(add, 2, 2);
    assert.equal(second.get("late"), failure, "skipped: the same ErrorResult");
    assert.equal(second.get("good"), 4);

    const connected = await group.connect();
    assert.ok(connected.ok, String(connected.failures()));
    assert.equal(group.unreachable.size, 0);
    assert.equal((await group.call(add, 3, 3)).get("late"), 6);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Group.close() while hosts connect leaves them reachable: the next call reconnects", async () => {
  await using group = new Group(locals("a", "b"));
  // The call starts both connects before it returns; close stops them.
  const during = group.call(add, 1, 2);
  await group.close();
  const failures = (await during).failures();
  assert.equal(failures.length, 2, "both connects were stopped");
  for (const [host, failure] of failures) {
    assert.ok(failure.cause instanceof ConnectError, `${host}: ${failure}`);
    assert.equal(failure.cause.stage, "closed");
  }
  assert.deepEqual([...group.unreachable.keys()], [], "closing is no failure");
  const after = await group.call(add, 1, 2);
  assert.deepEqual([...after], [["a", 3], ["b", 3]]);
});

Deno.test("Group.connect() with a signal stops waiting for a host that hangs while it connects", async () => {
  class Hung extends Local {
    protected override spawnSpec(): SpawnSpec {
      return { command: "sh", args: ["-c", "exec sleep 60"] };
    }
  }
  await using group = new Group([
    new Local("good"),
    new Hung("hung", { connectTimeout: 30_000 }),
  ]);
  const controller = new AbortController();
  const reason = new Error("enough waiting");
  const onHost = (event: HostEvent) => {
    if (event.host === "good" && event.state === "ok") controller.abort(reason);
  };
  const started = performance.now();
  const result = await group.connect({ signal: controller.signal, onHost });
  const took = performance.now() - started;
  assert.equal(result.get("good"), undefined);
  const hung = result.get("hung");
  assert.ok(hung instanceof ErrorResult && hung.cause === reason, String(hung));
  assert.ok(took < 20_000, `waited ${took.toFixed(0)} ms for the hung host`);
});

Deno.test("Group.close() during an operation starts no host that waited for a slot", async () => {
  await using group = new Group(locals("a", "b", "c"), { concurrency: 1 });
  let started!: () => void;
  const first = new Promise<void>((resolve) => started = resolve);
  const during = group.callWith(
    { onHost: (e) => e.state === "running" && started() },
    sleep,
    2_000,
    "slept",
  );
  await first;
  await group.close();
  const result = await during;
  for (const host of ["b", "c"]) {
    const failure = result.get(host);
    assert.ok(failure instanceof ErrorResult, `${host}: ${failure}`);
    assert.ok(failure.cause instanceof ConnectError);
    assert.equal(failure.cause.stage, "closed");
    assert.match(failure.message, /group was closed before this host started/);
  }
  assert.ok(result.get("a") instanceof ErrorResult, "a's call was stopped");
  assert.deepEqual(
    group.tunnels.filter((t) => t.connected).map((t) => t.host),
    [],
    "no agent was started after close()",
  );
  assert.deepEqual(descendants(), [], "no process outlives close()");
  const again = await group.callWith({ concurrency: 3 }, add, 1, 1);
  assert.deepEqual([...again], [["a", 2], ["b", 2], ["c", 2]]);
});

Deno.test("Group concurrency: at most N hosts run at once", async () => {
  await using group = new Group(locals("a", "b", "c", "d", "e"), {
    concurrency: 2,
  });
  // Load the module on every agent first, so only the spans are timed.
  (await group.call(span, 0, "warm")).raiseFailures();
  const result = await group.call(span, 300, "");
  const spans = result.values();
  const most = maxOverlap([...spans.values()]);
  assert.equal(most, 2, `at most two at once: ${JSON.stringify([...spans])}`);
  const one = await group.callWith({ concurrency: 1 }, span, 50, "");
  const sorted = [...one.values().values()].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    assert.ok(sorted[i].start >= sorted[i - 1].end, "one at a time");
  }
  assert.throws(() => new Group([], { concurrency: 0 }), RangeError);
});

Deno.test("Group timeout limits each host's call", async () => {
  await using group = new Group([
    new Local("fast", { env: { DELAY: "0" } }),
    new Local("slow", { env: { DELAY: "1500" } }),
  ], { timeout: 400 });
  await group.connect();
  const started = performance.now();
  const result = await group.call(envDelay);
  assert.ok(performance.now() - started < 2_000);
  assert.equal(result.get("fast"), 0);
  const slow = result.get("slow");
  assert.ok(slow instanceof ErrorResult && slow.cause instanceof TimeoutError);
  assert.equal(group.unreachable.size, 0, "a timeout is not a lost host");
  const again = await group.callWith({ timeout: 10_000 }, envDelay);
  assert.equal(again.get("slow"), 1500, "a per-call timeout wins");
});

Deno.test("Group refuses a bad timeout or mode before any host starts", () => {
  let spawned = 0;
  class Counting extends Local {
    protected override spawnSpec(script: string): SpawnSpec {
      spawned++;
      return super.spawnSpec(script);
    }
  }
  // Longer than a timer takes: it would fire at once.
  for (const timeout of [Infinity, 2 ** 31, -1, NaN]) {
    assert.throws(
      () => new Group([], { timeout }),
      (e: Error) =>
        e instanceof RangeError && /Cannot use timeout/.test(e.message),
    );
  }
  new Group([], { timeout: 0 });
  const group = new Group([new Counting("a"), new Counting("b")]);
  assert.throws(
    () => group.put("deno.json", "/tmp/never", { mode: "644" as never }),
    (e: Error) => e instanceof TypeError && /mode "644".*0o644/.test(e.message),
  );
  assert.throws(
    () => group.fetch("/etc/hostname", "/tmp/never-{host}", { timeout: -1 }),
    (e: Error) => e instanceof RangeError && /timeout -1/.test(e.message),
  );
  assert.throws(
    () => group.callWith({ timeout: "5s" as never }, add, 1, 2),
    (e: Error) => e instanceof TypeError && /timeout "5s"/.test(e.message),
  );
  assert.equal(spawned, 0, "no agent was started");
});

Deno.test("GroupResult.raiseFailures() names every failed host and its message", async () => {
  await using group = new Group([
    ...locals("ok1"),
    new Local("down", { deno: "/no/such/deno", output: quiet }),
    ...locals("ok2"),
  ]);
  const result = await group.call(boom, "disk full");
  assert.equal(result.ok, false);
  assert.deepEqual(result.failures().map(([h]) => h), ["ok1", "down", "ok2"]);
  const remote = result.get("ok1") as ErrorResult;
  assert.equal(remote.name, "RemoteError");
  assert.equal(remote.remoteName, "RangeError");
  assert.match(remote.remoteStack!, /group_funcs\.ts/);
  assert.ok(remote.cause instanceof RemoteError);
  const error = (() => {
    try {
      result.raiseFailures();
    } catch (e) {
      return e;
    }
  })();
  assert.ok(error instanceof GroupError);
  assert.match(error.message, /^3 of 3 hosts failed:/);
  assert.match(error.message, /ok1: RangeError: disk full/);
  assert.match(error.message, /ok2: RangeError: disk full/);
  assert.match(error.message, /down: ConnectError: .*down/);
  assert.equal(error.errors.length, 3);
  assert.deepEqual(error.failures.map(([h]) => h), ["ok1", "down", "ok2"]);
});

Deno.test("Group reports each host's progress", async () => {
  const events: HostEvent[] = [];
  await using group = new Group(locals("a", "b"), {
    onHost: (e) => events.push(e),
  });
  await group.call(add, 1, 2);
  assert.deepEqual(
    events.filter((e) => e.host === "a").map((e) => e.state),
    ["running", "ok"],
  );
  assert.equal(events.length, 4);
});

Deno.test("an onHost callback that throws stops no host: the operation rejects with its errors once every host is done", async () => {
  const events: string[] = [];
  let settled = false;
  await using group = new Group(locals("a", "b"), {
    concurrency: 1,
    onHost: (e) => {
      if (settled) events.push(`late: ${e.host} ${e.state}`);
      events.push(`${e.host} ${e.state}`);
      // Thrown as b starts, it kept b from running (b failed); thrown as
      // a ends, the operation rejected while b ran on, unreported.
      if (e.host === "a" && e.state === "ok") throw new Error("display bug");
      if (e.host === "b" && e.state === "running") throw new Error("again");
    },
  });
  const error = await group.call(sleep, 200, "slept").then(
    () => undefined,
    (e) => e,
  );
  settled = true;
  await new Promise((r) => setTimeout(r, 400));
  assert.deepEqual(events, ["a running", "a ok", "b running", "b ok"]);
  assert.ok(error instanceof AggregateError, String(error));
  assert.deepEqual(
    error.errors.map((e: Error) => e.message),
    ["display bug", "again"],
  );
  // Thrown once, the error itself.
  const once = await group.callWith(
    {
      onHost: (e) => {
        if (e.host === "b" && e.state === "ok") throw new Error("only once");
      },
    },
    add,
    1,
    2,
  ).then(() => undefined, (e) => e);
  assert.equal(once?.message, "only once");
});

class Fleet extends Group {
  get label(): string {
    return this.hosts.join("+");
  }
}

Deno.test("Group set operations keep the left side's kind and share tunnels", () => {
  const [a, b, c, d] = locals("a", "b", "c", "d");
  const left = new Fleet([a, b, c]);
  const right = new Group([b, c, d]);
  const union = left.union(right);
  assert.ok(union instanceof Fleet);
  assert.equal(union.label, "a+b+c+d");
  assert.equal(union.get("d"), d, "the same tunnel, not a second one");
  assert.deepEqual(left.intersection(right).hosts, ["b", "c"]);
  assert.deepEqual(left.difference(right).hosts, ["a"]);
  assert.deepEqual(left.symmetricDifference(right).hosts, ["a", "d"]);
  assert.deepEqual(left.union(d).hosts, ["a", "b", "c", "d"], "a tunnel");
  assert.deepEqual(left.difference(b).hosts, ["a", "c"]);
  assert.deepEqual(left.intersection(new Local("c")).hosts, ["c"], "by name");
  assert.equal(left.intersection(new Local("c")).get("c"), c);
  assert.ok(right.union(left) instanceof Group);
  assert.ok(!(right.union(left) instanceof Fleet));
});

Deno.test("Group.filter() refuses a predicate it cannot call before any host starts, where it gave an empty group", async () => {
  await using group = new Group(locals("f1", "f2"));
  await assert.rejects(
    () => group.filter(() => true),
    (e: Error) => e instanceof TypeError && /export it/.test(e.message),
  );
  assert.deepEqual(group.tunnels.filter((t) => t.connected), []);
});

Deno.test("Group.filter() keeps the hosts where the predicate is truthy, or falsy with exclude", async () => {
  const web = (name: string) => new Local(name, { env: { ROLE: "web" } });
  const tunnels: BaseTunnel[] = [
    web("w1"),
    new Local("db1", { env: { ROLE: "db" } }),
    web("w2"),
    new Local("dead", { deno: "/no/such/deno", output: quiet }),
  ];
  await using fleet = new Fleet(tunnels);
  const webs = await fleet.filter(isWeb);
  assert.ok(webs instanceof Fleet);
  assert.deepEqual(webs.hosts, ["w1", "w2"]);
  assert.equal(webs.get("w1"), tunnels[0]);
  assert.equal(webs.get("w1")!.connected, true, "shares the connection");
  const others = await fleet.filter(isWeb, { exclude: true });
  assert.deepEqual(others.hosts, ["db1"], "a failed host is in neither");
});

Deno.test("Group.put() and fetch() copy files on every host", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/src.txt`, "payload");
    await using group = new Group(locals("a", "b"));
    const put = await group.put(`${dir}/src.txt`, `${dir}/copy.txt`, {
      mode: 0o600,
    });
    assert.ok(put.ok, String(put.failures()));
    const fetched = await group.fetch(`${dir}/copy.txt`, `${dir}/{host}.txt`);
    assert.ok(fetched.ok, String(fetched.failures()));
    assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "payload");
    assert.equal(await Deno.readTextFile(`${dir}/b.txt`), "payload");
    const missing = await group.fetch(`${dir}/none`, `${dir}/{host}.none`);
    assert.deepEqual(missing.failures().map(([h]) => h), ["a", "b"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

class NoTransfer extends Local {
  calls = 0;
  override fetch(): never {
    this.calls++;
    throw new Error("fetch must not be called");
  }
}

Deno.test("Group.fetch() refuses a template that maps two hosts to one path, before any transfer", () => {
  const tunnels = [new NoTransfer("a"), new NoTransfer("b")];
  const group = new Group(tunnels);
  assert.throws(
    () => group.fetch("/etc/hostname", "out.txt"),
    (e: Error) =>
      e instanceof TypeError && /"a" and "b" would both write/.test(e.message),
  );
  assert.throws(
    () => group.fetch("/etc/hostname", "./dir/../out.txt"),
    /would both write/,
  );
  assert.deepEqual(tunnels.map((t) => t.calls), [0, 0]);
  assert.equal(tunnels[0].connected, false, "nothing was started");
});

Deno.test("Group.putTree() and fetchTree() copy a tree to and from every host", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/src/sub`, { recursive: true });
    await Deno.writeTextFile(`${dir}/src/sub/a.txt`, "tree");
    await using group = new Group([new Local("t1"), new Local("t2")]);
    const put = await group.putTree(
      `${dir}/src`,
      `${dir}/dst-shared`,
    );
    put.raiseFailures();
    assert.deepEqual(put.successful().map(([, r]) => r.files), [1, 1]);
    const fetched = await group.fetchTree(
      `${dir}/dst-shared`,
      `${dir}/back/{host}`,
    );
    fetched.raiseFailures();
    for (const host of ["t1", "t2"]) {
      assert.equal(
        await Deno.readTextFile(`${dir}/back/${host}/sub/a.txt`),
        "tree",
      );
    }
    assert.throws(
      () => group.fetchTree(`${dir}/dst-shared`, `${dir}/one`),
      TypeError,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a call refused on an idle group (a closure) leaves no agent running on any host", async () => {
  // Each tunnel starts its agent while it looks the function up; a refusal
  // gives up the connect that only it waited for.
  await using group = new Group(locals("r1", "r2", "r3"));
  const closure = () => 1;
  const result = await group.call(closure);
  for (const [host, outcome] of result) {
    assert.ok(outcome instanceof ErrorResult, `${host}: ${outcome}`);
    assert.ok(outcome.cause instanceof TypeError, `${host}: ${outcome.cause}`);
    assert.match(outcome.message, /export it/);
  }
  // Long past the time an agent takes to connect here.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(
    group.tunnels.filter((t) => t.connected).map((t) => t.host),
    [],
  );
  assert.deepEqual(descendants(), [], "no agent process is left");
  // The group goes on.
  const again = await group.call(add, 2, 2);
  assert.deepEqual([...again], [["r1", 4], ["r2", 4], ["r3", 4]]);
});

Deno.test("a group call or put right after a refused call reaches every host", async () => {
  // The connects given up are still ending: they are not the next call's.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "a");
    await using group = new Group(locals("n1", "n2"));
    await group.call(() => 1);
    const again = await group.call(add, 2, 2);
    assert.deepEqual([...again], [["n1", 4], ["n2", 4]]);
    await group.close();
    await group.call(() => 1);
    const put = await group.put(`${dir}/a.txt`, `${dir}/b.txt`);
    assert.deepEqual(
      [...put].map(([host, r]) => [host, r instanceof ErrorResult]),
      [["n1", false], ["n2", false]],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
