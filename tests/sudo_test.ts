import assert from "node:assert/strict";
import {
  ConnectError,
  ConnectionLostError,
  Group,
  type SshOptions,
  Sudo,
  sudoPassword,
  Tunnel,
  type TunnelOptions,
} from "../mod.ts";
import { add, noisy, pid, sleep } from "./fixtures/funcs.ts";
import { afterKill, descendants, gone } from "./_processes.ts";
import {
  freshPipeSize,
  releaseFifos,
  widenFifos,
} from "./fixtures/pipe_funcs.ts";
import { conformance } from "./_conformance.ts";
import { filesConformance } from "./_files_conformance.ts";
import { hosts, type HostsEnv, hostTest, sh, skipReason } from "./_hosts.ts";

conformance(
  "Sudo",
  (options?: TunnelOptions) => new Sudo(hosts().sudo.user, options),
  { ignore: skipReason() },
);

if (!skipReason()) {
  filesConformance(
    "Sudo",
    (options?: TunnelOptions) => new Sudo(hosts().sudo.user, options),
  );
}

hostTest(
  "Sudo: agents of one user that widen their pipes at once leave the user room for pipes of 64 KiB (the kernel's budget of 64 MiB a user)",
  async (env) => {
    // Six agents, each widening 16 pipes: 96 MiB asked for. (Root has no
    // budget: these run as the sudo user.)
    const tunnels = Array.from({ length: 6 }, () => new Sudo(env.sudo.user));
    try {
      let wide = 0;
      for (const tun of tunnels) {
        const sizes = await tun.call(widenFifos, 16);
        wide += sizes.filter((size) => size === 1024 * 1024).length;
      }
      assert.ok(wide >= 16 && wide < 96, `${wide} pipes widened`);
      for (const tun of tunnels) {
        assert.equal(await tun.call(freshPipeSize), 64 * 1024);
      }
    } finally {
      for (const tun of tunnels) {
        await tun.call(releaseFifos).catch(() => {});
        await tun.close();
      }
    }
  },
);

hostTest(
  "Sudo: the agent runs as the user, with that user's HOME",
  async (env) => {
    await using tun = new Sudo(env.sudo.user);
    assert.equal(tun.host, `sudo:${env.sudo.user}`);
    const uid = Number((await sh("id", ["-u", env.sudo.user])).stdout);
    assert.equal(await tun.call(Deno.uid), uid);
    assert.equal(
      await tun.call(Deno.env.get, "HOME"),
      `/home/${env.sudo.user}`,
    );
  },
);

hostTest(
  "Sudo: the agent's output relay killed mid-call stops the agent at once; the call rejects and the next one reconnects",
  async (env) => {
    // Under sudo the agent cannot open the script's stdout (root's): its
    // output always goes through a FIFO that cat relays.
    await using tun = new Sudo(env.sudo.user, {
      output: () => {},
      liveness: false,
    });
    const agent = await tun.call(pid);
    const cats = descendants().filter((p) => p.comm === "cat");
    assert.equal(cats.length, 1, JSON.stringify(descendants()));
    const pending = tun.call(sleep, 10_000, "late").catch((e) => e);
    await new Promise((r) => setTimeout(r, 100));
    const { outcome: error, took } = await afterKill(cats[0].pid, pending);
    assert.ok(error instanceof ConnectionLostError, String(error));
    assert.match(error.message, /output relay \(cat\) ended with status 137/);
    assert.ok(took < 1_500, `the call rejected after ${took.toFixed(0)} ms`);
    assert.ok(await gone([agent]), "the agent still runs");
    assert.deepEqual(descendants(), [], "processes left");
    assert.notEqual(await tun.call(pid), agent, "the next call reconnects");
  },
);

// sudo with a password: over SSH as `chopsticks-pw` (alias `pw`, whose
// sudo asks every time and allows one try), and locally with a controller
// running as that user.

const quiet = { connectTimeout: 15_000 };

/** An SSH tunnel of the test hosts with the output captured. */
function sshTo(
  env: HostsEnv,
  host: string,
  options: SshOptions = {},
): { tun: Tunnel; lines: string[] } {
  const lines: string[] = [];
  const tun = new Tunnel(host, {
    sshArgs: ["-F", env.ssh.config],
    output: (line) => lines.push(line),
    ...quiet,
    ...options,
  });
  return { tun, lines };
}

/** No marker of the sudo step, nor a password, ever reaches the output. */
function assertClean(lines: string[], password: string): void {
  for (const line of lines) {
    assert.doesNotMatch(line, /chopsticks-sudo-(prompt|ok)-/, line);
    assert.ok(!line.includes(password), "the password reached the output");
  }
}

hostTest(
  "Sudo password: over SSH, sudo -S gets the password and the agent runs as root",
  async (env) => {
    const { tun, lines } = sshTo(env, "pw", {
      sudo: { password: env.sudo.password },
    });
    try {
      assert.equal(await tun.call(Deno.uid), 0);
      assert.equal(await tun.call(add, 2, 3), 5);
      await tun.call(noisy);
    } finally {
      await tun.close();
    }
    assert.ok(lines.includes("error line"), String(lines));
    assertClean(lines, env.sudo.password);
  },
);

hostTest(
  "Sudo password: a password function is called only when sudo asks, and once per tunnel",
  async (env) => {
    let asked = 0;
    const password = () => (asked++, Promise.resolve(env.sudo.password));
    const { tun } = sshTo(env, "pw", { sudo: { user: "root", password } });
    try {
      assert.equal(await tun.call(Deno.uid), 0);
      await tun.close(); // the next agent asks sudo again
      assert.equal(await tun.call(Deno.uid), 0);
      assert.equal(asked, 1, "kept for the tunnel's next connection");
    } finally {
      await tun.close();
    }

    let never = 0;
    const { tun: plain } = sshTo(env, "local-ssh", {
      sudo: { password: () => (never++, "unused") },
    });
    try {
      assert.equal(await plain.call(Deno.uid), 0, "NOPASSWD: sudo passes");
      assert.equal(
        never,
        0,
        "sudo did not ask, so the function was not called",
      );
    } finally {
      await plain.close();
    }
  },
);

hostTest(
  "Sudo password: a group asks once, through sudoPassword(), and shares the answer",
  async (env) => {
    let asked = 0;
    const password = sudoPassword(async () => {
      asked++;
      await new Promise((r) => setTimeout(r, 50));
      return env.sudo.password;
    });
    const pw = env.ssh.hosts.pw;
    // Three names for the same sshd, so that the group has three hosts.
    await using group = new Group(["pw", "127.0.0.1", "localhost"], {
      tunnel: (host) =>
        new Tunnel(host, {
          sshArgs: ["-F", env.ssh.config],
          user: pw.user,
          port: pw.port,
          sudo: { password },
          output: () => {},
          ...quiet,
        }),
    });
    const uids = await group.call(Deno.uid);
    assert.deepEqual([...uids.raiseFailures()].map(([, uid]) => uid), [
      0,
      0,
      0,
    ]);
    assert.equal(asked, 1);
  },
);

hostTest(
  "Sudo password: a wrong password fails at once with stage sudo, and is asked again next time",
  async (env) => {
    let asked = 0;
    const password = sudoPassword(() => (asked++, "not-the-password"));
    const { tun, lines } = sshTo(env, "pw", { sudo: { password } });
    const started = performance.now();
    const error = await tun.connect().catch((e) => e);
    const took = performance.now() - started;
    await tun.close();
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.stage, "sudo");
    assert.match(
      error.message,
      /^Cannot connect to "pw": sudo refused the password/,
    );
    assert.match(error.message, /incorrect password|Sorry/);
    assert.ok(took < 8_000, `took ${took} ms`);
    assertClean(
      [...lines, ...error.stderrTail, error.message],
      "not-the-password",
    );
    await tun.connect().catch(() => {});
    await tun.close();
    assert.equal(asked, 2, "a refused password is asked for again");
  },
);

hostTest(
  "Sudo password: sudo that wants a password it was not given fails with stage sudo",
  async (env) => {
    const { tun } = sshTo(env, "pw", { sudo: true });
    const error = await tun.connect().catch((e) => e);
    await tun.close();
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.stage, "sudo");
    assert.match(error.message, /sudo: a password is required/);
    assert.match(error.message, /password option/);
    assert.match(error.message, /NOPASSWD/);
    assert.equal(error.exitCode, 1);
  },
);

hostTest(
  "Sudo password: a password function that throws fails with stage sudo",
  async (env) => {
    const { tun } = sshTo(env, "pw", {
      sudo: {
        password: () => {
          throw new Error("no terminal to ask on");
        },
      },
    });
    const error = await tun.connect().catch((e) => e);
    await tun.close();
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.stage, "sudo");
    assert.match(error.message, /cannot get the sudo password: no terminal/);
  },
);

Deno.test("Sudo password: a password with a newline, or of the wrong type, is refused at once", () => {
  assert.throws(() => new Sudo("root", { password: "a\nb" }), TypeError);
  assert.throws(
    () => new Tunnel("h", { sudo: { password: "a\nb" } }),
    /newline/,
  );
  assert.throws(
    () => new Sudo("root", { password: 42 as unknown as string }),
    TypeError,
  );
  assert.throws(
    () => new Tunnel("h", { sudo: 1 as unknown as boolean }),
    /expected true, a user name, or \{ user, password \}/,
  );
});

Deno.test("sudoPassword() asks once for concurrent callers, and again after forget() or a failure", async () => {
  let asked = 0;
  const shared = sudoPassword(() => `pw${++asked}`);
  assert.deepEqual(await Promise.all([shared(), shared(), shared()]), [
    "pw1",
    "pw1",
    "pw1",
  ]);
  shared.forget();
  assert.equal(await shared(), "pw2");
  let fail = true;
  const flaky = sudoPassword(() => {
    if (fail) throw new Error("no answer");
    return "ok";
  });
  await assert.rejects(() => flaky(), /no answer/);
  fail = false;
  assert.equal(await flaky(), "ok");
});

/**
 * Runs tests/fixtures/sudo_password_controller.ts as the password user,
 * with its own DENO_DIR (seeded with this controller's msgpack), and
 * returns what it printed.
 */
async function asPasswordUser(
  env: HostsEnv,
  input: { password: string; user: string },
): Promise<Record<string, unknown>> {
  const user = env.sudo.passwordUser;
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-pw-" });
  try {
    const info = JSON.parse(
      (await sh(Deno.execPath(), ["info", "--json"])).stdout,
    );
    const npm = `${info.denoDir}/npm/registry.npmjs.org/@msgpack`;
    await sh("mkdir", ["-p", `${dir}/deno/npm/registry.npmjs.org`]);
    await sh("cp", ["-r", npm, `${dir}/deno/npm/registry.npmjs.org/`]);
    await sh("chown", ["-R", user, dir]);
    const child = new Deno.Command("setpriv", {
      args: [
        `--reuid=${user}`,
        `--regid=${user}`,
        "--init-groups",
        "env",
        "-i",
        `HOME=/home/${user}`,
        `DENO_DIR=${dir}/deno`,
        "PATH=/usr/local/bin:/usr/bin:/bin",
        // The deno every user can run (this one may sit in root's home).
        env.deno,
        "run",
        "-A",
        new URL("./fixtures/sudo_password_controller.ts", import.meta.url)
          .pathname,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(JSON.stringify(input)));
    await writer.close();
    const out = await child.output();
    const text = new TextDecoder();
    const stdout = text.decode(out.stdout).trim();
    assert.ok(stdout !== "", text.decode(out.stderr));
    return JSON.parse(stdout.split("\n").at(-1)!);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

hostTest(
  "Sudo password: locally, a user whose sudo asks runs the agent as root",
  async (env) => {
    const ok = await asPasswordUser(env, {
      password: env.sudo.password,
      user: "root",
    });
    assert.equal(ok.uid, 0, JSON.stringify(ok));
    assert.equal(ok.again, 0);
    assert.equal(ok.asked, 1, "asked once for two connections");
    assertClean(ok.lines as string[], env.sudo.password);

    const bad = await asPasswordUser(env, { password: "nope", user: "root" });
    assert.equal(bad.name, "ConnectError", JSON.stringify(bad));
    assert.equal(bad.stage, "sudo");
    assert.match(String(bad.message), /sudo refused the password/);
  },
);

hostTest(
  'Sudo password: deno "upload" through sudo with a password asks once for both steps',
  async (env) => {
    let asked = 0;
    const target = env.sudo.user;
    const { tun, lines } = sshTo(env, "pw", {
      sudo: { user: target, password: () => (asked++, env.sudo.password) },
      deno: "upload",
      connectTimeout: 60_000,
    });
    let uploaded: string | undefined;
    try {
      assert.equal(
        await tun.call(Deno.uid),
        Number((await sh("id", ["-u", target])).stdout),
      );
      if (lines.some((l) => /uploaded deno/.test(l))) {
        uploaded = await tun.call(Deno.execPath);
      }
      assert.equal(asked, 1, "the upload step and the agent share the answer");
      assertClean(lines, env.sudo.password);
    } finally {
      await tun.close();
      if (uploaded) await Deno.remove(uploaded);
    }
  },
);

hostTest(
  "Sudo: putTree into a shared directory the agent does not own keeps that directory's mode, and copies the tree",
  async (env) => {
    // Made by this process (root), writable by all: the agent's user may
    // fill it, not change its mode.
    const shared = await Deno.makeTempDir({ prefix: "chopsticks-shared-" });
    const src = await Deno.makeTempDir({ prefix: "chopsticks-src-" });
    try {
      await Deno.chmod(shared, 0o1777);
      await Deno.writeTextFile(`${src}/a.txt`, "alpha");
      await Deno.chmod(src, 0o750);
      await using tun = new Sudo(env.sudo.user);
      const done = await tun.putTree(src, shared);
      assert.equal(done.copied, 1);
      assert.equal((await Deno.stat(shared)).mode! & 0o7777, 0o1777);
      assert.equal(await Deno.readTextFile(`${shared}/a.txt`), "alpha");
    } finally {
      await Deno.remove(shared, { recursive: true });
      await Deno.remove(src, { recursive: true });
    }
  },
);
