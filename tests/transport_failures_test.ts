/**
 * Failures are clear and bounded, and a closed tunnel leaves nothing
 * behind on its target.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type BaseTunnel,
  ConnectError,
  Docker,
  type DockerOptions,
  Podman,
  Sudo,
  Tunnel,
} from "../mod.ts";
import type { SshOptions } from "../transports/ssh.ts";
import { moduleUrl, pid, startSleeper } from "./fixtures/funcs.ts";
import {
  hosts,
  type HostsEnv,
  hostTest,
  sh,
  sleepingContainer,
} from "./_hosts.ts";

const TIMEOUT = 10_000;
const quiet = { output: () => {}, connectTimeout: TIMEOUT };

function ssh(host: string, options: SshOptions = {}): Tunnel {
  return new Tunnel(host, {
    sshArgs: ["-F", hosts().ssh.config],
    ...quiet,
    ...options,
  });
}

function docker(name: string, options: DockerOptions = {}): Docker {
  const env = hosts().docker;
  return new Docker(name, {
    image: env.image,
    engineFlags: env.globalFlags,
    runFlags: [...env.runFlags, ...env.networkFlags],
    pull: "never",
    ...quiet,
    ...options,
  });
}

/**
 * Connects `tun`, expecting a ConnectError within `within` ms whose
 * message names the host and matches each of `patterns`.
 */
async function failsClearly(
  tun: BaseTunnel,
  patterns: RegExp[],
  within = TIMEOUT,
): Promise<ConnectError> {
  const start = performance.now();
  const error = await tun.connect().then(() => undefined, (e) => e);
  const took = performance.now() - start;
  await tun.close();
  assert.ok(error instanceof ConnectError, `connected, or: ${error}`);
  assert.ok(took < within, `took ${took} ms`);
  assert.ok(error.message.includes(`"${tun.host}"`), error.message);
  for (const p of patterns) assert.match(error.message, p);
  return error;
}

hostTest(
  "SSH failure: an unknown host names ssh's error and the cause",
  async () => {
    const e = await failsClearly(ssh("no-such-host.invalid"), [
      /ssh exited with code 255/,
      /Could not resolve hostname no-such-host\.invalid/,
      /does not resolve/,
    ]);
    assert.equal(e.exitCode, 255);
    assert.equal(e.stage, "transport");
  },
);

hostTest("SSH failure: a refused port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const e = await failsClearly(ssh("127.0.0.1", { port }), [
    new RegExp(`port ${port}: Connection refused`),
    /check the port and that sshd runs/,
  ]);
  assert.equal(e.stage, "transport");
});

hostTest(
  "SSH failure: a wrong user or a wrong key fails authentication",
  async (env) => {
    const e = await failsClearly(
      ssh("local-ssh", { user: "chopsticks-nobody" }),
      [
        /Permission denied \(publickey\)/,
        /authentication failed: check the user and the key/,
      ],
    );
    assert.equal(e.stage, "transport");
    const dir = await Deno.makeTempDir();
    try {
      const keygen = await sh("ssh-keygen", [
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-f",
        `${dir}/wrong`,
      ]);
      assert.equal(keygen.code, 0, keygen.stderr);
      const local = env.ssh.hosts["local-ssh"];
      await failsClearly(
        new Tunnel(local.address, {
          ...quiet,
          user: local.user,
          port: local.port,
          identityFile: `${dir}/wrong`,
          sshOptions: {
            IdentitiesOnly: true,
            UserKnownHostsFile: env.ssh.knownHosts,
            GlobalKnownHostsFile: "/dev/null",
          },
        }),
        [/Permission denied \(publickey\)/, /authentication failed/],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

hostTest(
  "SSH failure: an unknown host key is refused, never accepted silently",
  async () => {
    const e = await failsClearly(
      ssh("local-ssh", { sshOptions: { UserKnownHostsFile: "/dev/null" } }),
      [/Host key verification failed/, /add it to known_hosts/],
    );
    assert.equal(e.stage, "transport");
  },
);

hostTest("SSH failure: a host without deno at the given path", async () => {
  const e = await failsClearly(ssh("local-ssh", { deno: "/no/such/deno" }), [
    /deno not found: \/no\/such\/deno/,
    /deno: "upload"/,
  ]);
  assert.equal(e.exitCode, 127);
  assert.equal(e.stage, "deno");
});

hostTest("SSH failure: sudo that wants a password fails at once", async () => {
  const e = await failsClearly(ssh("pw", { sudo: true }), [
    /sudo: a password is required/,
    /NOPASSWD/,
  ]);
  assert.equal(e.stage, "sudo");
});

hostTest(
  "SSH failure: an address that never answers is bounded by connectTimeout",
  async (env) => {
    const silent = env.ssh.bridgeAddress.replace(/\.\d+$/, ".99");
    const e = await failsClearly(
      ssh(silent, {
        connectTimeout: 1_500,
        sshOptions: { ConnectTimeout: 60 },
      }),
      [/no answer within 1500 ms|No route to host|timed out/],
      3_000,
    );
    assert.ok(e.stage === "timeout" || e.stage === "transport", e.stage);
  },
);

hostTest("Sudo failure: an unknown user", async () => {
  const e = await failsClearly(new Sudo("chopsticks-no-such-user", quiet), [
    /unknown user chopsticks-no-such-user/,
    /does not exist/,
  ]);
  assert.equal(e.stage, "sudo");
});

hostTest("Docker failure: a missing image", async () => {
  const e = await failsClearly(
    docker(`chop-fail-${Deno.pid}`, { image: "chopsticks-missing:latest" }),
    [
      /No such image: chopsticks-missing:latest/,
      /the image is not there/,
    ],
  );
  assert.equal(e.exitCode, 125);
});

hostTest("Podman failure: a missing image", async (env) => {
  await failsClearly(
    new Podman(`chop-fail-${Deno.pid}`, {
      ...quiet,
      image: "chopsticks-missing:latest",
      engineFlags: env.podman.globalFlags,
      runFlags: [...env.podman.runFlags, ...env.podman.networkFlags],
      pull: "never",
    }),
    [/chopsticks-missing:latest/, /the image is not there/],
  );
});

hostTest(
  "Docker failure: exec into a container that does not exist",
  async (env) => {
    await failsClearly(
      new Docker(`chop-absent-${Deno.pid}`, {
        ...quiet,
        exec: true,
        engineFlags: env.docker.globalFlags,
      }),
      [/No such container/, /needs a running container/],
    );
  },
);

/** What an agent leaves on its target while it runs. */
interface Traces {
  pids: number[];
  dirs: string[];
}

/** The agent's pid, its script's pid, a child's pid, and its temp dirs. */
async function traces(tun: BaseTunnel): Promise<Traces> {
  const agent = await tun.call(pid);
  const child = await tun.call(startSleeper);
  const stat = await tun.call(Deno.readTextFile, `/proc/${agent}/stat`);
  const script = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  const cmdline = await tun.call(Deno.readTextFile, "/proc/self/cmdline");
  const fifo = cmdline.split("\0").find((a) => /\/chopsticks\.\w+\/i$/.test(a));
  const cache = await tun.call(Deno.env.get, "DENO_DIR");
  assert.ok(fifo && cache, `${cmdline} ${cache}`);
  // Deno's cache is kept per user; what this agent added to it is not.
  const port = new URL(await tun.call(moduleUrl)).port;
  return {
    pids: [agent, script, child],
    dirs: [
      fifo.slice(0, -2),
      `${cache}/remote/http/127.0.0.1_PORT${port}`,
      `${cache}/gen/http/127.0.0.1_PORT${port}`,
    ],
  };
}

/** Waits up to 3 s until `run(script)` prints nothing; returns what it printed. */
async function settles(
  run: (script: string) => Promise<string>,
  t: Traces,
): Promise<string> {
  const script = [
    // A zombie does not count: it has ended, and a container whose pid 1
    // is `sleep` never reaps it.
    ...t.pids.map((p) =>
      `s=$(cat /proc/${p}/stat 2>/dev/null) && case \${s##*) } in Z*) ;; *) echo "process ${p}" ;; esac`
    ),
    ...t.dirs.map((d) => `[ -e '${d}' ] && echo "file ${d}"`),
    "true",
  ].join("; ");
  const deadline = Date.now() + 3_000;
  let left = await run(script);
  while (left !== "" && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = await run(script);
  }
  return left;
}

hostTest(
  "SSH: a closed tunnel leaves no process and no temp file on the host",
  async (env) => {
    const run = async (script: string) =>
      (await sh("ssh", ["-F", env.ssh.config, "local-ssh", script])).stdout;
    const tun = ssh("local-ssh");
    const t = await traces(tun);
    const before = await run(
      t.pids.map((p) => `kill -0 ${p} && echo ${p}`).join("; "),
    );
    assert.equal(before.split("\n").length, 3, "all three run before close");
    await tun.close();
    assert.equal(await settles(run, t), "");
  },
);

hostTest(
  "Docker: a closed tunnel leaves no container, and exec leaves no process or file",
  async (env) => {
    const flags = env.docker.globalFlags;
    const box = docker(`chop-gone-${Deno.pid}`);
    await box.connect();
    await box.close();
    assert.equal(await containers(env, box.host), "");

    const name = `chop-stay-${Deno.pid}`;
    await sleepingContainer(env, name, { deno: true });
    try {
      const tun = new Docker(name, {
        ...quiet,
        exec: true,
        engineFlags: flags,
      });
      const t = await traces(tun);
      await tun.close();
      const run = async (script: string) =>
        (await sh("docker", [...flags, "exec", name, "sh", "-c", script]))
          .stdout;
      assert.equal(await settles(run, t), "");
      const ps = await run(
        `ps -o stat,comm | awk 'NR > 1 && $1 !~ /^Z/ && $2 !~ /^(ps|sh|awk)$/ { print $2 }'`,
      );
      assert.equal(ps, "sleep", "only the container's own process is left");
    } finally {
      await sh("docker", [...flags, "rm", "-f", name]);
    }
  },
);

hostTest(
  "Docker: a connect that times out leaves no container",
  async (env) => {
    const box = docker(`chop-slow-${Deno.pid}`, { connectTimeout: 150 });
    const error = await box.connect().catch((e) => e);
    assert.ok(error instanceof ConnectError, String(error));
    assert.equal(error.stage, "timeout");
    const deadline = Date.now() + 5_000;
    while (await containers(env, box.host) !== "" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await containers(env, box.host), "");
  },
);

async function containers(env: HostsEnv, name: string): Promise<string> {
  return (await sh("docker", [
    ...env.docker.globalFlags,
    "ps",
    "-a",
    "--filter",
    `name=^${name}$`,
    "--format",
    "{{.Names}} {{.Status}}",
  ])).stdout;
}
