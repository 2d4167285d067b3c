import assert from "node:assert/strict";
import { parseCommand } from "./parse_command.ts";
import { UsageError } from "./usage_error.ts";

Deno.test("parseCommand() reads a call with hosts, SSH flags and JSON args", () => {
  const cmd = parseCommand([
    "call",
    "--hosts",
    "web1, web2",
    "--hosts=web3",
    "--user",
    "deploy",
    "--port",
    "2222",
    "--identity",
    "key",
    "--ssh-option",
    "ProxyJump=bastion",
    "--ssh-option",
    "ConnectTimeout=5",
    "./tasks.ts#uptime",
    "--args",
    '[1, "x"]',
    "--concurrency",
    "5",
    "--timeout",
    "1500",
    "--json",
    "--no-progress",
  ]);
  assert.deepEqual(cmd, {
    command: "call",
    target: "./tasks.ts#uptime",
    args: [1, "x"],
    hosts: {
      hosts: ["web1", "web2", "web3"],
      inventory: undefined,
      group: undefined,
      transport: "ssh",
      user: "deploy",
      port: 2222,
      identityFile: "key",
      sshOptions: { ProxyJump: "bastion", ConnectTimeout: "5" },
      deno: undefined,
      connectTimeout: undefined,
    },
    run: { concurrency: 5, timeout: 1500, json: true, progress: false },
  });
});

Deno.test("parseCommand() reads --local as a count or names", () => {
  const count = parseCommand(["facts", "--local", "3"]);
  assert.equal(count.command, "facts");
  if (count.command !== "facts") return;
  assert.deepEqual(count.hosts.hosts, ["local1", "local2", "local3"]);
  assert.equal(count.hosts.transport, "local");
  const named = parseCommand(["facts", "--local", "a,b"]);
  assert.deepEqual(named.command === "facts" && named.hosts.hosts, ["a", "b"]);
});

Deno.test("parseCommand() reads put and fetch", () => {
  const put = parseCommand([
    "put",
    "--local",
    "1",
    "a.txt",
    "/tmp/a",
    "--mode",
    "0640",
  ]);
  assert.ok(put.command === "put");
  assert.equal(put.local, "a.txt");
  assert.equal(put.remote, "/tmp/a");
  assert.equal(put.mode, 0o640);
  const noRemote = parseCommand(["put", "--local", "1", "a.txt"]);
  assert.ok(noRemote.command === "put" && noRemote.remote === undefined);
  const fetch = parseCommand([
    "fetch",
    "--inventory",
    "hosts.json",
    "--group",
    "web",
    "--transport",
    "local",
    "/etc/x",
    "out/{host}",
  ]);
  assert.ok(fetch.command === "fetch");
  assert.equal(fetch.template, "out/{host}");
  assert.equal(fetch.hosts.inventory, "hosts.json");
  assert.equal(fetch.hosts.transport, "local");
});

Deno.test("parseCommand() reads help in every form", () => {
  assert.deepEqual(parseCommand(["--help"]), { command: "help" });
  assert.deepEqual(parseCommand(["-h"]), { command: "help" });
  assert.deepEqual(parseCommand(["help"]), {
    command: "help",
    topic: undefined,
  });
  assert.deepEqual(parseCommand(["help", "put"]), {
    command: "help",
    topic: "put",
  });
  assert.deepEqual(parseCommand(["call", "--help"]), {
    command: "help",
    topic: "call",
  });
});

Deno.test("parseCommand() refuses bad command lines with a UsageError", () => {
  const cases: [string[], RegExp][] = [
    [[], /Missing a command/],
    [["deploy"], /Unknown command "deploy"/],
    [["call", "--hosts", "a"], /"call" takes module#export, got none/],
    [["call", "--hosts", "a", "x#y", "z"], /got "x#y" "z"/],
    [["facts"], /No hosts: give --hosts, --inventory or --local/],
    [["facts", "--bogus"], /Unknown option '--bogus'/],
    [["facts", "--hosts"], /argument missing/],
    [["facts", "--local", "2", "--hosts", "a"], /cannot be combined/],
    [["facts", "--local", "0"], /needs a count or names/],
    [["facts", "--hosts", "a", "--group", "web"], /--group needs --inventory/],
    [["facts", "--hosts", "a", "--port", "70000"], /not a port number/],
    [["facts", "--hosts", "a", "--port", "ssh"], /not a positive whole number/],
    [["facts", "--hosts", "a", "--concurrency", "0"], /not a positive whole/],
    [["facts", "--hosts", "a", "--timeout", "soon"], /not a positive number/],
    [
      ["facts", "--hosts", "a", "--timeout", "0x10"],
      /"0x10" is not a positive/,
    ],
    [["facts", "--hosts", "a", "--connect-timeout", "1e3"], /not a positive/],
    [["facts", "--hosts", "a", "--ssh-option", "Foo"], /not Key=Value/],
    [["facts", "--hosts", "a", "--transport", "ftp"], /not "ssh" or "local"/],
    [["facts", "--hosts", "a", "--args", "[]"], /--args is only for "call"/],
    [["call", "--hosts", "a", "m#f", "--args", "{"], /not valid JSON/],
    [["call", "--hosts", "a", "m#f", "--args", "1"], /must be a JSON array/],
    [["put", "--hosts", "a", "f", "--mode", "rw"], /not an octal file mode/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(
      () => parseCommand(argv),
      (e: Error) => e instanceof UsageError && message.test(e.message),
      argv.join(" "),
    );
  }
  const error = (() => {
    try {
      parseCommand(["put", "--hosts", "a"]);
    } catch (e) {
      return e as UsageError;
    }
  })();
  assert.equal(error?.command, "put", "the error names its command");
});
