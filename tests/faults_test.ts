/**
 * Faults on the way: the agent killed mid-call, the ssh client killed
 * mid-transfer, the container stopped or killed mid-call, a disk that
 * fills. Every pending operation must reject at once with a clear error,
 * nothing partial may be left at a destination, and the next call on the
 * same tunnel must reconnect cleanly.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConnectionLostError, Docker, Local, Tunnel } from "../mod.ts";
import {
  add,
  list,
  pid,
  readBytes,
  removeAll,
  sleep,
  tempDir,
  writeBytes,
} from "./fixtures/funcs.ts";
import { sparseFile } from "./fixtures/hostile_funcs.ts";
import { hostTest, sh } from "./_hosts.ts";
import { children } from "./_processes.ts";

const MiB = 1024 * 1024;
/** Pending operations must settle within this long after the fault. */
const AT_ONCE_MS = 3_000;
const quiet = { output: () => {}, connectTimeout: 15_000 };

/**
 * Waits for every operation in `pending` to reject; each must within
 * AT_ONCE_MS of `since`, with a ConnectionLostError (or an error caused
 * by one).
 */
async function allRejectAtOnce(
  pending: Promise<unknown>[],
  since: number,
): Promise<Error[]> {
  const results = await Promise.allSettled(pending);
  const took = performance.now() - since;
  const errors: Error[] = [];
  for (const [i, r] of results.entries()) {
    assert.equal(r.status, "rejected", `operation ${i} resolved`);
    const e = (r as PromiseRejectedResult).reason as Error;
    const lost = e instanceof ConnectionLostError ||
      e.cause instanceof ConnectionLostError;
    assert.ok(lost, `operation ${i}: ${e?.name}: ${e?.message}`);
    errors.push(e);
  }
  assert.ok(took < AT_ONCE_MS, `they settled ${took.toFixed(0)} ms later`);
  return errors;
}

/** Names in `dir` other than `keep`: partial files or temporary ones. */
function leftovers(names: string[], keep: string[] = []): string[] {
  return names.filter((n) => !keep.includes(n));
}

Deno.test("faults: SIGKILL of the agent mid-call and mid-put rejects everything at once; the next call reconnects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-fault-" });
  try {
    await sparseFile(`${dir}/src.bin`, 1024 * MiB);
    await using tun = new Local("victim", quiet);
    const victim = await tun.call(pid);
    const pending = [
      tun.call(sleep, 20_000, 1),
      tun.call(sleep, 20_000, 2),
      tun.callWith({ timeout: 60_000 }, sleep, 20_000, 3),
      tun.put(`${dir}/src.bin`, `${dir}/dst.bin`),
    ];
    // The put takes about a second here: kill while it runs.
    await new Promise((r) => setTimeout(r, 150));
    const killed = performance.now();
    Deno.kill(victim, "SIGKILL");
    const errors = await allRejectAtOnce(pending, killed);
    assert.match(errors[0].message, /"victim".*exited with code/);
    assert.equal(tun.connected, false);
    const next = await tun.call(pid);
    assert.notEqual(next, victim, "a fresh agent answers");
    assert.equal(await tun.call(add, 2, 2), 4);
    // The destination was never created. (A SIGKILLed agent cannot remove
    // its temporary file; see below.)
    assert.ok(!(await tun.call(list, dir)).includes("dst.bin"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "faults: an agent SIGKILLed mid-put leaves no temporary file beside the destination",
  // A SIGKILLed agent cannot run its cleanup: the agent script removes the
  // temporary files the agent listed.
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-fault-" });
    try {
      await sparseFile(`${dir}/src.bin`, 1024 * MiB);
      await using tun = new Local("victim", quiet);
      const victim = await tun.call(pid);
      const put = tun.put(`${dir}/src.bin`, `${dir}/dst.bin`);
      await new Promise((r) => setTimeout(r, 300));
      Deno.kill(victim, "SIGKILL");
      await allRejectAtOnce([put], performance.now());
      assert.deepEqual(leftovers(await tun.call(list, dir), ["src.bin"]), []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("faults: an agent SIGKILLed mid-put with no remote path leaves nothing in its TMPDIR", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-fault-" });
  try {
    await sparseFile(`${dir}/src.bin`, 1024 * MiB);
    await using tun = new Local("victim", { ...quiet, env: { TMPDIR: dir } });
    const victim = await tun.call(pid);
    const put = tun.put(`${dir}/src.bin`);
    await new Promise((r) => setTimeout(r, 300));
    Deno.kill(victim, "SIGKILL");
    await allRejectAtOnce([put], performance.now());
    assert.deepEqual(await tun.call(list, dir), ["src.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** An ssh tunnel to `host` of the test hosts. */
function ssh(config: string, host = "local-ssh"): Tunnel {
  return new Tunnel(host, { sshArgs: ["-F", config], ...quiet });
}

/** Kills this process's one ssh child after `ms`; resolves to the time. */
async function killSsh(ms: number): Promise<number> {
  await new Promise((r) => setTimeout(r, ms));
  const pids = children("ssh");
  assert.equal(pids.length, 1, `ssh children: ${pids}`);
  const at = performance.now();
  Deno.kill(pids[0], "SIGKILL");
  return at;
}

hostTest(
  "faults: killing ssh mid-put rejects at once, leaves nothing at the destination, and the next call reconnects",
  async (env) => {
    const local = await Deno.makeTempDir({ prefix: "chopsticks-fault-" });
    const tun = ssh(env.ssh.config);
    let remote = "";
    try {
      await sparseFile(`${local}/src.bin`, 1024 * MiB);
      remote = await tun.call(tempDir);
      const pending = [
        tun.put(`${local}/src.bin`, `${remote}/dst.bin`),
        tun.call(sleep, 20_000, 1),
      ];
      const killed = await killSsh(500);
      const errors = await allRejectAtOnce(pending, killed);
      assert.match(errors[0].message, /Cannot put .*"local-ssh"/);
      // The remote agent notices its end of the channel closed and removes
      // what it was writing; give it a moment.
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(await tun.call(list, remote), [], "left on the host");
      assert.equal(await tun.call(add, 1, 2), 3);
    } finally {
      if (remote) await tun.call(removeAll, remote).catch(() => {});
      await tun.close();
      await Deno.remove(local, { recursive: true });
    }
  },
);

hostTest(
  "faults: killing ssh mid-fetch rejects at once and leaves nothing here, nor touches an existing file",
  async (env) => {
    const local = await Deno.makeTempDir({ prefix: "chopsticks-fault-" });
    const tun = ssh(env.ssh.config);
    let remote = "";
    try {
      remote = await tun.call(tempDir);
      await tun.call(sparseFile, `${remote}/big.bin`, 1024 * MiB);
      await Deno.writeTextFile(`${local}/dst.bin`, "old");
      const pending = [tun.fetch(`${remote}/big.bin`, `${local}/dst.bin`)];
      const killed = await killSsh(500);
      const errors = await allRejectAtOnce(pending, killed);
      assert.match(errors[0].message, /Cannot fetch .*"local-ssh"/);
      assert.deepEqual([...Deno.readDirSync(local)].map((e) => e.name), [
        "dst.bin",
      ]);
      assert.equal(await Deno.readTextFile(`${local}/dst.bin`), "old");
      assert.equal(await tun.call(add, 1, 2), 3, "the next call reconnects");
    } finally {
      if (remote) await tun.call(removeAll, remote).catch(() => {});
      await tun.close();
      await Deno.remove(local, { recursive: true });
    }
  },
);

hostTest(
  "faults: a container killed or stopped mid-call rejects at once; the next call starts a new one",
  async (env) => {
    const name = `chop-fault-${Deno.pid}`;
    const flags = env.docker.globalFlags;
    const box = new Docker(name, {
      image: env.docker.image,
      engineFlags: flags,
      runFlags: [...env.docker.runFlags, ...env.docker.networkFlags],
      pull: "never",
      ...quiet,
    });
    try {
      for (const how of [["kill"], ["stop", "-t", "1"]]) {
        const first = await box.call(pid);
        const pending = [
          box.call(sleep, 30_000, 1),
          box.call(sleep, 30_000, 2),
        ];
        await new Promise((r) => setTimeout(r, 200));
        const at = performance.now();
        const done = await sh("docker", [...flags, ...how, name]);
        assert.equal(done.code, 0, done.stderr);
        const errors = await allRejectAtOnce(pending, at);
        assert.match(errors[0].message, new RegExp(`"${name}"`));
        // pid 1 in a fresh container may well have the same number: the
        // proof is that it answers.
        assert.equal(typeof first, "number");
        assert.equal(await box.call(add, 2, 3), 5, `after docker ${how[0]}`);
      }
    } finally {
      await box.close();
      await sh("docker", [...flags, "rm", "-f", name]);
    }
  },
);

/** Mounts a 1 MiB tmpfs at `dir`, owned by `owner`; returns the unmount. */
async function tinyDisk(
  dir: string,
  owner?: string,
): Promise<() => Promise<void>> {
  await Deno.mkdir(dir, { recursive: true });
  const mounted = await sh("mount", [
    "-t",
    "tmpfs",
    "-o",
    `size=1m,mode=0777`,
    "tmpfs",
    dir,
  ]);
  assert.equal(mounted.code, 0, `cannot mount a tmpfs: ${mounted.stderr}`);
  if (owner) await sh("chown", [owner, dir]);
  return async () => void await sh("umount", [dir]);
}

const asRoot = Deno.uid() === 0;

Deno.test({
  name:
    "faults: a fetch into a full disk fails clearly, leaves no partial file and keeps the old one",
  ignore: !asRoot && !Deno.env.get("CI"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-full-" });
    const unmount = await tinyDisk(`${dir}/disk`);
    try {
      await sparseFile(`${dir}/src.bin`, 4 * MiB);
      await Deno.writeTextFile(`${dir}/disk/keep.bin`, "old");
      await using tun = new Local("full", quiet);
      const error = await tun.fetch(`${dir}/src.bin`, `${dir}/disk/keep.bin`)
        .catch((e) => e);
      assert.ok(error instanceof Error, `fetched: ${error}`);
      assert.match(error.message, /Cannot fetch .*No space left/);
      assert.deepEqual(
        [...Deno.readDirSync(`${dir}/disk`)].map((e) => e.name),
        [
          "keep.bin",
        ],
      );
      assert.equal(await Deno.readTextFile(`${dir}/disk/keep.bin`), "old");
      assert.equal(await tun.call(add, 1, 1), 2, "the tunnel stays usable");
    } finally {
      await unmount();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "faults: a fetch into a read-only file system says which fetch failed and why, and keeps the old file",
  ignore: !asRoot && !Deno.env.get("CI"),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-ro-" });
    const unmount = await tinyDisk(`${dir}/disk`);
    try {
      await sparseFile(`${dir}/src.bin`, MiB);
      await Deno.writeTextFile(`${dir}/disk/keep.bin`, "old");
      const remounted = await sh("mount", ["-o", "remount,ro", `${dir}/disk`]);
      assert.equal(remounted.code, 0, remounted.stderr);
      await using tun = new Local("ro", quiet);
      const error = await tun.fetch(`${dir}/src.bin`, `${dir}/disk/keep.bin`)
        .catch((e) => e);
      assert.ok(error instanceof Error, String(error));
      assert.match(
        error.message,
        /^Cannot fetch "[^"]*\/src\.bin" to "[^"]*\/disk\/keep\.bin": cannot write its directory: Read-only file system/,
      );
      assert.equal(await Deno.readTextFile(`${dir}/disk/keep.bin`), "old");
    } finally {
      await unmount();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

hostTest(
  "faults: a put to a host whose disk is full fails clearly and leaves the old file",
  async (env) => {
    if (!asRoot) throw new Error("mounting a tmpfs needs root");
    const host = env.ssh.hosts["local-ssh"];
    const dir = await Deno.makeTempDir({ prefix: "chopsticks-full-" });
    await Deno.chmod(dir, 0o755);
    const unmount = await tinyDisk(`${dir}/disk`, host.user);
    const tun = ssh(env.ssh.config);
    try {
      await sparseFile(`${dir}/src.bin`, 4 * MiB);
      await tun.call(
        writeBytes,
        `${dir}/disk/keep.bin`,
        new Uint8Array([1, 2]),
      );
      const error = await tun.put(`${dir}/src.bin`, `${dir}/disk/keep.bin`)
        .catch((e) => e);
      assert.ok(error instanceof Error, `put: ${error}`);
      assert.match(error.message, /Cannot put .*No space left/);
      assert.deepEqual(await tun.call(list, `${dir}/disk`), ["keep.bin"]);
      assert.deepEqual(
        await tun.call(readBytes, `${dir}/disk/keep.bin`),
        new Uint8Array([1, 2]),
      );
      assert.equal(await tun.call(add, 1, 1), 2, "the tunnel stays usable");
    } finally {
      await tun.close();
      await unmount();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
