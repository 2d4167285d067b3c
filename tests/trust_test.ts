/**
 * Cancellation end to end, SIGINT, and liveness, with real agents; what a
 * scoped or hostile agent cannot make the controller do.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  ConnectionLostError,
  Local,
  ProtocolError,
  TimeoutError,
} from "../mod.ts";
import {
  abortedAfter,
  add,
  listAsTemporary,
  markOnAbort,
  pid,
  sleep,
  waitForCancel,
} from "./fixtures/funcs.ts";
import { alive, gone } from "./_processes.ts";
import { Hostile } from "./fixtures/hostile_tunnel.ts";
import { FILES_AT_ONCE } from "../tunnel/_tree.ts";

const here = new URL(".", import.meta.url).pathname;

Deno.test("a cancelled call aborts the remote function's signal and kills the command it started", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/state.json`;
  try {
    await using tun = new Local("cancel");
    // Another call in flight keeps a signal of its own.
    const other = tun.call(abortedAfter, 1500);
    await assert.rejects(
      () => tun.callWith({ timeout: 500 }, waitForCancel, file),
      TimeoutError,
    );
    const deadline = Date.now() + 2000;
    let state = { pid: 0, aborted: false };
    while (!state.aborted && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      state = JSON.parse(await Deno.readTextFile(file));
    }
    assert.equal(state.aborted, true, "the remote function saw the abort");
    assert.ok(await gone([state.pid]), "the command it started was killed");
    assert.equal(await other, false, "the other call's signal did not abort");
    assert.equal(await tun.call(add, 1, 1), 2, "the tunnel stays usable");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("closing a tunnel aborts the signal of each call still running on its agent", async () => {
  // Nothing aborted them: an abort listener's cleanup never ran on close.
  const dir = await Deno.makeTempDir();
  try {
    const tun = new Local("closing");
    const files = [`${dir}/a`, `${dir}/b`];
    const calls = files.map((f) => tun.call(markOnAbort, f).catch((e) => e));
    const deadline = Date.now() + 10_000;
    const read = (f: string) => Deno.readTextFile(f).catch(() => "");
    while ((await Promise.all(files.map(read))).some((t) => t !== "running")) {
      assert.ok(Date.now() < deadline, "the calls did not start");
      await new Promise((r) => setTimeout(r, 20));
    }
    await tun.close();
    for (const call of await Promise.all(calls)) {
      assert.ok(call instanceof ConnectionLostError, String(call));
    }
    assert.deepEqual(await Promise.all(files.map(read)), [
      "aborted",
      "aborted",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs `fixtures/sigint_controller.ts` with the agents' TMPDIR in `tmp`
 * and its files in `dir`; once its transfers are under way, `stop` ends it.
 * Returns its exit code, stderr, and the pids it printed.
 */
async function controllerStopped(
  tmp: string,
  dir: string,
  stop: (child: Deno.ChildProcess) => void,
  mode = "",
  ownGroup = false,
): Promise<
  { code: number; signal: Deno.Signal | null; stderr: string; pids: number[] }
> {
  // In a process group of its own (setsid execs it, keeping the pid), a
  // signal can go to the whole group, as a terminal's Ctrl-C does.
  const run = ["run", "-A", `${here}fixtures/sigint_controller.ts`, dir, mode];
  const child = new Deno.Command(ownGroup ? "setsid" : Deno.execPath(), {
    args: ownGroup ? [Deno.execPath(), ...run] : run,
    env: { TMPDIR: tmp },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const pids = Object.values(JSON.parse(text || "{}")) as number[];
  if (!(pids.length === 3 && pids.every(alive))) {
    child.kill("SIGKILL");
    assert.fail(`the controller did not start its agents: ${await stderr}`);
  }
  stop(child);
  const { code, signal } = await child.status;
  await reader.cancel();
  return { code, signal, stderr: await stderr, pids };
}

/** Names in `dir`, once nothing else is there or after `ms`. */
async function settledNames(
  dir: string,
  expected: string[],
  ms = 2000,
): Promise<string[]> {
  const names = () => Array.from(Deno.readDirSync(dir), (e) => e.name).sort();
  for (const end = Date.now() + ms; Date.now() < end;) {
    if (names().join("/") === expected.join("/")) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return names();
}

for (const [signal, exitCode] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  for (const how of ["once", "twice", "group"] as const) {
    Deno.test(
      `${signal} to the controller${
        how === "twice"
          ? ", twice at once,"
          : how === "group"
          ? " and its agent scripts (its process group: Ctrl-C, timeout, deno task)"
          : ""
      } closes every tunnel, with a call, a put and a fetch under way, and leaves no process or file`,
      async () => {
        const tmp = await Deno.makeTempDir();
        const dir = await Deno.makeTempDir();
        try {
          const { code, signal: killedBy, stderr, pids } =
            await controllerStopped(
              tmp,
              dir,
              (child) => {
                // To the group, the scripts get it too, and then the
                // controller's own SIGTERM as it closes them: it cut their
                // cleanup short, and their directories stayed.
                if (how === "group") return Deno.kill(-child.pid, signal);
                child.kill(signal);
                // The second comes while the agents stop: the program exits
                // at once, through Deno.exit (not killed by the signal).
                if (how === "twice") setTimeout(() => child.kill(signal), 5);
              },
              "",
              how === "group",
            );
          assert.equal(code, exitCode, stderr);
          assert.equal(killedBy, null, "the program was killed by the signal");
          assert.doesNotMatch(stderr, /Uncaught/);
          assert.ok(
            await gone(pids),
            "an agent or its child outlived the signal",
          );
          // (After a second signal, the agents stop by themselves, as their
          // input ends.)
          assert.deepEqual(
            await settledNames(tmp, []),
            [],
            "an agent's temporary directory was left",
          );
          assert.deepEqual(await settledNames(dir, ["big"]), ["big"]);
        } finally {
          await Deno.remove(tmp, { recursive: true });
          await Deno.remove(dir, { recursive: true });
        }
      },
    );
  }
}

Deno.test("a rejection the program handles itself leaves a fetch under way alone", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${here}fixtures/handled_rejection.ts`, dir],
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "268435456");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a controller that dies of an uncaught error removes the fetch it was writing", async () => {
  const tmp = await Deno.makeTempDir();
  const dir = await Deno.makeTempDir();
  try {
    const { code, stderr, pids } = await controllerStopped(
      tmp,
      dir,
      () => {},
      "throw",
    );
    assert.equal(code, 1, stderr);
    assert.match(stderr, /the script failed/);
    assert.ok(await gone(pids), "an agent or its child outlived the script");
    const left = Array.from(Deno.readDirSync(dir), (e) => e.name);
    assert.ok(!left.some((name) => name.startsWith(".fetched.")), String(left));
  } finally {
    await Deno.remove(tmp, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a controller that dies of an uncaught error or rejection leaves no process, temporary directory or file, even of a hung agent", async () => {
  for (const how of ["throw", "reject"]) {
    // The agents' temporary directories go to `tmp`; the puts' files to `dir`.
    const tmp = await Deno.makeTempDir();
    const dir = await Deno.makeTempDir();
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${here}fixtures/crash_controller.ts`, how, dir],
        env: { TMPDIR: tmp },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.match(stderr, /Uncaught .*the controller crashed/);
      const pids = JSON.parse(new TextDecoder().decode(out.stdout));
      assert.ok(
        await gone(Object.values(pids) as number[]),
        `${how}: an agent outlived its controller`,
      );
      // What a hung agent leaves, the script's input relay removes after
      // the second it gives the agent.
      const left = () => [
        ...Array.from(Deno.readDirSync(tmp), (e) => `tmp/${e.name}`),
        ...Array.from(Deno.readDirSync(dir), (e) => e.name)
          .filter((name) => name !== "big"),
      ];
      const deadline = Date.now() + 3_000;
      while (left().length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(left(), [], `${how}: left behind`);
    } finally {
      await Deno.remove(tmp, { recursive: true });
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("an agent that stops answering is detected; pending calls reject and the tunnel reconnects", async () => {
  await using tun = new Local("frozen", {
    liveness: { interval: 200, timeout: 1000 },
  });
  const agent = await tun.call(pid);
  const pending = tun.call(sleep, 100, "late").catch((e) => e);
  Deno.kill(agent, "SIGSTOP");
  const started = performance.now();
  const error = await pending;
  const took = performance.now() - started;
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.match(error.message, /stopped answering/);
  assert.ok(took < 3000, `detected after ${took.toFixed(0)} ms`);
  assert.ok(await gone([agent], 3000), "the frozen agent was killed");
  assert.notEqual(await tun.call(pid), agent, "the next call reconnects");
});

Deno.test("a scoped agent cannot make its agent script remove files outside its scope", async () => {
  const dir = await Deno.makeTempDir();
  const victim = `${dir}/keep.txt`;
  try {
    await Deno.writeTextFile(victim, "precious");
    for (const exit of ["close", "kill"]) {
      const tun = new Local("scoped", { permissions: { read: true } });
      await tun.call(listAsTemporary, victim);
      const agent = await tun.call(pid);
      if (exit === "kill") Deno.kill(agent, "SIGKILL");
      await tun.close();
      assert.equal(await Deno.readTextFile(victim), "precious", exit);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an agent closed while puts begin leaves no temporary file, scoped or not", async () => {
  const dir = await Deno.makeTempDir();
  const source = `${dir}/source.bin`;
  const target = `${dir}/out`;
  await Deno.mkdir(target);
  await Deno.writeFile(source, new Uint8Array(1024));
  try {
    for (const permissions of [undefined, { read: [dir], write: [target] }]) {
      for (let round = 0; round < 8; round++) {
        const tun = new Local("closing", { permissions });
        await tun.connect();
        const puts = Promise.allSettled(Array.from(
          { length: 4 },
          (_, i) => tun.put(source, `${target}/${round}-${i}.bin`),
        ));
        await new Promise((r) => setTimeout(r, round));
        await tun.close();
        await puts;
      }
      const left = (await Array.fromAsync(Deno.readDir(target)))
        .map((e) => e.name).filter((n) => n.includes(".chopsticks-"));
      assert.deepEqual(
        left,
        [],
        `left behind (${JSON.stringify(permissions)})`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A directory outside a fetchTree's destination, mode 700, and what is in
 * it and its mode afterwards.
 */
async function withVictim(
  fn: (base: string, victim: string) => Promise<void>,
): Promise<{ names: string[]; mode: number }> {
  const base = await Deno.makeTempDir({ prefix: "chopsticks-trust-" });
  const victim = `${base}/home/.ssh`;
  try {
    await Deno.mkdir(victim, { recursive: true });
    await Deno.chmod(victim, 0o700);
    await fn(base, victim);
    const names = (await Array.fromAsync(Deno.readDir(victim))).map((e) =>
      e.name
    );
    return { names, mode: (await Deno.lstat(victim)).mode! & 0o7777 };
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("a listing that names a path twice cannot make fetchTree write or chmod outside its destination", async () => {
  const after = await withVictim(async (base, victim) => {
    const content = "ssh-ed25519 AAAA attacker@evil\n";
    // The file, then a symlink of the same name to a directory outside:
    // the file was written through the link into that directory, and the
    // directory got the file's mode.
    const entries = [
      { path: "authorized_keys", type: "file", mode: 0o777, size: 31 },
      {
        path: "authorized_keys",
        type: "link",
        mode: 0o777,
        size: 0,
        target: victim,
      },
    ];
    await using tun = new Hostile("files", {
      trees: { "/remote": entries },
      content,
    }, { output: () => {} });
    await assert.rejects(
      () => tun.fetchTree("/remote", `${base}/dest`),
      (e) =>
        e instanceof ProtocolError &&
        /"authorized_keys".*twice/.test(e.message),
    );
  });
  assert.deepEqual(after, { names: [], mode: 0o700 });
});

Deno.test("fetchTree never writes or chmods through a symlink another fetchTree made meanwhile", async () => {
  const after = await withVictim(async (base, victim) => {
    const dest = `${base}/dest`;
    const file = (path: string) => ({ path, type: "file", mode: 0o666 });
    // Two copies into the same destination. /B lists y, as many files more
    // as it fetches at once, and x; /A lists x as a symlink to a directory
    // outside. The agent answers /A's listing once /B has made its entries
    // and is fetching y, and finishes y and the others once /A has made its
    // symlink: /B then fetched x through it into the directory outside,
    // and chmodded that directory.
    const others = Array.from({ length: FILES_AT_ONCE - 1 }, (_, i) => `o${i}`);
    await using tun = new Hostile("files", {
      trees: {
        "/B": [file("y"), ...others.map(file), file("x")].map((e) => ({
          ...e,
          size: 3,
        })),
        "/A": [
          { path: "x", type: "link", mode: 0o777, size: 0, target: victim },
          { ...file("z"), size: 3 },
        ],
      },
      content: "abc",
      hold: {
        "/A": "/B/y",
        "/B/y": "/A/z",
        ...Object.fromEntries(others.map((o) => [`/B/${o}`, "/A/z"])),
      },
    }, { output: () => {} });
    const [b, a] = await Promise.allSettled([
      tun.fetchTree("/B", dest),
      tun.fetchTree("/A", dest),
    ]);
    assert.equal(
      a.status,
      "fulfilled",
      String((a as { reason?: unknown }).reason),
    );
    assert.equal(b.status, "rejected");
    assert.match(String(b.reason), /"[^"]*\/dest\/x".*not a regular file/);
  });
  assert.deepEqual(after, { names: [], mode: 0o700 });
});

Deno.test("a fetched file or directory never gets setuid, setgid or sticky bits from the agent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-trust-" });
  const mode = async (path: string) => (await Deno.lstat(path)).mode! & 0o7777;
  try {
    await using tun = new Hostile("files", {
      trees: {
        "/remote": [
          { path: "d", type: "dir", mode: 0o7777, size: 0 },
          { path: "d/f", type: "file", mode: 0o6755, size: 3 },
          { path: "g", type: "file", mode: 0o4711, size: 3 },
        ],
      },
      content: "abc",
      mode: 0o7777,
      rootMode: 0o3750,
    }, { output: () => {} });
    const { localPath } = await tun.fetch("/remote/tool", `${dir}/tool`);
    assert.equal(await mode(localPath), 0o777, "fetch");
    await tun.fetchTree("/remote", `${dir}/tree`);
    assert.equal(await mode(`${dir}/tree`), 0o750, "the root");
    assert.equal(await mode(`${dir}/tree/d`), 0o777, "a directory");
    assert.equal(await mode(`${dir}/tree/d/f`), 0o755, "a file");
    assert.equal(await mode(`${dir}/tree/g`), 0o711, "a file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a fetch or fetchTree whose mode is not an integer is refused and leaves nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-trust-" });
  const refused = (e: unknown) =>
    e instanceof ProtocolError && /a bad mode/.test(e.message);
  try {
    for (const mode of ["0644", 1.5, -1, true, {}]) {
      const what = JSON.stringify(mode);
      const file = { path: "f", type: "file", mode, size: 3 };
      await using tun = new Hostile("files", {
        trees: { "/remote": [file] },
        content: "abc",
        mode,
      }, { output: () => {} });
      await assert.rejects(
        () => tun.fetch("/remote/f", `${dir}/f`),
        refused,
        what,
      );
      assert.equal(tun.connected, false, `${what}: the tunnel is closed`);
      await assert.rejects(
        () => tun.fetchTree("/remote", `${dir}/tree`),
        refused,
        what,
      );
      assert.deepEqual([...Deno.readDirSync(dir)], [], `${what}: left`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a fetch whose begin is not answered with an object breaks the protocol: refused, and the tunnel closed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-trust-" });
  try {
    for (const begun of [null, "x", { size: 3, mode: 420 }]) {
      await using tun = new Hostile("files", { content: "abc", begun }, {
        output: () => {},
      });
      await assert.rejects(
        () => tun.fetch("/remote/f", `${dir}/f`),
        (e: Error) =>
          e instanceof ProtocolError && /a bad (answer|path)/.test(e.message),
        JSON.stringify(begun),
      );
      assert.equal(tun.connected, false);
      assert.deepEqual([...Deno.readDirSync(dir)], []);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a small file fetched whole is checked as a streamed one: what does not match is refused and leaves nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-trust-" });
  const abc = new TextEncoder().encode("abc");
  const sha = createHash("sha256").update(abc).digest("hex");
  try {
    {
      // As an agent answers: the file lands.
      await using tun = new Hostile("files", { content: "abc", whole: true }, {
        output: () => {},
      });
      const got = await tun.fetch("/remote/f", `${dir}/f`);
      assert.deepEqual(got.sha256, sha);
      assert.equal(await Deno.readTextFile(`${dir}/f`), "abc");
      await Deno.remove(`${dir}/f`);
    }
    const begun = (whole: unknown) => ({
      begun: { path: "/remote/f", size: 3, mode: 0o644, whole },
    });
    const cases: [object, RegExp, boolean][] = [
      [begun("abc"), /a bad file/, true],
      [begun(["abc", sha]), /a bad file/, true],
      // More than a chunk cannot come whole.
      [{ content: "x".repeat(300_000), whole: true }, /a bad file/, true],
      [{ whole: { data: "abcd" } }, /more than the 3 bytes it announced/, true],
      [{ whole: { sha: "0".repeat(64) } }, /expected 3 bytes with 0000/, false],
      [{ whole: { data: "ab" } }, /the file shrank/, false],
    ];
    for (const [answer, why, breaks] of cases) {
      const what = JSON.stringify(answer);
      await using tun = new Hostile("files", {
        content: "abc",
        ...answer,
      }, { output: () => {} });
      await assert.rejects(
        () => tun.fetch("/remote/f", `${dir}/f`),
        (e: Error) =>
          why.test(e.message) && (e instanceof ProtocolError) === breaks,
        what,
      );
      assert.equal(tun.connected, !breaks, `${what}: the tunnel`);
      assert.deepEqual([...Deno.readDirSync(dir)], [], `${what}: left`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a small put whose answer does not tell what was sent breaks the protocol", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-trust-" });
  try {
    await Deno.writeTextFile(`${dir}/small`, "abc");
    // Answers the put's end, which brought the whole file, with null.
    await using tun = new Hostile("stall", "ack", { output: () => {} });
    await assert.rejects(
      () => tun.put(`${dir}/small`, "/remote/small"),
      (e: Error) =>
        e instanceof ProtocolError && /a bad answer/.test(e.message),
    );
    assert.equal(tun.connected, false);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["small"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an agent that answers pings but lets a transfer stand still cannot hold it for ever", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(24 * 1024 * 1024));
    const liveness = { interval: 100, timeout: 800 };
    for (
      const [how, transfer] of [
        ["begin", (t: Hostile) => t.fetch("/x", `${dir}/got.bin`)],
        ["data", (t: Hostile) => t.fetch("/x", `${dir}/got.bin`)],
        ["ack", (t: Hostile) => t.put(`${dir}/big.bin`, "/x")],
      ] as const
    ) {
      await using tun = new Hostile("stall", how, {
        liveness,
        output: () => {},
      });
      await tun.connect();
      const start = performance.now();
      const error = await transfer(tun).catch((e) => e);
      const took = performance.now() - start;
      assert.ok(error instanceof TimeoutError, `${how}: ${error}`);
      assert.match(error.message, /stood still/);
      assert.ok(took < 5_000, `${how}: it took ${took.toFixed(0)} ms`);
      assert.ok(tun.connected, `${how}: the agent still answers pings`);
      assert.deepEqual(
        [...Deno.readDirSync(dir)].map((e) => e.name),
        ["big.bin"],
        `${how}: nothing is left here`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a put whose end takes longer than the liveness timeout succeeds while the agent acknowledges it, and fails when it stands still", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/small.bin`, new Uint8Array(1024));
    const liveness = { interval: 100, timeout: 500 };
    {
      await using tun = new Hostile("slow-end", { delay: 1500, every: 200 }, {
        liveness,
        output: () => {},
      });
      const done = await tun.put(`${dir}/small.bin`, "/x");
      assert.equal(done.size, 1024);
    }
    await using still = new Hostile("slow-end", { delay: 1500, every: 0 }, {
      liveness,
      output: () => {},
    });
    await assert.rejects(
      () => still.put(`${dir}/small.bin`, "/x"),
      (e: Error) => e instanceof TimeoutError && /stood still/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
