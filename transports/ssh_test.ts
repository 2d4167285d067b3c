import assert from "node:assert/strict";
import { ConnectError } from "../errors.ts";
import { add } from "../tests/fixtures/funcs.ts";
import { type SshOptions, Tunnel } from "./ssh.ts";

/** Exposes what a Tunnel would run. */
class Probe extends Tunnel {
  spec(script: string) {
    return this.spawnSpec(script);
  }
  explain(tail: string[]): string {
    return this.explainConnectError(this.#failure(tail)).message;
  }
  retries(tail: string[]): boolean {
    return this.retryable(this.#failure(tail));
  }
  #failure(tail: string[]): ConnectError {
    return new ConnectError(
      this.host,
      "transport",
      `Cannot connect to "${this.host}": ssh exited with code 255: ${
        tail.at(-1)
      }; ${this.connectHint}`,
      { exitCode: 255, stderrTail: tail },
    );
  }
}

const probe = (options: SshOptions = {}) => new Probe("web1", options);

Deno.test("Tunnel builds ssh arguments: BatchMode on, strict host keys", () => {
  const { command, args } = probe().spec("echo hi");
  assert.equal(command, "ssh");
  assert.deepEqual(args, [
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
    "-T",
    "-e",
    "none",
    "--",
    "web1",
    "sh -c 'echo hi'",
  ]);
});

Deno.test("Tunnel maps hostKeys onto StrictHostKeyChecking, and warns once when off", () => {
  const keys = (options: SshOptions) =>
    probe(options).spec("true").args.filter((a, i, all) =>
      all[i - 1] === "-o" && /KnownHostsFile|StrictHostKeyChecking/.test(a)
    );
  assert.deepEqual(keys({ hostKeys: "strict" }), [
    "StrictHostKeyChecking=yes",
  ]);
  assert.deepEqual(keys({ hostKeys: "accept-new" }), [
    "StrictHostKeyChecking=accept-new",
  ]);
  assert.deepEqual(keys({ hostKeys: "off", output: () => {} }), [
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "GlobalKnownHostsFile=/dev/null",
  ]);
  assert.deepEqual(
    keys({ sshOptions: { StrictHostKeyChecking: "accept-new" } }),
    ["StrictHostKeyChecking=accept-new"],
    "the caller's own option, without hostKeys, is used as it is",
  );
  assert.throws(
    () =>
      probe({ hostKeys: "off", sshOptions: { StrictHostKeyChecking: "no" } }),
    /give one/,
  );
  assert.throws(
    () => probe({ hostKeys: "yes" as "strict" }),
    /expected "strict", "accept-new" or "off"/,
  );
  const lines: string[] = [];
  const off = probe({ hostKeys: "off", output: (l) => lines.push(l) });
  off.spec("true");
  off.spec("true");
  assert.equal(lines.length, 1, "one warning per tunnel");
  assert.match(lines[0], /warning: host-key checking is off for "web1"/);
});

Deno.test("Tunnel puts the caller's ssh options first, so they win", () => {
  const { args } = probe({
    user: "deploy",
    port: 2222,
    identityFile: "/k/id",
    sshOptions: { BatchMode: false, ProxyJump: "bastion" },
    sshArgs: ["-F", "/etc/cfg"],
    ssh: "/opt/ssh",
  }).spec("true");
  assert.deepEqual(args.slice(0, 10), [
    "-F",
    "/etc/cfg",
    "-o",
    "BatchMode=no",
    "-o",
    "ProxyJump=bastion",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "BatchMode=yes",
  ]);
  assert.deepEqual(args.slice(10, 14), [
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=3",
  ]);
  assert.deepEqual(args.slice(14, 20), [
    "-p",
    "2222",
    "-l",
    "deploy",
    "-i",
    "/k/id",
  ]);
  assert.equal(probe({ ssh: "/opt/ssh" }).spec("true").command, "/opt/ssh");
});

Deno.test("Tunnel runs the agent through sudo -n, or sudo -S with a password", () => {
  const ok = /'echo chopsticks-sudo-ok-[0-9a-f]{16} >&2\nid'$/;
  const root = probe({ sudo: true }).spec("id").args.at(-1)!;
  assert.match(root, /^sudo -n -H -- sh -c /);
  assert.match(root, ok);
  const user = probe({ sudo: "www-data" }).spec("id").args.at(-1)!;
  assert.match(user, /^sudo -n -H -u www-data -- sh -c /);
  const asks = probe({ sudo: { user: "pg", password: "secret" } }).spec("id");
  const command = asks.args.at(-1)!;
  assert.match(
    command,
    /^sudo -S -p 'chopsticks-sudo-prompt-[0-9a-f]{16}\n' -H -u pg -- sh -c /,
  );
  assert.match(command, ok);
  assert.ok(!asks.args.join(" ").includes("secret"), "never in an argument");
  assert.ok(asks.preamble?.ready, "the boot lines wait for sudo");
});

Deno.test("Tunnel quotes the remote command so a POSIX login shell runs the script as is", async () => {
  const script = `printf '%s|' "it's" "$1" \`echo tick\` "a\\\\b"
echo "$HOME" >/dev/null; printf 'end\\n'`;
  const remote = probe().spec(script).args.at(-1)!;
  const run = async (args: string[]) =>
    new TextDecoder().decode(
      (await new Deno.Command("sh", { args }).output()).stdout,
    );
  assert.equal(await run(["-c", remote]), await run(["-c", script]));
});

Deno.test("Tunnel with controlPersist keeps its sockets in a private directory", async () => {
  const { args } = probe({ controlPersist: 60 }).spec("true");
  const path = args.find((a) => a.startsWith("ControlPath="))!.slice(12);
  assert.ok(args.includes("ControlMaster=auto"));
  assert.ok(args.includes("ControlPersist=60"));
  assert.match(path, /\/chopsticks-ssh-\d+\/%C-[0-9a-f]{12}$/);
  const info = await Deno.stat(path.slice(0, path.lastIndexOf("/")));
  assert.equal(info.mode! & 0o777, 0o700);
});

Deno.test("Tunnel with controlPersist shares a master connection only with tunnels of the same ssh options", () => {
  // %C names the host, port and users only: a strict tunnel rode on a
  // master that hostKeys "off" had opened, its key never checked.
  const path = (options: SshOptions) =>
    probe({ controlPersist: 60, ...options }).spec("true").args
      .find((a) => a.startsWith("ControlPath="));
  assert.equal(path({}), path({}));
  assert.equal(path({ user: "a" }), path({ user: "a" }));
  const others = [
    path({}),
    path({ hostKeys: "off" }),
    path({ hostKeys: "accept-new" }),
    path({ identityFile: "/k" }),
    path({ sshOptions: { ProxyJump: "bastion" } }),
    path({ sshArgs: ["-F", "/other/config"] }),
    path({ user: "a" }),
  ];
  assert.equal(new Set(others).size, others.length, others.join("\n"));
});

Deno.test("the control socket directory stays short: a long TMPDIR (macOS's) gives way to /tmp", async () => {
  // A socket's path is at most 104-108 bytes: under macOS's TMPDIR (about
  // 49 characters) ssh refused every connect ("ControlPath too long").
  const dir = (env: Record<string, string>) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { controlDir } from "${new URL(
          "./_control_dir.ts",
          import.meta.url,
        )}"; console.log(controlDir())`,
      ],
      env,
      clearEnv: true,
    }).output().then((o) => new TextDecoder().decode(o.stdout).trim());
  const long = `/tmp/${"x".repeat(42)}/T/`;
  await Deno.mkdir(long, { recursive: true });
  try {
    const uid = Deno.uid();
    assert.equal(await dir({ TMPDIR: long }), `/tmp/chopsticks-ssh-${uid}`);
    assert.equal(
      await dir({ TMPDIR: "/tmp/" }),
      `/tmp/chopsticks-ssh-${uid}`,
      "without a double slash",
    );
  } finally {
    await Deno.remove(`/tmp/${"x".repeat(42)}`, { recursive: true });
  }
});

Deno.test("Tunnel refuses bad hosts and options before running anything", () => {
  assert.throws(() => new Tunnel("-oProxyCommand=evil"), TypeError);
  assert.throws(() => new Tunnel("a b"), TypeError);
  assert.throws(() => new Tunnel("web1", { port: 0 }), RangeError);
  assert.throws(() => new Tunnel("web1", { user: "-x" }), TypeError);
  assert.throws(() => new Tunnel("web1", { sudo: "a;b" }), TypeError);
  assert.throws(() => new Tunnel("web1", { controlPersist: 0 }), RangeError);
  assert.throws(
    () => new Tunnel("web1", { sshOptions: { "Port=1 -o X": 1 } }),
    TypeError,
  );
});

Deno.test("Tunnel explains ssh failures by their likely cause", () => {
  const p = probe();
  const cases: [string[], RegExp][] = [
    [
      ["deploy@web1: Permission denied (publickey)."],
      /: deploy@web1: Permission denied \(publickey\); authentication failed/,
    ],
    [
      [
        "No ED25519 host key is known for web1",
        "Host key verification failed.",
      ],
      /verification failed; the host key of "web1" is not known .*ssh-keyscan web1 .*hostKeys: "accept-new"/,
    ],
    [
      [
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
        "Host key for web1 has changed and you have requested strict checking.",
        "Host key verification failed.",
      ],
      /verification failed; the host key of "web1" has CHANGED .*ssh-keygen -R web1/,
    ],
    [
      ["ssh: Could not resolve hostname web1: Name or service not known"],
      /does not resolve/,
    ],
    [
      ["ssh: connect to host web1 port 22: Connection refused"],
      /nothing listens there/,
    ],
    [
      ["ssh: connect to host web1 port 22: No route to host"],
      /cannot be reached/,
    ],
    [["sudo: a password is required"], /NOPASSWD/],
  ];
  for (const [tail, expected] of cases) {
    const message = p.explain(tail);
    assert.match(message, expected);
    assert.match(
      message,
      /^Cannot connect to "web1": ssh exited with code 255: /,
    );
    assert.ok(!message.includes("BatchMode=yes), and"), message);
  }
  assert.match(p.explain(["something else"]), /something else; check the host/);
  // On another port, known_hosts records [host]:port: `ssh-keygen -R web1`
  // removed nothing there.
  const changed = [
    "Host key for [web1]:2222 has changed and you have requested strict checking.",
    "Host key verification failed.",
  ];
  assert.match(
    new Probe("web1", { port: 2222 }).explain(changed),
    /remove the old one \(ssh-keygen -R '\[web1\]:2222'\)/,
  );
  assert.match(
    new Probe("web1", { port: 22 }).explain(changed),
    /ssh-keygen -R web1\)/,
  );
});

Deno.test("Tunnel explains a failure at once however long the target's stderr lines", () => {
  // A target's login script may print anything to ssh's stderr: lines of
  // 64 KiB that start a host-key pattern again and again held the
  // controller for 17 s while the patterns ran over whole lines.
  const long = (s: string) => s.repeat(65_536 / s.length + 1).slice(0, 65_536);
  const tail = [
    ...Array(10).fill(long("Host key ")),
    ...Array(10).fill(long("Host key for ")),
    "deploy@web1: Permission denied (publickey).",
  ];
  const start = performance.now();
  assert.match(probe().explain(tail), /authentication failed/);
  assert.equal(probe().retries(tail), false);
  const took = performance.now() - start;
  assert.ok(took < 1000, `took ${took.toFixed(0)} ms`);
});

Deno.test("Tunnel runs an agent through any ssh-like program (a stub that runs the command locally)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const stub = `${dir}/ssh`;
    await Deno.writeTextFile(
      stub,
      `#!/bin/sh\nprintf '%s\\n' "$@" >"$0.args"\nfor last; do :; done\nexec sh -c "$last"\n`,
      { mode: 0o755 },
    );
    await using tun = new Tunnel("stubbed", { ssh: stub, user: "me" });
    assert.equal(await tun.call(add, 40, 2), 42);
    const args = (await Deno.readTextFile(`${stub}.args`)).split("\n");
    assert.deepEqual(args.slice(2, 4), ["-o", "BatchMode=yes"]);
    assert.deepEqual(args.slice(8, 10), ["-l", "me"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
