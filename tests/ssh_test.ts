import assert from "node:assert/strict";
import { ConnectError, Ssh, Tunnel, type TunnelOptions } from "../mod.ts";
import * as facts from "../facts.ts";
import { add } from "./fixtures/funcs.ts";
import { controlDir } from "../transports/_control_dir.ts";
import { capture, conformance } from "./_conformance.ts";
import { filesConformance } from "./_files_conformance.ts";
import { hosts, type HostsEnv, hostTest, sh, skipReason } from "./_hosts.ts";

/** A tunnel to the alias `host` of the test hosts' ssh config. */
function ssh(
  host: string,
  options: ConstructorParameters<typeof Tunnel>[1] = {},
) {
  return new Tunnel(host, { sshArgs: ["-F", hosts().ssh.config], ...options });
}

const ignore = skipReason();
conformance("SSH", (options?: TunnelOptions) => ssh("local-ssh", options), {
  ignore,
});
conformance(
  "SSH+sudo",
  (options?: TunnelOptions) =>
    ssh("local-ssh", { sudo: true, controlPersist: 60, ...options }),
  { ignore },
);

if (!ignore) {
  filesConformance(
    "SSH",
    (options?: TunnelOptions) => ssh("local-ssh", options),
  );
  filesConformance(
    "SSH+sudo",
    (options?: TunnelOptions) =>
      ssh("local-ssh", { sudo: true, controlPersist: 60, ...options }),
  );
}

hostTest("SSH: the seed's example works as written", async () => {
  const tun = ssh("local-ssh");
  const time = await tun.call(Date.now);
  console.log("Time on %s:", tun.host, time);
  assert.ok(Math.abs(time - Date.now()) < 60_000);
  await tun.close();
  assert.equal(Ssh, Tunnel, "Ssh is another name for Tunnel");
});

hostTest(
  "SSH: three hosts in their own namespaces answer with their own names",
  async (env) => {
    const tunnels = env.ssh.multiHosts.map((h) => ssh(h));
    try {
      const names = await Promise.all(
        tunnels.map((t) => t.call(facts.hostname)),
      );
      assert.deepEqual(
        names,
        env.ssh.multiHosts.map((h) => env.ssh.hosts[h].hostname),
      );
    } finally {
      await Promise.all(tunnels.map((t) => t.close()));
    }
  },
);

hostTest(
  "SSH: user, port and identityFile work without a config file",
  async (env) => {
    const local = env.ssh.hosts["local-ssh"];
    await using tun = new Tunnel(local.address, {
      user: local.user,
      port: local.port,
      identityFile: env.ssh.identityFile,
      sshOptions: {
        UserKnownHostsFile: env.ssh.knownHosts,
        GlobalKnownHostsFile: "/dev/null",
        IdentitiesOnly: true,
      },
    });
    assert.equal(await tun.call(add, 20, 22), 42);
    assert.equal(await tun.call(Deno.uid), await uidOf(local.user));
  },
);

hostTest(
  "SSH: env and cwd with quotes, spaces and $ survive the remote login shell",
  async () => {
    const odd = `it's "$HOME" \`x\` $(y) \\ ; & |`;
    const dir = `/tmp/chopsticks-quote ${crypto.randomUUID()} '$x'`;
    await using setup = ssh("local-ssh");
    await setup.call(Deno.mkdir, dir);
    try {
      await using tun = ssh("local-ssh", { env: { ODD: odd }, cwd: dir });
      assert.equal(await tun.call(Deno.env.get, "ODD"), odd);
      assert.equal(await tun.call(Deno.cwd), dir);
    } finally {
      await setup.call(Deno.remove, dir);
    }
  },
);

hostTest(
  "SSH: a login shell that prints junk on stdout does not corrupt the channel",
  async () => {
    const { lines, options } = capture();
    const tun = ssh("noisy", options);
    assert.equal(await tun.call(add, 1, 2), 3);
    await tun.close();
    assert.ok(lines.some((l) => l.startsWith("NOISY")), String(lines));
  },
);

hostTest(
  "SSH: sudo as a named user runs the agent as that user",
  async (env) => {
    await using tun = ssh("local-ssh", { sudo: env.sudo.user });
    assert.equal(await tun.call(Deno.uid), await uidOf(env.sudo.user));
    assert.equal(
      await tun.call(Deno.env.get, "HOME"),
      `/home/${env.sudo.user}`,
      "sudo -H sets the target user's HOME",
    );
  },
);

hostTest(
  "SSH: controlPersist shares one connection through a private socket",
  async (env) => {
    const dir = controlDir();
    await stopMaster(env, dir);
    const first = ssh("local-ssh", { controlPersist: 30 });
    const start = performance.now();
    await first.call(add, 1, 1);
    const cold = performance.now() - start;
    await first.close();
    const info = await Deno.stat(dir);
    assert.equal(info.mode! & 0o777, 0o700);
    assert.equal(
      [...Deno.readDirSync(dir)].length >= 1,
      true,
      "a control socket",
    );
    try {
      const second = ssh("local-ssh", { controlPersist: 30 });
      const again = performance.now();
      await second.call(add, 1, 1);
      const warm = performance.now() - again;
      await second.close();
      assert.ok(warm < cold, `reuse took ${warm} ms, the first ${cold} ms`);
    } finally {
      await stopMaster(env, dir);
    }
  },
);

hostTest(
  'SSH: deno "upload" ships the controller\'s deno once and reuses it, through a noisy login shell',
  async (env) => {
    const host = "noisy"; // its login shell prints junk around the step
    const home = `/home/${env.ssh.hosts[host].user}`;
    const clear = await sh("ssh", [
      "-F",
      env.ssh.config,
      host,
      "rm -rf ~/.cache/chopsticks",
    ]);
    assert.equal(clear.code, 0, clear.stderr);

    const missing = await ssh(host, { deno: "/no/such/deno", output: () => {} })
      .connect().catch((e) => e);
    assert.ok(missing instanceof ConnectError, String(missing));
    assert.match(missing.message, /deno not found: \/no\/such\/deno/);
    assert.match(missing.message, /deno: "upload"/);

    const first = capture();
    await using tun = ssh(host, {
      ...first.options,
      deno: "upload",
    });
    const path = await tun.call(Deno.execPath);
    assert.match(
      path,
      new RegExp(
        `^${home}/\\.cache/chopsticks/deno-${Deno.version.deno}-[0-9a-f]{16}$`,
      ),
    );
    assert.ok(
      first.lines.some((l) => /uploaded deno/.test(l)),
      String(first.lines),
    );
    const mtime = (await tun.call(Deno.stat, path)).mtime;
    assert.equal((await tun.call(Deno.stat, path)).mode! & 0o777, 0o700);
    await tun.close();

    const second = capture();
    await using again = ssh(host, {
      ...second.options,
      deno: "upload",
    });
    assert.equal(await again.call(Deno.execPath), path);
    assert.deepEqual(
      (await again.call(Deno.stat, path)).mtime,
      mtime,
      "not uploaded again",
    );
    assert.ok(
      !second.lines.some((l) => /uploaded deno/.test(l)),
      String(second.lines),
    );
    const left = await sh("ssh", [
      "-F",
      env.ssh.config,
      host,
      "echo; echo LIST; ls ~/.cache/chopsticks",
    ]);
    assert.deepEqual(
      left.stdout.split("\nLIST\n")[1].split("\n").filter((f) =>
        f.startsWith("deno-")
      ),
      [path.split("/").at(-1)],
    );
  },
);

hostTest(
  'SSH: a strict tunnel never rides on a master connection that hostKeys "off" opened',
  async (env) => {
    const dir = controlDir();
    const known = await Deno.makeTempFile();
    await stopMaster(env, dir);
    try {
      // This host's key is not in `known`: a strict tunnel is refused.
      const strict = () =>
        ssh("local-ssh", {
          sshOptions: { UserKnownHostsFile: known },
          controlPersist: 30,
        });
      const alone = strict();
      const refused = await alone.connect().then(() => undefined, (e) => e);
      await alone.close();
      assert.ok(refused instanceof ConnectError, String(refused));
      const off = ssh("local-ssh", { hostKeys: "off", controlPersist: 30 });
      assert.equal(await off.call(add, 1, 1), 2);
      await off.close();
      // The master "off" left open shared %C with it: it connected.
      const after = strict();
      const error = await after.connect().then(() => undefined, (e) => e);
      await after.close();
      assert.ok(error instanceof ConnectError, String(error));
      assert.match(error.message, /host key .* is not known/);
    } finally {
      await stopMaster(env, dir);
      await Deno.remove(known);
    }
  },
);

async function uidOf(user: string): Promise<number> {
  return Number((await sh("id", ["-u", user])).stdout);
}

/** Stops every master connection with a socket in `dir`. */
async function stopMaster(env: HostsEnv, dir: string): Promise<void> {
  let sockets: string[] = [];
  try {
    sockets = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`);
  } catch {
    // No directory yet: no master.
  }
  for (const socket of sockets) {
    await sh("ssh", [
      "-F",
      env.ssh.config,
      "-o",
      `ControlPath=${socket}`,
      "-O",
      "exit",
      "local-ssh",
    ]);
  }
}
