/**
 * The CLI as a user runs it: `deno run -A cli/mod.ts ...` as a subprocess,
 * with Local agents (`--local`, `--transport local`).
 *
 * @module
 */
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;
const FUNCS = "./tests/fixtures/group_funcs.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(...args: string[]): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/mod.ts", ...args],
    cwd: root,
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder();
  return {
    code: out.code,
    stdout: text.decode(out.stdout),
    stderr: text.decode(out.stderr),
  };
}

Deno.test("cli call prints host<TAB>ok<TAB>value lines off a terminal", async () => {
  const run = await cli(
    "call",
    "--local",
    "2",
    "./tests/fixtures/funcs.ts#add",
    "--args",
    "[2, 3]",
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "local1\tok\t5\nlocal2\tok\t5\n");
  assert.ok(!run.stderr.includes("\x1b["), "no progress off a terminal");
});

function withoutInitCwd(): Record<string, string> {
  const env = Deno.env.toObject();
  delete env.INIT_CWD;
  return env;
}

Deno.test("deno task cli takes paths from where it was run, as a user types them", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "--quiet",
      "--config",
      `${root}deno.json`,
      "cli",
      "call",
      "--local",
      "1",
      "./funcs.ts#add",
      "--args",
      "[2, 3]",
    ],
    cwd: `${root}tests/fixtures`,
    // As from a shell: deno task keeps an INIT_CWD it inherits (npm sets
    // one when the tests run through npx), and OLDPWD is the shell's own
    // (the task found the CLI by it, once its cd had not set it).
    clearEnv: true,
    env: { ...withoutInitCwd(), NO_COLOR: "1", OLDPWD: "/" },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(new TextDecoder().decode(out.stdout), "local1\tok\t5\n");
});

Deno.test("cli call --json prints one document; a failed host exits 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const run = await cli(
      "call",
      "--local",
      "a,b,c",
      `${FUNCS}#firstWins`,
      "--args",
      JSON.stringify([`${dir}/lock`]),
      "--json",
    );
    assert.equal(run.code, 1, run.stderr);
    const doc = JSON.parse(run.stdout);
    assert.equal(doc.command, "call");
    assert.equal(doc.ok, false);
    assert.deepEqual(doc.hosts.map((h: { host: string }) => h.host), [
      "a",
      "b",
      "c",
    ]);
    const ok = doc.hosts.filter((h: { ok: boolean }) => h.ok);
    assert.equal(ok.length, 1, "exactly one host wins");
    assert.equal(ok[0].value, "won");
    const failed = doc.hosts.filter((h: { ok: boolean }) => !h.ok);
    assert.equal(failed[0].error.name, "RemoteError");
    assert.equal(failed[0].error.remoteName, "AlreadyExists");
    assert.equal(typeof failed[0].ms, "number");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli reports a host that cannot connect and exits 1", async () => {
  const run = await cli(
    "call",
    "--local",
    "down",
    "--deno",
    "/no/such/deno",
    "--connect-timeout",
    "5000",
    `${FUNCS}#text`,
    "--args",
    '["x"]',
  );
  assert.equal(run.code, 1);
  assert.match(run.stdout, /^down\tfailed\tConnectError: .*down/);
});

Deno.test("cli facts prints the facts of every host", async () => {
  const run = await cli("facts", "--local", "2", "--json");
  assert.equal(run.code, 0, run.stderr);
  const doc = JSON.parse(run.stdout);
  for (const host of doc.hosts) {
    assert.equal(host.value.denoVersion, Deno.version.deno);
    assert.equal(host.value.hostname, Deno.hostname());
    assert.equal(host.value.platform.os, Deno.build.os);
    for (const fact of ["osRelease", "ip", "user", "loadAverage", "memory"]) {
      assert.ok(fact in host.value, fact);
    }
  }
});

Deno.test("cli put and fetch copy files; fetch refuses a template without {host}", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/src.txt`, "hello");
    const put = await cli(
      "put",
      "--local",
      "a",
      `${dir}/src.txt`,
      `${dir}/remote.txt`,
      "--mode",
      "600",
    );
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^a\tok\t\{"remotePath":".*remote\.txt"/);
    assert.equal((await Deno.stat(`${dir}/remote.txt`)).mode! & 0o777, 0o600);
    const fetch = await cli(
      "fetch",
      "--local",
      "a,b",
      `${dir}/remote.txt`,
      `${dir}/got-{host}.txt`,
    );
    assert.equal(fetch.code, 0, fetch.stderr);
    assert.equal(await Deno.readTextFile(`${dir}/got-b.txt`), "hello");
    const clash = await cli(
      "fetch",
      "--local",
      "a,b",
      `${dir}/remote.txt`,
      `${dir}/one.txt`,
    );
    assert.equal(clash.code, 2);
    assert.match(clash.stderr, /"a" and "b" would both write/);
    assert.match(clash.stderr, /chopsticks help fetch/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli fetch to a template ending in / puts each file in that host's directory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/app.log`, "line\n");
    const run = await cli(
      "fetch",
      "--local",
      "a,b",
      `${dir}/app.log`,
      `${dir}/logs/{host}/`,
    );
    assert.equal(run.code, 0, run.stderr);
    for (const host of ["a", "b"]) {
      const file = `${dir}/logs/${host}/app.log`;
      assert.equal(await Deno.readTextFile(file), "line\n", file);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli fetch names a host given twice, not the template", async () => {
  const run = await cli(
    "fetch",
    "--transport",
    "local",
    "--hosts",
    "web1",
    "--inventory",
    "tests/fixtures/inventory.json",
    "/etc/hostname",
    "/tmp/never/{host}.txt",
  );
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /host "web1" appears twice/);
  assert.doesNotMatch(run.stderr, /put \{host\} in the local path/);
});

Deno.test("cli reads hosts from an inventory group", async () => {
  const run = await cli(
    "call",
    "--inventory",
    "tests/fixtures/inventory.json",
    "--group",
    "web",
    "--transport",
    "local",
    `${FUNCS}#text`,
    "--args",
    '["hi"]',
  );
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, "web1\tok\thi\nweb2\tok\thi\n");
});

Deno.test("cli --help and help <command> document every command and option", async () => {
  const help = await cli("--help");
  assert.equal(help.code, 0);
  for (
    const word of [
      "call",
      "put",
      "fetch",
      "facts",
      "--hosts",
      "--inventory",
      "--group",
      "--local",
      "--transport",
      "--user",
      "--port",
      "--identity",
      "--ssh-option",
      "--deno",
      "--connect-timeout",
      "--concurrency",
      "--timeout",
      "--json",
      "--no-progress",
      "Exit status",
    ]
  ) {
    assert.ok(help.stdout.includes(word), `--help lacks ${word}`);
  }
  const call = await cli("help", "call");
  assert.equal(call.code, 0);
  assert.match(call.stdout, /--args JSON/);
  assert.match((await cli("put", "--help")).stdout, /--mode OCTAL/);
  const unknown = await cli("help", "deploy");
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /No help for "deploy"/);
});

Deno.test("cli calls a module of another project: agents load it from there", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      `{ "imports": { "h/": "./helpers/" } }`,
    );
    await Deno.mkdir(`${dir}/helpers`);
    await Deno.writeTextFile(`${dir}/helpers/n.ts`, "export const n = 41;\n");
    await Deno.writeTextFile(
      `${dir}/tasks.ts`,
      `import { n } from "./helpers/n.ts";\nexport const f = () => n + 1;\n`,
    );
    const run = await cli(
      "call",
      "--local",
      "1",
      "--json",
      `${dir}/tasks.ts#f`,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /42/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli usage errors exit 2 with a clear message", async () => {
  const cases: [string[], RegExp][] = [
    [[], /Missing a command/],
    [["facts"], /No hosts/],
    [["facts", "--local", "a,a"], /host "a" appears twice/],
    [
      ["call", "--local", "1", `${FUNCS}#nope`],
      /no export "nope"; its exported functions: .*boom/,
    ],
    [
      ["call", "--local", "1", "./missing.ts#f"],
      /Cannot import "\.\/missing\.ts"/,
    ],
    [
      ["call", "--local", "1", `${FUNCS}#text`, "--args", "{"],
      /not valid JSON/,
    ],
    [["put", "--local", "1", "/no/such/file"], /Cannot put "\/no\/such\/file"/],
    [
      ["put", "--local", "1", "tests"],
      /Cannot put "tests": it is not a regular file/,
    ],
    [
      ["fetch", "--local", "1", "/etc/hostname", ""],
      /local path template is empty/,
    ],
    [["facts", "--inventory", "/no/such.json"], /Cannot read inventory/],
    [["facts", "--wat"], /Unknown option '--wat'/],
    // Parsed and ignored before: a local host uses no SSH option.
    [
      ["facts", "--local", "1", "--user", "deploy"],
      /--user is for SSH hosts: local hosts do not use it/,
    ],
    [["facts", "--local", "1", "--port", "2222"], /--port is for SSH hosts/],
    // It was taken, and every host failed with "deno not found:;".
    [["facts", "--local", "1", "--deno", ""], /--deno is empty/],
    [
      ["facts", "--transport", "local", "--hosts", "a", "--identity", "k"],
      /--identity is for SSH hosts/,
    ],
    [
      ["facts", "--local", "1", "--ssh-option", "ProxyJump=b"],
      /--ssh-option is for SSH hosts/,
    ],
  ];
  for (const [args, message] of cases) {
    const run = await cli(...args);
    assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message);
    assert.match(run.stderr, /^chopsticks: /);
    assert.equal(run.stdout, "");
  }
});

Deno.test("cli usage errors point at a help that exists, also for options before the command", async () => {
  // The first word not an option was taken for the command: a host name
  // or a count ("chopsticks help web1" then said there is no such help).
  const cases: [string[], string][] = [
    [["--hosts", "web1", "--wat", "facts"], "chopsticks help facts"],
    [["--local", "2", "facts", "--port"], "chopsticks help facts"],
    [["deploy", "--wat"], "chopsticks help"],
  ];
  for (const [args, help] of cases) {
    const run = await cli(...args);
    assert.equal(run.code, 2, run.stderr);
    assert.ok(run.stderr.endsWith(`Run "${help}" for usage.\n`), run.stderr);
    const followed = await cli(...help.split(" ").slice(1));
    assert.equal(followed.code, 0, `${help}: ${followed.stderr}`);
  }
});

Deno.test("cli whose stdout is closed (a reader that quit, | head) finishes quietly with status 1", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "cli/mod.ts", "call", "--local", "2", `${FUNCS}#text`],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await child.stdout.cancel();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
  ]);
  // It died of an uncaught BrokenPipe, with its stack.
  assert.equal(stderr, "");
  assert.equal(status.code, 1);
});

/**
 * Runs a shell command line on a terminal of its own (util-linux
 * `script`, 120 columns): its exit code and everything it showed.
 */
async function onTerminal(
  command: string,
  cwd: string,
): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command("script", {
    args: ["-qec", command, "/dev/null"],
    cwd,
    env: { NO_COLOR: "1", COLUMNS: "120" },
  }).output();
  return { code: out.code, text: new TextDecoder().decode(out.stdout) };
}

const script = await new Deno.Command("script", { args: ["--version"] })
  .output().then((o) => o.success, () => false);

Deno.test({
  name: "cli on a terminal shows live progress on stderr and a summary table",
  ignore: !script, // needs util-linux `script` to give the CLI a terminal
  fn: async () => {
    const command = [
      Deno.execPath(),
      "run",
      "-A",
      "cli/mod.ts",
      "call",
      "--local",
      "3",
      "--concurrency",
      "2",
      `${FUNCS}#span`,
      "--args",
      "'[100, \"t\"]'",
    ].join(" ");
    const out = await onTerminal(command, root);
    const text = out.text;
    assert.equal(out.code, 0, text);
    assert.ok(
      text.includes(
        "\r\x1b[2K[....................] 0/3 done, 0 failed, 0 running",
      ),
      text,
    );
    assert.match(text, /3\/3 done, 0 failed, 0 running/);
    assert.match(text, /HOST\s+STATUS\s+TIME\s+RESULT/);
    assert.match(text, /local3\s+ok\s+\d\.\d\d s\s+\{"tag":"t"/);
    assert.match(text, /3 hosts: 3 ok, 0 failed in/);
  },
});

Deno.test({
  name:
    "cli on a terminal clears its progress line before the interrupt is said",
  ignore: !script,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeTextFile(
        `${dir}/m.ts`,
        "export const hang = () => new Promise(() => {});\n",
      );
      const cli = `${Deno.execPath()} run -A ${root}cli/mod.ts`;
      const command =
        `${cli} call --local 2 ./m.ts#hang & P=$!; sleep 2; kill -INT $P; wait $P`;
      const out = await onTerminal(command, dir);
      const text = out.text;
      assert.equal(out.code, 130, text);
      // Said after the progress line, on the same line, it read
      // "... call m.ts#hangchopsticks: interrupted; ...".
      assert.ok(
        text.includes("\r\x1b[2Kchopsticks: interrupted; closing 2 tunnel(s)"),
        JSON.stringify(text.slice(-300)),
      );
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(text.split("interrupted")[1], /\x1b\[2K\[/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
