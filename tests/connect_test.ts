/**
 * Connections users can trust, against the real test hosts: the host-key
 * policy, connect retries, a noisy login over real SSH, and every connect
 * stage provoked for real.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConnectError, type SshOptions, Tunnel } from "../mod.ts";
import { add, echo, noisy } from "./fixtures/funcs.ts";
import { hosts, hostTest } from "./_hosts.ts";

/** An SSH tunnel of the test hosts, its output collected in `lines`. */
function ssh(
  host: string,
  options: SshOptions = {},
): { tun: Tunnel; lines: string[] } {
  const lines: string[] = [];
  const tun = new Tunnel(host, {
    sshArgs: ["-F", hosts().ssh.config],
    connectTimeout: 15_000,
    output: (line) => lines.push(line),
    ...options,
  });
  return { tun, lines };
}

/** Connects, expecting a ConnectError; closes the tunnel either way. */
async function failure(tun: Tunnel): Promise<ConnectError> {
  const error = await tun.connect().then(() => undefined, (e) => e);
  await tun.close();
  assert.ok(error instanceof ConnectError, `connected, or: ${error}`);
  return error;
}

/**
 * A temporary directory the test users can read (the loopback sshd's users
 * share this machine's files), removed after `fn`.
 */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-connect-" });
  await Deno.chmod(dir, 0o755);
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes an executable shell script. */
async function script(path: string, body: string): Promise<string> {
  await Deno.writeTextFile(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  await Deno.chmod(path, 0o755);
  return path;
}

// ---------------------------------------------------------------- host keys

hostTest(
  "Host keys: strict (the default) refuses an unknown key and says how to accept it",
  async () => {
    await withDir(async (dir) => {
      const known = `${dir}/known_hosts`;
      await Deno.writeTextFile(known, "");
      const { tun, lines } = ssh("local-ssh", {
        sshOptions: { UserKnownHostsFile: known },
        retries: 2,
        retryDelay: 50,
      });
      const error = await failure(tun);
      assert.equal(error.stage, "transport");
      assert.equal(error.exitCode, 255);
      assert.match(error.message, /Host key verification failed/);
      assert.match(error.message, /the host key of "local-ssh" is not known/);
      assert.match(error.message, /ssh-keyscan/);
      assert.match(error.message, /hostKeys: "accept-new"/);
      assert.ok(!lines.some((l) => /retry/.test(l)), "never retried");
      assert.equal(await Deno.readTextFile(known), "", "nothing recorded");
    });
  },
);

hostTest(
  'Host keys: "accept-new" connects to a new host and records its key',
  async () => {
    await withDir(async (dir) => {
      const known = `${dir}/known_hosts`;
      const { tun } = ssh("local-ssh", {
        hostKeys: "accept-new",
        sshOptions: { UserKnownHostsFile: known },
      });
      try {
        assert.equal(await tun.call(add, 1, 2), 3);
      } finally {
        await tun.close();
      }
      const recorded = await Deno.readTextFile(known);
      assert.match(recorded, /^\[127\.0\.0\.1\]:2222 ssh-ed25519 /m);
      // Recorded, so strict checking accepts it now.
      const { tun: strict } = ssh("local-ssh", {
        sshOptions: { UserKnownHostsFile: known },
      });
      try {
        assert.equal(await strict.call(add, 2, 2), 4);
      } finally {
        await strict.close();
      }
    });
  },
);

hostTest(
  'Host keys: a changed key is refused, even with "accept-new"',
  async (env) => {
    await withDir(async (dir) => {
      // h1's real key, recorded for the loopback sshd: a changed key.
      const h1 = (await Deno.readTextFile(env.ssh.knownHosts)).split("\n")
        .find((l) => l.startsWith("h1,"))!;
      const known = `${dir}/known_hosts`;
      await Deno.writeTextFile(
        known,
        `[127.0.0.1]:2222 ${h1.split(" ").slice(1).join(" ")}\n`,
      );
      for (const hostKeys of ["strict", "accept-new"] as const) {
        const { tun } = ssh("local-ssh", {
          hostKeys,
          sshOptions: { UserKnownHostsFile: known },
        });
        const error = await failure(tun);
        assert.equal(error.stage, "transport");
        assert.match(error.message, /has CHANGED/, hostKeys);
        assert.match(error.message, /ssh-keygen -R/);
        assert.match(error.stderrTail.join("\n"), /IDENTIFICATION HAS CHANGED/);
      }
    });
  },
);

hostTest(
  'Host keys: "off" connects without known_hosts and warns once per tunnel',
  async () => {
    const { tun, lines } = ssh("local-ssh", { hostKeys: "off" });
    try {
      assert.equal(await tun.call(add, 20, 22), 42);
      await tun.close();
      assert.equal(await tun.call(add, 1, 1), 2, "a second connection");
    } finally {
      await tun.close();
    }
    const warnings = lines.filter((l) => /host-key checking is off/.test(l));
    assert.equal(warnings.length, 1, String(lines));
    assert.match(warnings[0], /"local-ssh"/);
  },
);

// ------------------------------------------------------------------ retries

/**
 * A stand-in for ssh that counts its runs in `$0.count` and fails the
 * first `failures` of them the way `how` says, then runs the real ssh.
 */
async function flakySsh(
  dir: string,
  failures: number,
  how =
    `echo "ssh: connect to host 127.0.0.1 port 2222: Connection refused" >&2; exit 255`,
): Promise<{ ssh: string; runs: () => number }> {
  const path = await script(
    `${dir}/ssh`,
    `echo run >>"$0.count"
if [ "$(wc -l <"$0.count")" -le ${failures} ]; then ${how}; fi
exec ssh "$@"`,
  );
  return {
    ssh: path,
    runs: () => {
      try {
        return Deno.readTextFileSync(`${path}.count`).split("\n").length - 1;
      } catch {
        return 0;
      }
    },
  };
}

hostTest(
  "Retries: a transport that fails twice connects on the third try, with growing delays",
  async () => {
    await withDir(async (dir) => {
      const flaky = await flakySsh(dir, 2);
      const { tun, lines } = ssh("local-ssh", {
        ssh: flaky.ssh,
        retries: 3,
        retryDelay: 100,
      });
      try {
        assert.equal(await tun.call(add, 1, 2), 3);
      } finally {
        await tun.close();
      }
      assert.equal(flaky.runs(), 3);
      const retries = lines.filter((l) => /retry \d of 3/.test(l));
      assert.equal(retries.length, 2, String(lines));
      assert.match(retries[0], /stage transport\), retry 1 of 3 in 100 ms/);
      assert.match(retries[1], /retry 2 of 3 in 200 ms/);
      assert.match(retries[0], /Connection refused/);
    });
  },
);

hostTest(
  "Retries: a port that starts listening after the first attempt is reached on a retry",
  async (env) => {
    const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (free.addr as Deno.NetAddr).port;
    free.close();
    const target = env.ssh.hosts["local-ssh"];
    let listener: Deno.Listener | undefined;
    const forwarding: Promise<void>[] = [];
    const forward = async (l: Deno.Listener) => {
      for await (const inbound of l) {
        forwarding.push((async () => {
          const outbound = await Deno.connect({
            hostname: target.address,
            port: target.port,
          });
          await Promise.allSettled([
            inbound.readable.pipeTo(outbound.writable),
            outbound.readable.pipeTo(inbound.writable),
          ]);
        })());
      }
    };
    const lines: string[] = [];
    const tun = new Tunnel("127.0.0.1", {
      sshArgs: ["-F", env.ssh.config],
      port,
      user: target.user,
      // The forwarder's port is another name for the loopback sshd.
      sshOptions: { HostKeyAlias: `[127.0.0.1]:${target.port}` },
      retries: 3,
      retryDelay: 200,
      output: (line) => {
        lines.push(line);
        if (/retry 1 of 3/.test(line) && !listener) {
          listener = Deno.listen({ hostname: "127.0.0.1", port });
          void forward(listener);
        }
      },
    });
    try {
      assert.equal(await tun.call(echo, "through"), "through");
    } finally {
      await tun.close();
      listener?.close();
      await Promise.allSettled(forwarding);
    }
    const retries = lines.filter((l) => /retry \d of 3/.test(l));
    assert.equal(retries.length, 1, String(lines));
    assert.match(retries[0], /Connection refused/);
  },
);

hostTest(
  "Retries: no answer within connectTimeout is retried",
  async () => {
    await withDir(async (dir) => {
      const flaky = await flakySsh(dir, 1, "exec sleep 30");
      const { tun, lines } = ssh("local-ssh", {
        ssh: flaky.ssh,
        connectTimeout: 1_000,
        retries: 1,
        retryDelay: 0,
      });
      try {
        assert.equal(await tun.call(add, 2, 2), 4);
      } finally {
        await tun.close();
      }
      assert.equal(flaky.runs(), 2);
      assert.ok(lines.some((l) => /stage timeout\), retry 1 of 1/.test(l)));
    });
  },
);

hostTest(
  "Retries: a refused login, sudo, or a missing deno is never retried",
  async () => {
    await withDir(async (dir) => {
      const flaky = await flakySsh(dir, 0);
      const cases: [string, SshOptions, string][] = [
        ["local-ssh", { user: "chopsticks-nobody" }, "transport"],
        ["pw", { sudo: true }, "sudo"],
        ["local-ssh", { deno: "/no/such/deno" }, "deno"],
      ];
      let runs = 0;
      for (const [host, options, stage] of cases) {
        const { tun, lines } = ssh(host, {
          ssh: flaky.ssh,
          retries: 3,
          retryDelay: 5_000,
          ...options,
        });
        const started = performance.now();
        const error = await failure(tun);
        assert.equal(error.stage, stage);
        assert.equal(flaky.runs(), ++runs, `${stage}: one attempt only`);
        assert.ok(!lines.some((l) => /retry/.test(l)), String(lines));
        assert.ok(performance.now() - started < 4_000);
        assert.doesNotMatch(error.message, /attempts\)/);
      }
    });
  },
);

hostTest(
  "Retries: the last error says how many attempts were made, and close() stops a wait",
  async () => {
    await withDir(async (dir) => {
      const flaky = await flakySsh(dir, 100);
      const { tun } = ssh("local-ssh", {
        ssh: flaky.ssh,
        retries: 2,
        retryDelay: 10,
      });
      const error = await failure(tun);
      assert.equal(error.stage, "transport");
      assert.match(error.message, /Connection refused.*\(after 3 attempts\)$/);
      assert.equal(flaky.runs(), 3);

      let retrying: () => void = () => {};
      const firstRetry = new Promise<void>((r) => retrying = r);
      const waiting = new Tunnel("local-ssh", {
        ssh: flaky.ssh,
        sshArgs: ["-F", hosts().ssh.config],
        retries: 5,
        retryDelay: 30_000,
        output: (line) => /retry 1 of 5/.test(line) && retrying(),
      });
      const connecting = waiting.connect().catch((e) => e);
      await firstRetry;
      const started = performance.now();
      await waiting.close();
      const stopped = await connecting;
      assert.ok(stopped instanceof ConnectError, String(stopped));
      assert.ok(performance.now() - started < 1_000, "close() ends the wait");
      assert.equal(flaky.runs(), 4, "no attempt after close()");
    });
  },
);

// ------------------------------------------------------------ noisy login

hostTest(
  "Noisy login over real SSH: junk on stdout and stderr, binary too, is the host's output",
  async (env) => {
    const hostLines: [string, string][] = [];
    const tun = new Tunnel("noisy", {
      sshArgs: ["-F", env.ssh.config],
      output: (line, host) => hostLines.push([host, line]),
    });
    try {
      const results = await Promise.all([
        tun.call(add, 1, 2),
        tun.call(echo, new Uint8Array([0, 255, 10])),
        tun.call(noisy),
      ]);
      assert.deepEqual(results, [3, new Uint8Array([0, 255, 10]), "done"]);
      assert.equal(await tun.call(add, 3, 4), 7, "still in step after");
    } finally {
      await tun.close();
    }
    assert.ok(hostLines.every(([host]) => host === "noisy"));
    const lines = hostLines.map(([, line]) => line);
    const has = (re: RegExp) =>
      assert.ok(lines.some((l) => re.test(l)), `${re}: ${lines.join("\n")}`);
    has(/^NOISY \.bashrc: welcome to a chatty host$/); // stdout
    // stdout, binary: NUL, \x01, invalid UTF-8, and an escape sequence
    const junk = "NOISY .bashrc junk: \0\x01\uFFFD\uFFFD\x1b[31m red";
    assert.ok(lines.some((l) => l.startsWith(junk)), lines.join("\n"));
    has(/^NOISY \.bashrc on stderr$/); // stderr
    has(/^NOISY \.bashrc stderr junk: \uFFFD\uFFFD$/); // stderr, binary
    has(/^error line$/); // the agent's own output still flows
    assert.ok(!lines.some((l) => /chopsticks-ready|ProtocolError/.test(l)));
  },
);

// ----------------------------------------------- every stage, for real

hostTest("Stage spawn: the ssh program does not exist", async () => {
  const error = await failure(ssh("local-ssh", { ssh: "/no/such/ssh" }).tun);
  assert.equal(error.stage, "spawn");
  assert.match(error.message, /cannot start \/no\/such\/ssh/);
});

hostTest("Stage transport: nothing listens on the port", async () => {
  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (free.addr as Deno.NetAddr).port;
  free.close();
  const error = await failure(ssh("127.0.0.1", { port }).tun);
  assert.equal(error.stage, "transport");
  assert.equal(error.exitCode, 255);
  assert.match(error.message, /Connection refused; nothing listens there/);
});

hostTest("Stage sudo: sudo refuses (a password it was not given)", async () => {
  const error = await failure(ssh("pw", { sudo: "root" }).tun);
  assert.equal(error.stage, "sudo");
  assert.match(error.message, /sudo asks for a password/);
});

hostTest("Stage deno: no deno at the given path", async () => {
  const error = await failure(ssh("local-ssh", { deno: "/no/such/deno" }).tun);
  assert.equal(error.stage, "deno");
  assert.equal(error.exitCode, 127);
  assert.match(error.message, /deno not found: \/no\/such\/deno/);
});

hostTest(
  "Stage deno: a deno of another major version, named with ours",
  async (env) => {
    await withDir(async (dir) => {
      await Deno.writeTextFile(
        `${dir}/old.js`,
        `Object.defineProperty(Deno, "version", { value: { ...Deno.version, deno: "1.46.3" } });`,
      );
      await Deno.chmod(`${dir}/old.js`, 0o644);
      const deno = await script(
        `${dir}/deno`,
        `shift\nexec ${env.deno} run --preload=${dir}/old.js "$@"`,
      );
      const error = await failure(ssh("local-ssh", { deno }).tun);
      assert.equal(error.stage, "deno");
      assert.match(error.message, /1\.46\.3 on the target/);
      assert.ok(error.message.includes(Deno.version.deno), error.message);
    });
  },
);

hostTest(
  "Stage handshake: garbage on the channel instead of the handshake",
  async () => {
    await withDir(async (dir) => {
      // A "deno" that floods the agent's output (the script's stdout, or a
      // FIFO).
      const deno = await script(
        `${dir}/deno`,
        `for a; do case $a in /proc/*/fd/1|*/chopsticks.*/o) o=$a ;; esac; done
head -c 1100000 /dev/zero | tr '\\0' x >"$o"`,
      );
      const error = await failure(ssh("local-ssh", { deno }).tun);
      assert.equal(error.stage, "handshake");
      assert.match(error.message, /before the handshake/);
    });
  },
);

hostTest(
  "Stage agent: the agent starts, then fails (it may not listen on loopback)",
  async (env) => {
    await withDir(async (dir) => {
      const deno = await script(
        `${dir}/deno`,
        `sub=$1; shift\nexec ${env.deno} "$sub" --deny-net=127.0.0.1 "$@"`,
      );
      // Scoped, so that the denied net is the first thing it lacks.
      const permissions = { read: true, write: true, env: true };
      const error = await failure(ssh("local-ssh", { deno, permissions }).tun);
      assert.equal(error.stage, "agent");
      assert.match(
        error.message,
        /the agent exited with code|NotCapable|listen/,
      );
    });
  },
);

hostTest(
  "Stage transport: an agent that cannot open its channel says so",
  async (env) => {
    await withDir(async (dir) => {
      // Every permission, yet a denied one: Deno then refuses the agent the
      // script's stdout.
      const deno = await script(
        `${dir}/deno`,
        `sub=$1; shift\nexec ${env.deno} "$sub" --deny-env=NOTHING "$@"`,
      );
      const error = await failure(ssh("local-ssh", { deno }).tun);
      assert.match(
        error.message,
        /the agent cannot open its channel \(\/proc\/\d+\/fd\/1\)/,
      );
    });
  },
);

hostTest(
  "Stage timeout: a deno that never answers is bounded by connectTimeout",
  async () => {
    await withDir(async (dir) => {
      // It opens its input FIFO, as a real agent does, so the agent
      // script can stop it when the tunnel closes.
      const deno = await script(
        `${dir}/deno`,
        `for a; do case $a in */chopsticks.*/i) i=$a ;; esac; done
exec sleep 30 <"$i"`,
      );
      const started = performance.now();
      const error = await failure(
        ssh("local-ssh", { deno, connectTimeout: 1_500 }).tun,
      );
      assert.equal(error.stage, "timeout");
      assert.match(error.message, /no answer within 1500 ms/);
      assert.ok(performance.now() - started < 4_000);
    });
  },
);
