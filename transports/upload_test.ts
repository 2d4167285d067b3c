import assert from "node:assert/strict";
import { ConnectError } from "../errors.ts";
import { BaseTunnel, type TunnelOptions } from "../tunnel/base_tunnel.ts";
import type { SpawnSpec } from "../tunnel/_connection.ts";
import { add } from "../tests/fixtures/funcs.ts";
import { localDeno } from "./_upload.ts";

/** A local agent with its own HOME, and an optional shell prelude. */
class Home extends BaseTunnel {
  #prelude: string;
  constructor(home: string, prelude = "", options: TunnelOptions = {}) {
    super("upload-test", { deno: "upload", ...options });
    this.#prelude =
      `HOME='${home}'; export HOME; unset XDG_CACHE_HOME\n${prelude}\n`;
  }
  protected spawnSpec(script: string): SpawnSpec {
    return { command: "sh", args: ["-c", this.#prelude + script] };
  }
}

Deno.test("uploadDeno() ships deno into the per-user cache once, then reuses it", async () => {
  const home = await Deno.makeTempDir();
  try {
    const { key, size } = await localDeno();
    const lines: string[] = [];
    const output = (line: string) => lines.push(line);
    await using first = new Home(home, "", { output });
    assert.equal(await first.call(add, 1, 2), 3);
    const path = `${home}/.cache/chopsticks/${key}`;
    assert.equal(await first.call(Deno.execPath), path);
    assert.ok(
      lines.some((l) => l.startsWith("chopsticks: uploaded deno")),
      String(lines),
    );
    const info = await Deno.stat(path);
    assert.equal(info.size, size);
    assert.equal(info.mode! & 0o777, 0o700);
    assert.equal(
      (await Deno.stat(`${home}/.cache/chopsticks`)).mode! & 0o777,
      0o700,
    );
    await first.close();

    lines.length = 0;
    await using second = new Home(home, "", { output });
    assert.equal(await second.call(Deno.execPath), path);
    assert.deepEqual(lines, [], "nothing uploaded the second time");
    assert.deepEqual((await Deno.stat(path)).mtime, info.mtime);
    assert.deepEqual(
      [...Deno.readDirSync(`${home}/.cache/chopsticks`)].map((e) => e.name)
        .filter((name) => name.startsWith("deno-")),
      [key],
    );
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("uploadDeno() refuses a target of another OS or architecture, sending nothing", async () => {
  const home = await Deno.makeTempDir();
  try {
    const fake =
      `uname() { if [ "$1" = -s ]; then echo Linux; else echo riscv64; fi; }`;
    const tun = new Home(home, fake, { output: () => {} });
    const error = await tun.connect().catch((e) => e);
    assert.ok(error instanceof ConnectError, String(error));
    assert.match(
      error.message,
      new RegExp(
        `the target runs Linux riscv64, this deno is built for ${Deno.build.os} ${Deno.build.arch}`,
      ),
    );
    assert.deepEqual(
      [...Deno.readDirSync(`${home}/.cache/chopsticks`)].filter((e) =>
        e.name !== "modules"
      ),
      [],
      "no partial file is left",
    );
    await tun.close();
  } finally {
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("uploadDeno() reports a target that cannot keep a cache", async () => {
  const tun = new Home("", "unset HOME", { output: () => {} });
  const error = await tun.connect().catch((e) => e);
  assert.ok(error instanceof ConnectError, String(error));
  assert.match(error.message, /HOME is not set/);
  await tun.close();
});
