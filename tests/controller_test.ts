import assert from "node:assert/strict";
import {
  ConnectError,
  ConnectionLostError,
  Local,
  type Permissions,
  RemoteError,
  type SpawnSpec,
} from "../mod.ts";
import { capture } from "./_conformance.ts";
import { withEnv } from "./_env.ts";
import { afterKill, alive, gone, marked, parentOf } from "./_processes.ts";
import { ALL_PERMISSIONS } from "../tunnel/_permissions.ts";
import {
  add,
  echo,
  exitNow,
  makeDir,
  modeOf,
  noisy as printEverything,
  pid,
  readText,
  sleep,
  spin,
  startDaemon,
  startSleeper,
  startTicker,
  throwLater,
  throwOdd,
  writeBytes,
} from "./fixtures/funcs.ts";
import { same } from "./fixtures/load_marker.ts";
import { sparseFile, throwLong, zeros } from "./fixtures/hostile_funcs.ts";

const here = new URL(".", import.meta.url).pathname;

Deno.test("a function exported by the main script runs remotely, called from top-level code", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}fixtures/main_script.ts`],
    stderr: "inherit",
  }).output();
  assert.equal(out.code, 0);
  const result = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.equal(result.doubled, 42);
  assert.notEqual(result.pid, result.controller);
  assert.match(result.refused, /not exported; export it/);
});

Deno.test("when the controller is SIGKILLed, the agent and its children are gone within 2 s", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${here}fixtures/kill_controller.ts`],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const { agent, sleeper } = JSON.parse(text);
  assert.ok(alive(agent) && alive(sleeper), "both run before the kill");
  child.kill("SIGKILL");
  await child.status;
  await gone([agent, sleeper]);
  assert.equal(alive(agent), false, "the agent outlived its controller");
  assert.equal(
    alive(sleeper),
    false,
    "the agent's child outlived the controller",
  );
  await reader.cancel();
});

Deno.test("connectTimeout bounds a transport that never answers, and kills it", async () => {
  let pid = 0;
  class Silent extends Local {
    protected override spawnSpec(): SpawnSpec {
      return { command: "sh", args: ["-c", "echo $$ >&2; exec sleep 30"] };
    }
  }
  const tun = new Silent("silent", {
    connectTimeout: 300,
    output: (line) => pid ||= Number(line),
  });
  const started = performance.now();
  const error = await tun.connect().catch((e) => e);
  const took = performance.now() - started;
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "timeout");
  assert.match(error.message, /"silent".*300 ms/);
  assert.ok(took < 1000, `took ${took} ms`);
  assert.ok(pid > 0);
  assert.ok(await gone([pid]), "the transport process was left running");
});

Deno.test("close() during a connect stops it at once, and the transport process with it", async () => {
  let pid = 0;
  class Silent extends Local {
    protected override spawnSpec(): SpawnSpec {
      return { command: "sh", args: ["-c", "echo $$ >&2; exec sleep 30"] };
    }
  }
  const tun = new Silent("silent", {
    output: (line) => pid ||= Number(line),
  });
  const connecting = tun.connect().catch((e) => e);
  while (!pid) await new Promise((r) => setTimeout(r, 10));
  const started = performance.now();
  await tun.close();
  const error = await connecting;
  const took = performance.now() - started;
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "closed");
  assert.match(
    error.message,
    /"silent": the tunnel was closed while it connected/,
  );
  assert.ok(took < 1000, `close took ${took.toFixed(0)} ms`);
  assert.ok(await gone([pid]), "the transport process was left running");
  assert.equal(tun.connected, false);
});

Deno.test("a call's signal rejects it at once while the agent is still starting", async () => {
  class Silent extends Local {
    protected override spawnSpec(): SpawnSpec {
      return { command: "sh", args: ["-c", "exec sleep 30"] };
    }
  }
  const tun = new Silent("starting", { connectTimeout: 1_500 });
  const reason = new Error("changed my mind");
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), 200);
  const started = performance.now();
  const error = await tun.callWith({ signal: controller.signal }, Date.now)
    .catch((e) => e);
  const took = performance.now() - started;
  assert.equal(error, reason);
  assert.ok(took < 1000, `rejected after ${took.toFixed(0)} ms`);
  await tun.close();
});

Deno.test("a deno path that does not exist fails with a clear ConnectError", async () => {
  const { lines, options } = capture();
  const tun = new Local("nodeno", { ...options, deno: "/no/such/deno" });
  const error = await tun.connect().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "deno");
  assert.equal(error.exitCode, 127);
  assert.match(error.message, /"nodeno".*deno not found: \/no\/such\/deno/);
  assert.match(error.message, /install deno on the target/);
  assert.ok(lines.some((l) => l.includes("deno not found")));
  assert.equal(tun.connected, false);
});

Deno.test("an env PATH without the agent script's tools fails naming the tool and PATH, not deno, and leaves no directory", async () => {
  const { lines, options } = capture();
  const tun = new Local("nopath", {
    ...options,
    env: { PATH: "/nonexistent" },
    retries: 2,
    retryDelay: 10,
  });
  // The script's cleanup looked for rm on that PATH too, and left its
  // private directory.
  const tmp = await Deno.makeTempDir();
  const error = await withEnv({ TMPDIR: tmp }, () => tun.connect())
    .catch((e) => e);
  assert.deepEqual([...Deno.readDirSync(tmp)], [], "a directory was left");
  await Deno.remove(tmp);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "agent");
  assert.match(error.message, /"nopath": the agent script exited with code/);
  assert.match(error.message, /mkfifo: not found/);
  assert.match(
    error.message,
    /mkfifo, a tool of the agent script, is not on PATH.*env option/,
  );
  assert.doesNotMatch(error.message, /deno/i);
  assert.ok(!lines.some((l) => /retry/.test(l)), "retried: " + lines);
});

Deno.test("deno refusing the agent's flags (a bad permissions.net entry) shows Deno's message, not its backtrace", async () => {
  const tun = new Local("badnet", {
    ...capture().options,
    permissions: { net: ["not a host:xx"] },
  });
  const error = await tun.connect().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "agent");
  assert.equal(error.exitCode, 1);
  assert.match(
    error.message,
    /"badnet": deno exited with code 1: invalid host 'not a host': invalid char found in FQDN; /,
  );
  assert.match(error.message, /permissions option/);
  assert.doesNotMatch(error.message, /<unknown>|backtrace|install/);
  assert.ok(!error.message.includes("\u001b"), "colour codes in the message");
});

Deno.test("a cwd that does not exist fails at once, saying so, without a deno hint", async () => {
  const { lines, options } = capture();
  const tun = new Local("nocwd", {
    ...options,
    cwd: "/nonexistent/chopsticks",
    retries: 2,
    retryDelay: 10,
  });
  const error = await tun.connect().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "agent");
  assert.equal(error.exitCode, 125);
  assert.match(error.message, /cannot enter \/nonexistent\/chopsticks; /);
  assert.match(error.message, /cwd option/);
  assert.doesNotMatch(error.message, /deno/i);
  assert.ok(!lines.some((l) => /retry/.test(l)), "retried: " + lines);
});

Deno.test("a connectTimeout too short says to raise it, not that deno is missing", async () => {
  const tun = new Local("hasty", { ...capture().options, connectTimeout: 1 });
  const error = await tun.connect().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "timeout");
  assert.match(error.message, /no answer within 1 ms; raise connectTimeout/);
  assert.doesNotMatch(error.message, /deno/i);
});

Deno.test("a deno of another major version is refused, naming both versions", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/old.js`,
      `Object.defineProperty(Deno, "version", { value: { ...Deno.version, deno: "1.46.3" } });`,
    );
    await Deno.writeTextFile(
      `${dir}/deno`,
      `#!/bin/sh\nshift\nexec ${Deno.execPath()} run --preload=${dir}/old.js "$@"\n`,
    );
    await Deno.chmod(`${dir}/deno`, 0o755);
    const tun = new Local("old", { ...capture().options, deno: `${dir}/deno` });
    const error = await tun.connect().catch((e) => e);
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.stage, "deno");
    assert.match(error.message, /1\.46\.3 on the target/);
    assert.match(
      error.message,
      new RegExp(Deno.version.deno.replaceAll(".", "\\.")),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A Local tunnel whose "login" prints `noise` on stdout first. */
function noisy(noise: string, options = {}) {
  return new (class extends Local {
    protected override spawnSpec(script: string): SpawnSpec {
      return {
        command: "sh",
        args: ["-c", `${noise}; exec sh -c "$0"`, script],
      };
    }
  })("noisy", options);
}

Deno.test("output before the handshake (a noisy login) is shown as output, not parsed", async () => {
  const { lines, options } = capture();
  await using tun = noisy(
    `echo welcome to the host; printf 'bin\\377\\376\\000ary\\n'; echo banner >&2`,
    options,
  );
  assert.equal(await tun.call(Date.now) > 0, true);
  assert.ok(lines.includes("welcome to the host"), String(lines));
  assert.ok(lines.includes("banner"));
  assert.ok(lines.some((l) => l.startsWith("bin\uFFFD\uFFFD")));
});

Deno.test("garbage instead of a handshake fails at the handshake stage", async () => {
  const tun = noisy(
    "head -c 1100000 /dev/zero | tr '\\0' x",
    capture().options,
  );
  const error = await tun.connect().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.equal(error.stage, "handshake");
  assert.match(error.message, /before the handshake/);
});

Deno.test("the agent's code and Deno's cache are kept per user on the target, without what each agent added", async () => {
  await withCacheHome(async (env, cache) => {
    const sent: number[] = [];
    for (let i = 0; i < 2; i++) {
      await using tun = new Local("cache", {
        ...capture().options,
        env,
      });
      assert.equal(await tun.call(add, 2, 3), 5);
      sent.push(tun.stats.moduleBytes);
    }
    const names = await Array.fromAsync(Deno.readDir(cache), (e) => e.name);
    const agentFiles = names.filter((n) => /^agent-[0-9a-f]{64}\.js$/.test(n));
    assert.equal(agentFiles.length, 1, `the agent's code is kept: ${names}`);
    const { size } = await Deno.stat(`${cache}/${agentFiles[0]}`);
    assert.ok(
      sent[0] > size && sent[1] < 1000,
      `the first agent got the agent's code (${size} B), the second did not: ${sent}`,
    );
    const dir = `${cache}/deno`;
    assert.ok(
      (await Deno.stat(`${dir}/dep_analysis_cache_v2`)).isFile,
      "Deno's cache databases are kept",
    );
    await assert.rejects(
      () => Deno.stat(`${dir}/v8_code_cache_v2`),
      Deno.errors.NotFound,
      "agents run without Deno's code cache",
    );
    for (const sub of ["remote/http", "gen/http"]) {
      const left = await Array.fromAsync(Deno.readDir(`${dir}/${sub}`))
        .catch(() => []);
      assert.deepEqual(
        left.map((e) => e.name).filter((n) => n.startsWith("127.0.0.1_PORT")),
        [],
        `${sub} keeps modules of closed agents`,
      );
    }
  });
});

Deno.test("Deno's cache databases on the target are reset once one passes 64 MiB", async () => {
  await withCacheHome(async (env, cache) => {
    const dir = `${cache}/deno`;
    // Named like Deno's cache databases, which Deno itself would replace
    // were it not a database.
    const big = `${dir}/test_cache_v2`;
    const options = { ...capture().options, env };
    await Deno.mkdir(dir, { recursive: true });
    // Sparse: 65 MiB long, nothing on disk.
    {
      await using file = await Deno.open(big, { write: true, create: true });
      await file.truncate(65 * 1024 * 1024);
    }
    {
      await using tun = new Local("big", options);
      assert.equal(await tun.call(add, 1, 1), 2);
    }
    assert.ok(
      (await Deno.stat(`${dir}/reset`)).isFile,
      "the agent marked the cache for a reset",
    );
    {
      await using tun = new Local("next", options);
      assert.equal(await tun.call(add, 1, 2), 3);
    }
    await assert.rejects(
      () => Deno.stat(big),
      Deno.errors.NotFound,
      "the next agent started with the databases removed",
    );
    assert.ok(
      (await Deno.stat(`${dir}/dep_analysis_cache_v2`)).isFile,
      "and made them afresh",
    );
    await assert.rejects(() => Deno.stat(`${dir}/reset`), Deno.errors.NotFound);
  });
});

/**
 * Runs `fn` with a fresh per-user cache home for agents: `env` points an
 * agent at it, `cache` is its module cache (not made yet).
 */
async function withCacheHome(
  fn: (env: Record<string, string>, cache: string) => Promise<void>,
): Promise<void> {
  const home = await Deno.makeTempDir();
  try {
    await fn({ XDG_CACHE_HOME: home }, `${home}/chopsticks/modules`);
  } finally {
    await Deno.remove(home, { recursive: true });
  }
}

/**
 * Asks `check` every 20 ms until it says yes or `ms` passed (an agent
 * prunes its cache beside its work); returns its last answer.
 */
async function eventually(
  check: () => Promise<boolean>,
  ms = 1000,
): Promise<boolean> {
  const end = Date.now() + ms;
  while (!(await check()) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return await check();
}

const daysAgo = (days: number) => new Date(Date.now() - days * 24 * 3600e3);

/**
 * Runs `fn` with a fresh per-user cache on the target (`env` points an
 * agent at it) that one agent has filled, and the name of the agent's code
 * kept there.
 */
function withFilledCache(
  fn: (
    env: Record<string, string>,
    cache: string,
    agentFile: string,
  ) => Promise<void>,
): Promise<void> {
  return withCacheHome(async (env, cache) => {
    {
      await using tun = new Local("first", { ...capture().options, env });
      assert.equal(await tun.call(add, 1, 1), 2);
    }
    const [agentFile] = (await Array.fromAsync(Deno.readDir(cache)))
      .map((e) => e.name).filter((n) => n.startsWith("agent-"));
    assert.ok(agentFile, "an agent keeps the agent's code");
    await fn(env, cache, agentFile);
  });
}

Deno.test("an agent that brings a new version of its code removes copies of other versions older than 30 days", async () => {
  await withCacheHome(async (env, cache) => {
    const name = (c: string) => `agent-${c.repeat(64)}.js`;
    await Deno.mkdir(cache, { recursive: true });
    for (const file of [name("a"), name("b"), "agent-notes.js"]) {
      await Deno.writeTextFile(`${cache}/${file}`, "export {};");
    }
    for (const file of [name("a"), "agent-notes.js"]) {
      await Deno.utime(`${cache}/${file}`, daysAgo(40), daysAgo(40));
    }
    {
      await using tun = new Local("new", { ...capture().options, env });
      assert.equal(await tun.call(add, 1, 1), 2);
    }
    let names: string[] = [];
    await eventually(async () => {
      names = (await Array.fromAsync(Deno.readDir(cache))).map((e) => e.name);
      return !names.includes(name("a"));
    });
    assert.ok(!names.includes(name("a")), "the old version is gone");
    assert.ok(names.includes(name("b")), "a recent other version is kept");
    assert.ok(names.includes("agent-notes.js"), "other files are kept");
    assert.equal(
      names.filter((n) => /^agent-[0-9a-f]{64}\.js$/.test(n)).length,
      2,
      `the agent's own copy and the recent one: ${names}`,
    );
  });
});

Deno.test("the module cache on the target drops entries written more than 30 days ago, once a day", async () => {
  await withCacheHome(async (env, cache) => {
    const plant = async (path: string, old: boolean) => {
      await Deno.mkdir(`${cache}/${path.split("/")[0]}`, { recursive: true });
      await Deno.writeTextFile(`${cache}/${path}`, "x");
      if (old) await Deno.utime(`${cache}/${path}`, daysAgo(40), daysAgo(40));
    };
    const exists = (path: string) =>
      Deno.stat(`${cache}/${path}`).then(() => true, () => false);
    const gone = async (path: string) => !(await exists(path));
    for (const [path, old] of [["i/old", true], ["b/old", true]] as const) {
      await plant(path, old);
    }
    await plant("i/new", false);
    await plant("b/new", false);
    {
      // A fresh cache: this agent adds to it, and so prunes it.
      await using tun = new Local("prune", { ...capture().options, env });
      assert.equal(await tun.call(add, 1, 1), 2);
    }
    await eventually(() => gone("b/old"));
    assert.equal(await exists("i/old"), false, "an old index entry is gone");
    assert.equal(await exists("b/old"), false, "an old body is gone");
    assert.ok(await exists("i/new") && await exists("b/new"), "new ones stay");
    assert.ok(await exists("pruned"), "the day's pruning is marked");
    // The same day, an agent that adds to the cache does not prune again.
    await plant("b/old2", true);
    {
      await using tun = new Local("again", { ...capture().options, env });
      assert.equal(await tun.call(same, 5), 5, "a module not cached yet");
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await exists("b/old2"), "pruned at most once a day");
    // A pruning cut off (its agent ended) left its claim on the mark: a day
    // less ten minutes before it began. Ten minutes on, an agent takes it up.
    const claimed = (minutesAgo: number) =>
      new Date(Date.now() - 24 * 3600e3 + 10 * 60e3 - minutesAgo * 60e3);
    // Each agent below must add to the cache: its index is emptied first.
    const forget = async () => {
      for await (const e of Deno.readDir(`${cache}/i`)) {
        if (e.name !== "new") await Deno.remove(`${cache}/i/${e.name}`);
      }
    };
    await Deno.utime(`${cache}/pruned`, claimed(5), claimed(5));
    await forget();
    {
      await using tun = new Local("claimed", { ...capture().options, env });
      assert.equal(await tun.call(same, 6), 6);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(await exists("b/old2"), "not while a pruning claims the mark");
    await Deno.utime(`${cache}/pruned`, claimed(11), claimed(11));
    await plant("b/old3", true);
    await forget();
    {
      await using tun = new Local("resumed", { ...capture().options, env });
      assert.equal(await tun.call(same, 7), 7);
    }
    await eventually(() => gone("b/old3"));
    assert.equal(await exists("b/old3"), false, "taken up again");
    const mark = (await Deno.stat(`${cache}/pruned`)).mtime!.getTime();
    assert.ok(Date.now() - mark < 60e3, "the finished pruning is marked now");
  });
});

Deno.test("the module cache on the target is cut to 384 MiB of bodies, oldest first, once past 512 MiB", async () => {
  await withCacheHome(async (env, cache) => {
    const MiB = 1024 * 1024;
    // Sparse files: their size counts, not the disk they take.
    const plant = async (name: string, size: number, days: number) => {
      await Deno.mkdir(`${cache}/b`, { recursive: true });
      const file = await Deno.open(`${cache}/b/${name}`, {
        write: true,
        create: true,
      });
      await file.truncate(size);
      file.close();
      await Deno.utime(`${cache}/b/${name}`, daysAgo(days), daysAgo(days));
    };
    const exists = (name: string) =>
      Deno.stat(`${cache}/b/${name}`).then(() => true, () => false);
    await plant("oldest-small", 10 * MiB, 20);
    await plant("older-big", 300 * MiB, 10);
    await plant("newer-big", 300 * MiB, 1);
    {
      // A fresh cache: this agent adds to it, and so prunes it.
      await using tun = new Local("cap", { ...capture().options, env });
      assert.equal(await tun.call(add, 1, 1), 2);
    }
    await eventually(async () => !(await exists("older-big")));
    // 610 MiB: the oldest go until at most 384 MiB are left.
    assert.equal(await exists("oldest-small"), false, "the oldest is gone");
    assert.equal(await exists("older-big"), false, "the next oldest too");
    assert.ok(await exists("newer-big"), "the newest stays");
    let total = 0;
    for await (const e of Deno.readDir(`${cache}/b`)) {
      total += (await Deno.stat(`${cache}/b/${e.name}`)).size;
    }
    assert.ok(total <= 384 * MiB, `${total} bytes are left`);
  });
});

Deno.test("the daily pruning removes what Deno cached for agents that did not, unless their port is in use", async () => {
  await withCacheHome(async (env, cache) => {
    const deno = `${cache}/deno`;
    const freePort = () => {
      const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      probe.close();
      return probe.addr.port;
    };
    // What agents killed with their scripts left: their ports are free.
    const [gone, recent] = [freePort(), freePort()];
    // A long-lived agent's: its port is in use.
    const live = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const plant = async (path: string, days: number) => {
      await Deno.mkdir(`${deno}/${path}/pkg`, { recursive: true });
      await Deno.utime(`${deno}/${path}`, daysAgo(days), daysAgo(days));
    };
    const exists = (path: string) =>
      Deno.stat(`${deno}/${path}`).then(() => true, () => false);
    const orphans = [
      `npm/${gone}`,
      `remote/http/127.0.0.1_PORT${gone}`,
      `gen/http/127.0.0.1_PORT${gone}`,
    ];
    const kept = [
      `npm/${live.addr.port}`,
      `gen/http/127.0.0.1_PORT${live.addr.port}`,
      `npm/${recent}`,
      "npm/registry.npmjs.org",
    ];
    try {
      for (const path of [...orphans, ...kept]) {
        await plant(path, path === `npm/${recent}` ? 0 : 2);
      }
      {
        // A fresh cache: this agent adds to it, and so prunes it.
        await using tun = new Local("orphans", { ...capture().options, env });
        assert.equal(await tun.call(add, 1, 1), 2);
      }
      await eventually(async () => !(await exists(orphans[2])));
      for (const path of orphans) {
        assert.equal(await exists(path), false, `${path} is left`);
      }
      for (const path of kept) assert.ok(await exists(path), `${path} went`);
    } finally {
      live.close();
    }
  });
});

Deno.test("an agent whose loopback port is taken starts on another, and leaves the files of the agent on it alone", async () => {
  await withCacheHome(async (env, cache) => {
    const gen = `${cache}/deno/gen/http`;
    const real = Math.random;
    // The controller picks the port at random: both agents are made to pick
    // the same one first.
    const pick = 0.5;
    try {
      Math.random = () => pick;
      await using first = new Local("first", { ...capture().options, env });
      assert.equal(await first.call(add, 1, 1), 2);
      Math.random = real;
      // Deno keeps what it transpiled for the first agent under its port.
      const before = await Array.fromAsync(Deno.readDir(gen), (e) => e.name);
      assert.equal(before.length, 1, `${before}`);
      let picks = 0;
      Math.random = () => picks++ === 0 ? pick : real();
      await using second = new Local("second", { ...capture().options, env });
      assert.equal(await second.call(add, 2, 2), 4);
      Math.random = real;
      assert.ok(picks >= 2, "the second agent tried the taken port first");
      const after = await Array.fromAsync(Deno.readDir(gen), (e) => e.name);
      assert.ok(after.includes(before[0]), `the first agent's files: ${after}`);
      assert.equal(await first.call(add, 3, 3), 6);
    } finally {
      Math.random = real;
    }
  });
});

Deno.test("a scoped agent cannot write the per-user caches that later agents load code from", async () => {
  await withFilledCache(async (env, cache, agentFile) => {
    await using tun = new Local("scoped", {
      ...capture().options,
      env,
      permissions: { read: true },
    });
    assert.equal(await tun.call(add, 2, 2), 4, "it runs, from the cache");
    for (const path of [`${cache}/${agentFile}`, `${cache}/deno/x`]) {
      const error = await tun.call(writeBytes, path, new Uint8Array([1]))
        .catch((e) => e);
      assert.ok(error instanceof RemoteError, `${path}: ${error}`);
      assert.equal(error.remoteName, "NotCapable", path);
    }
    const code = await Deno.readTextFile(`${cache}/${agentFile}`);
    assert.ok(code.length > 1000, "the agent's code is untouched");
  });
});

Deno.test("a module that imports by absolute path works on the agent", async () => {
  const dir = new URL("./fixtures/tmp/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  const file = new URL(`absolute_${crypto.randomUUID()}.ts`, dir);
  const greeting = new URL("./fixtures/lib/greeting.ts", import.meta.url);
  await Deno.writeTextFile(
    file,
    `import { greeting } from ${JSON.stringify(greeting.pathname)};
export function hello(name: string): string { return greeting(name); }\n`,
  );
  try {
    const mod = await import(file.href);
    await using tun = new Local("absolute", capture().options);
    assert.equal(await tun.call(mod.hello, "web1"), mod.hello("web1"));
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("a module that imports this package by its own name works on the agent", async () => {
  const { throughOwnName } = await import("./fixtures/self_import.ts");
  await using tun = new Local("self", capture().options);
  assert.deepEqual(await tun.call(throughOwnName), [Deno.hostname(), false]);
});

Deno.test("the README's quick start example runs as written, through the package's own name", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "examples/hello.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const lines = stdout.trim().split("\n");
  assert.match(lines[0], /^Time on localhost: \d{13}$/);
  assert.match(lines[1], /^Hello world, from pid \d+ on /);
  assert.equal(lines[2], `deno ${Deno.version.deno} on ${Deno.hostname()}`);
});

Deno.test("remote code creates files with the umask the target gave the agent script, not the script's own", async () => {
  // A Local agent's script inherits this process's umask.
  const out = await new Deno.Command("sh", { args: ["-c", "umask"] }).output();
  const umask = parseInt(new TextDecoder().decode(out.stdout).trim(), 8);
  assert.notEqual(umask, 0o077, "run this test with a umask other than 077");
  const dir = await Deno.makeTempDir();
  try {
    await using tun = new Local("umask", capture().options);
    await tun.call(writeBytes, `${dir}/made.txt`, new Uint8Array([1]));
    await tun.call(makeDir, `${dir}/sub`);
    assert.equal(await tun.call(modeOf, `${dir}/made.txt`), 0o666 & ~umask);
    assert.equal(await tun.call(modeOf, `${dir}/sub`), 0o777 & ~umask);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a function whose module is outside the project is refused before it is sent, saying how to allow it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-outside-" });
  try {
    await Deno.writeTextFile(
      `${dir}/lib.ts`,
      "export function outside(): number { return 42; }\n",
    );
    const { outside } = await import(`file://${dir}/lib.ts`);
    {
      await using tun = new Local("outside", capture().options);
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          () => tun.call(outside),
          (e: Error) =>
            e instanceof TypeError &&
            e.message.includes(`${dir}/lib.ts is outside`) &&
            /`project`/.test(e.message),
        );
      }
    }
    await using allowed = new Local("allowed", {
      ...capture().options,
      project: dir,
    });
    assert.equal(await allowed.call(outside), 42);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("what a host prints reaches the controller's stderr unable to drive its terminal", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const code = `import { Local } from "${root}mod.ts";
import { printEscapes } from "${root}tests/fixtures/funcs.ts";
await using tun = new Local("esc");
await tun.call(printEscapes);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", `${root}deno.json`, code],
    cwd: root,
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, stderr);
  assert.ok(
    stderr.includes(
      "[esc] ^[]0;pwned^Gtitle ^[[2Jcleared \x1b[31mred\x1b[0m\x1b[0m\n",
    ),
    JSON.stringify(stderr),
  );
});

Deno.test("a damaged copy of the agent's code on the target is replaced, and the agent starts", async () => {
  await withFilledCache(async (env, cache, name) => {
    const good = await Deno.readFile(`${cache}/${name}`);
    for (const damage of [good.subarray(0, 100), good.map(() => 0x3b)]) {
      await Deno.writeFile(`${cache}/${name}`, damage);
      await using tun = new Local("again", { ...capture().options, env });
      assert.equal(await tun.call(add, 2, 2), 4, `damaged: ${damage.length} B`);
      assert.deepEqual(
        await Deno.readFile(`${cache}/${name}`),
        good,
        "the copy was written again",
      );
    }
  });
});

/**
 * Runs `fn` with a tunnel whose agent writes `mark` when it loads
 * `fixtures/load_marker.ts`.
 */
async function withLoadMark(
  fn: (tun: Local, mark: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const mark = `${dir}/loaded`;
    await using tun = new Local("load", {
      ...capture().options,
      env: { CHOPSTICKS_TEST_LOAD_MARK: mark },
    });
    await fn(tun, mark);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a call refused for its signal or its arguments starts no agent", async () => {
  await withLoadMark(async (tun, mark) => {
    await assert.rejects(
      tun.callWith({ signal: AbortSignal.abort() }, same, 1),
      { name: "AbortError" },
    );
    await assert.rejects(tun.call(same, () => 1), /args\[0\]/);
    assert.equal(tun.connected, false);
    await assert.rejects(Deno.stat(mark), Deno.errors.NotFound);
  });
});

Deno.test("a call whose function cannot be located, on a tunnel that cannot connect, only rejects", async () => {
  const tun = new Local("nowhere", { deno: "/nonexistent/deno" });
  const error = await tun.call(() => 1).catch((e) => e);
  assert.match(String(error), /export/);
  // The failed connection must not surface as an unhandled rejection.
  await new Promise((r) => setTimeout(r, 300));
  await tun.close();
});

Deno.test("when the agent dies, pending calls reject at once, though a daemon it started lives on", async () => {
  await using tun = new Local("daemon", capture().options);
  const daemon = await tun.call(startDaemon);
  try {
    const pending = tun.call(sleep, 60_000, "late").catch((e) => e);
    const start = performance.now();
    tun.call(exitNow, 3).catch(() => {});
    const error = await pending;
    assert.match(String(error), /exited with code 3/);
    // The daemon holds no descriptor of the channel: its end is the agent's.
    assert.ok(performance.now() - start < 1500, "rejected without waiting");
    assert.ok(alive(daemon), "the daemon still runs");
  } finally {
    Deno.kill(daemon, "SIGKILL");
  }
});

Deno.test("a remote throw of a value that is not an Error fails that call only, with a RemoteError", async () => {
  await using tun = new Local("odd", capture().options);
  const agent = await tun.call(pid);
  const said: Record<string, RegExp> = {
    "null-prototype": /^\[object Object\]$/,
    symbol: /cannot be shown as text: Cannot convert a Symbol value/,
    getter: /cannot be shown as text: no message today/,
  };
  for (const [kind, message] of Object.entries(said)) {
    const beside = tun.call(sleep, 300, kind).catch((e) => e);
    // Bounded: on the previous code the call never settled (the controller
    // could not make a message of a null-prototype object), or the agent
    // died (it could not make one of the others).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const error = await Promise.race([
      tun.call(throwOdd, kind).catch((e) => e),
      new Promise((r) => timer = setTimeout(() => r("still pending"), 5_000)),
    ]);
    clearTimeout(timer);
    assert.ok(error instanceof RemoteError, `${kind}: ${error}`);
    assert.match(error.message, message);
    assert.equal(await beside, kind, `${kind}: a call beside it goes on`);
  }
  assert.equal(await tun.call(pid), agent, "the same agent answers");
});

Deno.test("an agent that dies of an uncaught error says which in the error of the calls it leaves", async () => {
  await using tun = new Local("uncaught", capture().options);
  const pending = tun.call(sleep, 10_000, 1).catch((e) => e);
  assert.equal(await tun.call(throwLater, 50), "returned");
  const error = await pending;
  assert.ok(error instanceof ConnectionLostError, String(error));
  // Not the last line it printed: a frame of the stack, in colour codes.
  assert.match(
    error.message,
    /exited with code 1: error: Uncaught Error: thrown by a timer after the call$/,
  );
  assert.ok(!error.message.includes(String.fromCharCode(27)), error.message);
  assert.equal(await tun.call(add, 1, 2), 3, "the next call reconnects");
});

Deno.test("once close() resolves, a daemon the agent started that keeps printing is no longer read", async () => {
  const { lines, options } = capture();
  const tun = new Local("ticker", options);
  const ticker = await tun.call(startTicker);
  try {
    while (!lines.includes("tick")) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await tun.close();
    const seen = lines.length;
    await new Promise((r) => setTimeout(r, 500));
    // On the previous code its lines kept coming, and the read of the
    // agent script's stderr, which the daemon holds, kept the program
    // from ever exiting (the test's op sanitizer saw it).
    // (The daemon's next line then meets a closed pipe: it ends, as what
    // the agent started does when the tunnel closes.)
    assert.equal(lines.length, seen, `lines after close: ${lines.slice(seen)}`);
  } finally {
    try {
      Deno.kill(-ticker, "SIGKILL");
    } catch {
      // It ended already.
    }
  }
});

Deno.test("the call that starts an agent has its module loading while the agent starts", async () => {
  await withLoadMark(async (tun, mark) => {
    // This call is cancelled while the agent starts, so it never reaches
    // the agent; but the agent was told to load the module it names.
    const cancel = new AbortController();
    const cancelled = tun.callWith({ signal: cancel.signal }, same, 1);
    cancel.abort();
    await assert.rejects(cancelled, { name: "AbortError" });
    let seen = "";
    for (let i = 0; i < 100 && seen === ""; i++) {
      seen = await tun.call(readText, mark).catch(() => "");
      if (seen === "") await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(seen, "loaded");
    assert.equal(await tun.call(same, 7), 7, "the module, loaded once, works");
  });
});

Deno.test("an agent with every permission writes the channel itself; a scoped one through a relayed FIFO; printed output stays off it in both", async () => {
  const scoped = { ...ALL_PERMISSIONS, import: false };
  for (const permissions of [undefined, scoped]) {
    const mark = `chopsticks-mark-${crypto.randomUUID()}`;
    const { lines, options } = capture();
    await using tun = new Local("out", {
      ...options,
      permissions,
      env: { CHOPSTICKS_TEST_MARK: mark },
    });
    assert.equal(await tun.call(printEverything), "done");
    assert.equal(await tun.call(add, 1, 2), 3, "the channel survived");
    const relays = marked(mark).filter((p) => /: (\/\S*\/)?cat$/.test(p));
    assert.equal(relays.length, permissions ? 1 : 0, relays.join("\n"));
    await tun.close();
    assert.ok(lines.includes("child stdout"), lines.join("\n"));
    assert.ok(lines.includes("stdout write"), lines.join("\n"));
  }
});

/**
 * Writes into `dir` a wrapper for each tool named in `slow`, which waits
 * the seconds given, then runs the real tool (found on PATH now).
 */
async function slowTools(
  dir: string,
  slow: [tool: string, seconds: number][],
): Promise<void> {
  for (const [name, delay] of slow) {
    const real = new TextDecoder().decode(
      (await new Deno.Command("sh", { args: ["-c", `command -v ${name}`] })
        .output()).stdout,
    ).trim();
    await Deno.writeTextFile(
      `${dir}/${name}`,
      `#!/bin/sh\nsleep ${delay}\nexec ${real} "$@"\n`,
    );
    await Deno.chmod(`${dir}/${name}`, 0o755);
  }
}

/**
 * Starts an agent whose deno fails at once, with the named tools slowed
 * down by a wrapper on PATH; returns the connect error and how long it took,
 * once every process of the agent script is gone (or 3 s passed).
 */
async function dyingAgent(
  slow: [tool: string, seconds: number][],
  permissions?: Permissions,
): Promise<{ error: unknown; ms: number; left: string[] }> {
  const dir = await Deno.makeTempDir();
  const mark = `chopsticks-mark-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(`${dir}/deno`, "#!/bin/sh\nexit 3\n");
    await Deno.chmod(`${dir}/deno`, 0o755);
    await slowTools(dir, slow);
    const tun = new Local("dies", {
      ...capture().options,
      deno: `${dir}/deno`,
      permissions,
      connectTimeout: 10_000,
      env: {
        CHOPSTICKS_TEST_MARK: mark,
        PATH: `${dir}:${Deno.env.get("PATH")}`,
      },
    });
    const start = performance.now();
    const error = await tun.call(add, 1, 2).catch((e) => e);
    const ms = performance.now() - start;
    await tun.close();
    const deadline = Date.now() + 3000;
    while (marked(mark).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return { error, ms, left: marked(mark) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a tunnel closed while its agent script makes its private directory leaves no directory", async () => {
  // The script's signal came while it waited for mktemp, before it knew
  // the directory's name: its exit left the directory.
  const bin = await Deno.makeTempDir();
  const tmp = await Deno.makeTempDir();
  try {
    await slowTools(bin, [["mktemp", 0.8]]);
    await withEnv(
      { PATH: `${bin}:${Deno.env.get("PATH")}`, TMPDIR: tmp },
      async () => {
        const tun = new Local("early", { output: () => {} });
        const call = tun.call(add, 1, 2).catch((e) => e);
        await new Promise((r) => setTimeout(r, 400));
        await tun.close();
        assert.ok(await call instanceof ConnectError);
      },
    );
    const deadline = Date.now() + 3000;
    while (Deno.readDirSync(tmp).some(() => true) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name), []);
  } finally {
    await Deno.remove(bin, { recursive: true });
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("an agent that dies before it opens its channel leaves no input relay behind, even a slow one", async () => {
  // dd reaches the input FIFO only after the agent is gone, and rm is
  // slower still (the FIFO is still there when it does).
  const { error, left } = await dyingAgent([["dd", 0.3], ["rm", 0.6]]);
  assert.ok(error instanceof ConnectError, String(error));
  assert.deepEqual(left, [], "processes left");
});

Deno.test("a scoped agent that dies before it opens its channel fails at once, and leaves no output relay behind", async () => {
  // cat reaches the output FIFO only after the agent is gone.
  const { error, ms, left } = await dyingAgent([["cat", 0.5]], {
    read: true,
  });
  assert.ok(error instanceof ConnectError, String(error));
  assert.match(String(error), /exited with code 3/);
  assert.ok(ms < 5_000, `it waited ${ms} ms for a relay`);
  assert.deepEqual(left, [], "processes left");
});

/** The pid of the `cat` relaying the output of the agent marked `mark`. */
function outputRelay(mark: string): number | undefined {
  const line = marked(mark).find((p) => /^\d+: (\/\S*\/)?cat$/.test(p));
  return line === undefined ? undefined : Number(line.split(":")[0]);
}

Deno.test("a scoped agent whose output relay is killed mid-call is stopped at once with its children; the call rejects and the next one reconnects", async () => {
  const mark = `chopsticks-mark-${crypto.randomUUID()}`;
  const { lines, options } = capture();
  await using tun = new Local("relay", {
    ...options,
    permissions: { read: true, run: true },
    // Nothing but the relay's end may end the call.
    liveness: false,
    env: { CHOPSTICKS_TEST_MARK: mark },
  });
  const agent = await tun.call(pid);
  const sleeper = await tun.call(startSleeper);
  const cat = outputRelay(mark);
  assert.ok(cat, marked(mark).join("\n"));
  const pending = tun.call(sleep, 10_000, "late").catch((e) => e);
  await new Promise((r) => setTimeout(r, 100));
  const { outcome: error, took } = await afterKill(cat, pending);
  assert.ok(error instanceof ConnectionLostError, String(error));
  assert.match(
    error.message,
    /exited with code \d+: chopsticks: the agent's output relay \(cat\) ended with status 137, so the agent was stopped/,
  );
  assert.ok(took < 1_500, `the call rejected after ${took.toFixed(0)} ms`);
  assert.ok(await gone([agent, sleeper]), "the agent or its child still runs");
  assert.ok(
    await gone(marked(mark).map((p) => Number(p.split(":")[0]))),
    `processes left: ${marked(mark).join(", ")}`,
  );
  assert.ok(lines.some((l) => /output relay \(cat\) ended/.test(l)));
  assert.notEqual(await tun.call(pid), agent, "the next call reconnects");
});

Deno.test("a scoped agent whose output relay is killed while it connects fails at once, and says why", async () => {
  const dir = await Deno.makeTempDir();
  const mark = `chopsticks-mark-${crypto.randomUUID()}`;
  try {
    // A deno that takes 3 s to start: the relay is killed before.
    await Deno.writeTextFile(
      `${dir}/deno`,
      `#!/bin/sh\nsleep 3\nexec '${Deno.execPath()}' "$@"\n`,
    );
    await Deno.chmod(`${dir}/deno`, 0o755);
    const tun = new Local("relay", {
      ...capture().options,
      deno: `${dir}/deno`,
      permissions: { read: true },
      connectTimeout: 8_000,
      env: { CHOPSTICKS_TEST_MARK: mark },
    });
    const connecting = tun.connect().catch((e) => e);
    let cat: number | undefined;
    for (const end = Date.now() + 2_500; Date.now() < end && !cat;) {
      await new Promise((r) => setTimeout(r, 5));
      cat = outputRelay(mark);
    }
    assert.ok(cat, "no output relay");
    const start = performance.now();
    Deno.kill(cat, "SIGKILL");
    const error = await connecting;
    const took = performance.now() - start;
    await tun.close();
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.stage, "agent", error.message);
    assert.match(
      error.message,
      /^Cannot connect to "relay": the agent script exited with code \d+: chopsticks: the agent's output relay \(cat\) ended with status 137, so the agent was stopped; something on the target killed the relay/,
    );
    assert.ok(took < 2_000, `it failed after ${took.toFixed(0)} ms`);
    assert.ok(
      await gone(marked(mark).map((p) => Number(p.split(":")[0]))),
      `processes left: ${marked(mark).join(", ")}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("relays stopped on the target (SIGSTOP, never continued) are gone once the agent is declared lost", async () => {
  // The input relay (dd) of an agent with every permission, then the
  // output relay (cat) of a scoped one.
  const relays: [string, Permissions | undefined][] = [
    ["dd", undefined],
    ["cat", { read: true }],
  ];
  for (const [relay, permissions] of relays) {
    const mark = `chopsticks-mark-${crypto.randomUUID()}`;
    await using tun = new Local("stopped", {
      ...capture().options,
      permissions,
      liveness: { interval: 100, timeout: 1_000 },
      env: { CHOPSTICKS_TEST_MARK: mark },
    });
    const agent = await tun.call(pid);
    const line = marked(mark).find((p) =>
      new RegExp(`^\\d+: (\\/\\S*\\/)?${relay}( |$)`).test(p)
    );
    assert.ok(line, `no ${relay}: ${marked(mark).join(", ")}`);
    const stopped = Number(line.split(":")[0]);
    try {
      Deno.kill(stopped, "SIGSTOP");
      const error = await tun.call(sleep, 10_000, 1).catch((e) => e);
      assert.ok(error instanceof ConnectionLostError, `${relay}: ${error}`);
      assert.match(error.message, /stopped answering/);
      // On the previous code the stopped relay stayed, holding the FIFO.
      assert.ok(
        await gone(marked(mark).map((p) => Number(p.split(":")[0]))),
        `${relay}: processes left: ${marked(mark).join(", ")}`,
      );
      assert.notEqual(await tun.call(pid), agent, "the next call reconnects");
    } finally {
      if (alive(stopped)) Deno.kill(stopped, "SIGKILL");
    }
  }
});

Deno.test("the agent script, when it is sent SIGTERM, kills a hung agent at once", async () => {
  await using tun = new Local("term", capture().options);
  const agent = await tun.call(pid);
  const script = parentOf(agent);
  tun.call(spin, 5_000).catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  const start = performance.now();
  Deno.kill(script, "SIGTERM");
  // Not after the second the stdin relay gives a hung agent.
  assert.ok(await gone([agent], 700), "the agent still runs");
  assert.ok(performance.now() - start < 700);
});

Deno.test("close() of an agent hung while a put fills its input stops it, and its partial file goes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await sparseFile(`${dir}/big`, 1024 ** 3);
    const tun = new Local("hung", { ...capture().options, liveness: false });
    const agent = await tun.call(pid);
    tun.put(`${dir}/big`, `${dir}/copy`).catch(() => {});
    while (
      !Array.from(Deno.readDirSync(dir)).some((e) => e.name.endsWith(".tmp"))
    ) {
      await new Promise((r) => setTimeout(r, 5));
    }
    // The agent stops reading: the input relay blocks, and never sees the
    // controller close it.
    tun.call(spin, 30_000).catch(() => {});
    await new Promise((r) => setTimeout(r, 500));
    await tun.close();
    assert.ok(await gone([agent], 2000), "the hung agent outlived close()");
    assert.deepEqual(Array.from(Deno.readDirSync(dir), (e) => e.name), ["big"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("close() leaves no process of the agent script behind, not even its timer", async () => {
  const mark = `chopsticks-mark-${crypto.randomUUID()}`;
  for (let i = 0; i < 3; i++) {
    const tun = new Local("gone", {
      ...capture().options,
      env: { CHOPSTICKS_TEST_MARK: mark },
    });
    assert.equal(await tun.call(add, 1, 2), 3);
    await tun.close();
    // Every process the script starts inherits the mark.
    assert.deepEqual(marked(mark), [], "processes left after close()");
  }
});

Deno.test("environment variables cannot change what the agent script does", async () => {
  const victim = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${victim}/keep.txt`, "precious");
    // Names the script once used for its own variables: its directory
    // (which it removes at exit), its cache, the deno it runs.
    const env = { d: victim, k: victim, c: victim, p: "1", D: "/bin/false" };
    {
      await using tun = new Local("env", { ...capture().options, env });
      assert.equal(await tun.call(add, 2, 3), 5);
      assert.equal(await tun.call(Deno.env.get, "d"), victim);
    }
    assert.equal(await Deno.readTextFile(`${victim}/keep.txt`), "precious");
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(victim))).map((e) => e.name),
      ["keep.txt"],
    );
  } finally {
    await Deno.remove(victim, { recursive: true });
  }
});

Deno.test("a value over the 64 MiB a message holds fails its call only: the tunnel and a call in flight go on", async () => {
  await using tun = new Local("big");
  const agent = await tun.call(pid);
  const slow = tun.call(sleep, 300, "slow");
  const over = 64 * 1024 * 1024 + 1;
  // Arguments: refused here, before anything is sent.
  await assert.rejects(
    () => tun.call(echo, new Uint8Array(over)),
    (e: Error) =>
      e instanceof RangeError &&
      /^Cannot send args: it takes \d+ bytes, over the 64 MiB a message may hold; send big data as a file/
        .test(e.message),
  );
  // A result, and an error, too big to come back: that call fails.
  await assert.rejects(
    () => tun.call(zeros, over),
    (e: Error) =>
      e instanceof RemoteError && e.remoteName === "RangeError" &&
      /^Cannot send result: it takes \d+ bytes/.test(e.message),
  );
  await assert.rejects(
    () => tun.call(throwLong, over),
    (e: Error) =>
      e instanceof RemoteError && e.remoteName === "RangeError" &&
      /^Cannot send error: it takes \d+ bytes/.test(e.message),
  );
  assert.equal(await slow, "slow");
  // Just under the limit still goes both ways, on the same agent.
  const under = 64 * 1024 * 1024 - 64;
  assert.equal((await tun.call(zeros, under)).length, under);
  assert.equal(await tun.call(pid), agent);
});

Deno.test('closing a tunnel while deno: "upload" uploads stops the upload at once and leaves no part of it', async () => {
  // The step's cat starts a second late: the upload is under way, its
  // part file made, when the tunnel is closed.
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/bin`);
  await slowTools(`${dir}/bin`, [["cat", 1]]);
  const cache = `${dir}/cache/chopsticks`;
  // The part left by an upload whose step was killed (its pid is gone) is
  // removed by the next.
  await Deno.mkdir(cache, { recursive: true });
  const ended = new Deno.Command("true").spawn();
  await ended.status;
  const stale = `.deno-0.0.0-x.${ended.pid}.part`;
  await Deno.writeTextFile(`${cache}/${stale}`, "x");
  const listed = () => {
    try {
      return [...Deno.readDirSync(cache)].map((e) => e.name);
    } catch {
      return [];
    }
  };
  try {
    await withEnv({
      PATH: `${dir}/bin:${Deno.env.get("PATH")}`,
      XDG_CACHE_HOME: `${dir}/cache`,
    }, async () => {
      const tun = new Local("upload", {
        deno: "upload",
        connectTimeout: 20_000,
        output: () => {},
      });
      const call = tun.call(add, 1, 2).catch((e) => e);
      const deadline = Date.now() + 10_000;
      while (!listed().some((n) => n.endsWith(".part") && n !== stale)) {
        assert.ok(Date.now() < deadline, "the upload did not begin");
        await new Promise((r) => setTimeout(r, 20));
      }
      const start = performance.now();
      await tun.close();
      const took = performance.now() - start;
      const error = await call;
      assert.ok(error instanceof ConnectError, String(error));
      assert.equal(error.stage, "closed");
      assert.match(
        error.message,
        /closed while it connected \(uploading deno\)/,
      );
      assert.ok(took < 5_000, `close() took ${took.toFixed(0)} ms`);
      // Neither the part nor a whole copy is left in the cache, nor the
      // part of the killed upload.
      assert.deepEqual(listed(), []);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('a deno: "upload" step that stops reading fails at its connectTimeout and is stopped', async () => {
  // The step asks for the upload, then reads nothing and lingers.
  class Stalled extends Local {
    protected override spawnSpec(script: string): SpawnSpec {
      const marker = /chopsticks-upload-[0-9a-f]+/.exec(script)?.[0];
      if (!marker) return super.spawnSpec(script);
      return {
        command: "sh",
        args: [
          "-c",
          `echo "${marker} need $(uname -s) $(uname -m) /nonexistent/deno"; exec sleep 30`,
        ],
      };
    }
  }
  const tun = new Stalled("stalled", {
    deno: "upload",
    connectTimeout: 1_000,
    output: () => {},
  });
  const start = performance.now();
  const error = await tun.call(add, 1, 2).catch((e) => e);
  const took = performance.now() - start;
  await tun.close();
  assert.ok(error instanceof ConnectError, String(error));
  assert.match(error.message, /the upload of deno stopped/);
  // It took the whole sleep (30 s) before: nothing stopped the step.
  assert.ok(took < 3_000, `it failed after ${took.toFixed(0)} ms`);
});
