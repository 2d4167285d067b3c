/**
 * The controller against a hostile agent: `tests/fixtures/hostile_agent.ts`
 * runs in place of the real agent and breaks the protocol on purpose. In
 * every case the controller must settle within a few seconds with a clear
 * error, close that tunnel, allocate no more than a frame's worth, serve no
 * file outside its module roots, and keep a normal `Local` tunnel running
 * beside it answering calls throughout.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  BaseTunnel,
  ConnectError,
  ConnectionLostError,
  ProtocolError,
  RemoteError,
  type SpawnSpec,
} from "../mod.ts";
import { localDeno } from "../transports/_upload.ts";
import { MAX_FRAME } from "../wire/_protocol.ts";
import { MAX_MODULE } from "../modules/_module_server.ts";
import { SHARE } from "../tunnel/_module_requests.ts";
import {
  Bystander,
  callBreaks,
  Hostile,
  MiB,
  root,
  SETTLE_MS,
  settles,
} from "./fixtures/hostile_tunnel.ts";
import { add } from "./fixtures/funcs.ts";
import { withEnv } from "./_env.ts";

Deno.test("hostile agents: every broken protocol settles at once and leaves other tunnels running", async (t) => {
  const bystander = new Bystander();
  await bystander.start();
  const ext = (n: number) => ({ $ext: n });

  await t.step("noise before the handshake is capped at 1 MiB", async () => {
    const tun = new Hostile("noise-flood", undefined, { output: () => {} });
    const e = await settles(tun, () => tun.connect(), ConnectError);
    assert.match(String(e.cause), /more than 1 MiB of output/);
  });

  await t.step(
    'a line without end before deno: "upload" answers is capped at 1 MiB',
    async () => {
      await localDeno(); // hashed once, before measuring
      const before = Deno.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, Deno.memoryUsage().rss);
      }, 5);
      // Once 1 GiB and stalls of up to 9.6 s until connectTimeout.
      const tun = new EndlessLine("endless-line", {
        deno: "upload",
        connectTimeout: 10_000,
        output: () => {},
      });
      const e = await settles(tun, () => tun.connect(), ConnectError);
      clearInterval(sampler);
      assert.match(e.message, /more than 1 MiB of output while looking/);
      assert.equal((e as ConnectError).stage, "handshake");
      const grew = peak - before;
      assert.ok(grew < 128 * MiB, `the controller grew ${grew / MiB} MiB`);
    },
  );

  await t.step(
    "a length prefix of 0xFFFFFFFF is refused before its body comes",
    async () => {
      await callBreaks("huge-prefix", 0xffffffff, /length 4294967295/);
    },
  );

  await t.step(
    "a length prefix of MAX_FRAME + 1 is refused before its body comes",
    async () => {
      await callBreaks("huge-prefix", MAX_FRAME + 1, /outside 1\.\./);
    },
  );

  await t.step("a length prefix of 0 is refused", async () => {
    await callBreaks("huge-prefix", 0, /length 0/);
  });

  // 100 bytes are gathered from reads; 1 MiB is read in place.
  for (const length of [100, MiB]) {
    await t.step(
      `a frame of ${length} bytes cut short, then the end of output`,
      async () => {
        const tun = new Hostile("short-body", length, { output: () => {} });
        await tun.connect();
        await settles(tun, () => tun.call(add, 1, 2), ConnectionLostError);
      },
    );

    await t.step(
      `a frame of ${length} bytes cut short, from an agent that lingers`,
      async () => {
        const tun = new Hostile("short-body", length, {
          output: () => {},
          linger: true,
        });
        await tun.connect();
        await settles(tun, () => tun.call(add, 1, 2), ConnectionLostError);
      },
    );
  }

  await t.step(
    "a frame shorter than its body: the rest is a bad frame",
    async () => {
      await callBreaks("long-body", undefined, /outside 1\.\./);
    },
  );

  await t.step("a Msg frame that is not msgpack", async () => {
    await callBreaks("raw-msg", [0xc1], /invalid msgpack/);
    await callBreaks("raw-msg", [0x93, 0x01], /invalid msgpack/);
    await callBreaks("raw-msg", [], /invalid msgpack/);
  });

  await t.step(
    "a message that is not an array, or of an unknown type",
    async () => {
      await callBreaks("raw-msg", [0x01], /not an array/);
      await callBreaks("reply", [42, null, 1], /unknown message type 42/);
    },
  );

  await t.step("a reply to a call never made", async () => {
    for (const id of [999_999, 0, -1, 1.5, "1", null]) {
      const tun = new Hostile("reply", [1, id ?? 2 ** 31, 1], {
        output: () => {},
      });
      await tun.connect();
      await settles(
        tun,
        () => tun.call(add, 1, 2),
        ProtocolError,
        /never made/,
      );
    }
  });

  await t.step("a reply with a bad value tree", async () => {
    const bad: [string, unknown][] = [
      ["unknown marker", [ext(0), [ext(99)]]],
      ["marker standing alone", [ext(0), ext(3)]],
      ["root not at the top", [ext(0), [ext(0), 1]]],
      ["bad back reference", [ext(0), [ext(3), 7]]],
      ["__proto__ key", [ext(0), [ext(5), false, "__proto__", 1]]],
      ["huge bigint", [ext(0), [ext(6), "f".repeat(300_000)]]],
      ["bad view class", [ext(0), [ext(13), "Function", new Uint8Array(1)]]],
      ["marked nesting over MAX_DEPTH", [
        ext(0),
        // Within what msgpack allows here, over what the codec allows.
        JSON.parse("[".repeat(1005) + "1" + "]".repeat(1005)),
      ]],
    ];
    for (const [what, tree] of bad) {
      const tun = new Hostile("reply", [1, null, tree], { output: () => {} });
      await tun.connect();
      const e = await settles(
        tun,
        () => tun.call(add, 1, 2),
        ProtocolError,
        /a bad value/,
      );
      assert.ok(e.message.length < 2000, `${what}: the message is huge`);
    }
  });

  await t.step(
    "a huge remote error is cut to 64 KiB and settles at once",
    async () => {
      // 1 MB of "file://": the path mapping's regex once took minutes on
      // it (quadratic), blocking every tunnel.
      const huge = "file://".repeat(150_000);
      const replies: [string, unknown][] = [
        ["an Error", [ext(0), [ext(14), "Error", huge, huge]]],
        ["a string", huge],
      ];
      for (const [what, value] of replies) {
        await using tun = new Hostile("reply", [2, null, value], {
          output: () => {},
        });
        await tun.connect();
        const start = performance.now();
        const e = await tun.call(add, 1, 2).catch((e) => e);
        const took = performance.now() - start;
        assert.ok(e instanceof RemoteError, `${what}: ${e}`);
        assert.ok(took < 1000, `${what}: took ${took.toFixed(0)} ms`);
        for (const text of [e.message, e.remoteStack]) {
          assert.ok(text.length < 65_600, `${what}: ${text.length} chars`);
        }
        const note = "… [984464 more characters cut]";
        assert.ok(e.message.endsWith(note), e.message.slice(-80));
        assert.equal(tun.connected, true, "the tunnel stays open");
      }
    },
  );

  await t.step(
    "plain nesting over MAX_DEPTH (no markers) is refused",
    async () => {
      // The codec does not walk plain trees: the message check catches it.
      await callBreaks("deep-plain", 1_010, /nested deeper than 1008/);
      await callBreaks("deep-plain", 1_000_000, /nested deeper than 1008/);
    },
  );

  await t.step(
    "array headers claiming huge lengths allocate nothing",
    async () => {
      const before = Deno.memoryUsage().rss;
      // Without a check, each nested header makes the decoder allocate an
      // array of 30 M slots (240 MB) from a 40-byte frame.
      await callBreaks("array-bomb", 30_000_000, /invalid msgpack/);
      const grew = Deno.memoryUsage().rss - before;
      assert.ok(grew < 64 * MiB, `the controller grew ${grew / MiB} MiB`);
    },
  );

  await t.step("a frame body that never ends stops at MAX_FRAME", async () => {
    const before = Deno.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }, 5);
    const tun = new Hostile("endless-body", undefined, { output: () => {} });
    const e = await settles(tun, () => tun.connect(), ConnectError);
    clearInterval(sampler);
    assert.ok(e.cause instanceof ProtocolError, String(e.cause));
    const grew = peak - before;
    assert.ok(grew < 3 * MAX_FRAME, `the controller grew ${grew / MiB} MiB`);
  });

  await t.step("an endless stream of frames of an unknown kind", async () => {
    await callBreaks(
      "unknown-kind-flood",
      undefined,
      /unexpected frame kind 99/,
    );
  });

  await t.step("Data on a stream never opened", async () => {
    await callBreaks("data-unopened", 7, /stream 7 was never opened/);
    await callBreaks("data-unopened", 0, /stream 0 was never opened/);
  });

  await t.step("Ack, End and Abort for streams never opened", async () => {
    await callBreaks("stream-msg", [5, 3, 100], /stream 3 was never opened/);
    await callBreaks("stream-msg", [6, 9, "ab"], /stream 9 was never opened/);
    await callBreaks("stream-msg", [7, 1, "no"], /stream 1 was never opened/);
    await callBreaks("stream-msg", [5, "x", 1], /never opened/);
  });

  await t.step(
    "file data beyond the window or the size of a fetch",
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "chopsticks-hostile-" });
      try {
        const tun = new Hostile("fetch-flood", 1, { output: () => {} });
        await tun.connect();
        await settles(
          tun,
          () => tun.fetch("/x", `${dir}/got`),
          ProtocolError,
          /window|announced/,
        );
        assert.deepEqual([...Deno.readDirSync(dir)], [], "a file was left");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step(
    "an agent that reads nothing while the controller writes",
    async () => {
      const tun = new Hostile("deaf", 1500, { output: () => {} });
      await tun.connect();
      // 4 MiB fills the pipe: the controller is blocked writing when the
      // agent breaks the protocol.
      const big = "x".repeat(4 * MiB);
      await settles(tun, () => tun.call(add, 1, big as never), ProtocolError);
    },
  );

  await t.step(
    "module requests never reach a file outside the roots",
    async () => {
      await moduleProbe();
    },
  );

  await t.step(
    "a flood of module requests that are never read is held back",
    async () => {
      await moduleFlood();
    },
  );

  await t.step(
    "an upstream answer over a frame is cut off, not held whole",
    async () => {
      await upstreamTooLarge();
    },
  );

  await t.step(
    "module answers for an agent that reads nothing stay within its share; a download another agent waits on goes on; an agent that reads gets all it asks",
    async () => {
      await answersWithinShare();
    },
  );

  await t.step(
    "an agent whose output ends while its module answers wait for room leaves the controller responsive, holding little",
    async () => {
      await floodThenEnd();
    },
  );

  await bystander.stop();
  assert.deepEqual(bystander.failures, [], "the bystander's calls failed");
  assert.ok(bystander.calls > 20, `only ${bystander.calls} bystander calls`);
  assert.ok(
    bystander.worst < 2000,
    `a bystander call took ${bystander.worst.toFixed(0)} ms`,
  );
});

/** A target whose shell prints one line that never ends, and no more. */
class EndlessLine extends BaseTunnel {
  protected spawnSpec(_script: string): SpawnSpec {
    return {
      command: "sh",
      args: ["-c", "yes 0123456789abcdef | tr -d '\\n'"],
    };
  }
}

/** Files inside and outside the module roots for the module tests. */
interface Fixture {
  /** A directory under the project root (inside the roots). */
  inRoot: string;
  /** A directory in /tmp (outside the roots). */
  outside: string;
  /** Text in every file the agent must never get. */
  canary: string;
  /** Text of the one file it may get. */
  served: string;
}

async function mkfifo(path: string): Promise<void> {
  const { success } = await new Deno.Command("mkfifo", { args: [path] })
    .output();
  assert.ok(success, `mkfifo ${path}`);
}

async function makeFixture(): Promise<Fixture> {
  const token = crypto.randomUUID();
  const canary = `CANARY-${token}`;
  const served = `SERVED-${token}`;
  const outside = await Deno.makeTempDir({ prefix: "chopsticks-canary-" });
  const inRoot = `${root}/tests/fixtures/tmp/hostile-${Deno.pid}`;
  await Deno.mkdir(`${inRoot}/.git`, { recursive: true });
  await Deno.mkdir(`${inRoot}/sub/.secret`, { recursive: true });
  const code = `export const canary = "${canary}";\n`;
  await Deno.writeTextFile(`${outside}/canary.ts`, code);
  await Deno.writeTextFile(`${outside}/canary.json`, `"${canary}"\n`);
  await mkfifo(`${outside}/fifo.ts`);
  await Deno.writeTextFile(
    `${inRoot}/ok.ts`,
    `export const ok = "${served}";\n`,
  );
  await Deno.writeTextFile(`${inRoot}/.env`, `TOKEN=${canary}\n`);
  await Deno.writeTextFile(`${inRoot}/.hidden.ts`, code);
  await Deno.writeTextFile(`${inRoot}/canary.txt`, canary);
  await Deno.writeTextFile(`${inRoot}/.git/config`, canary);
  await Deno.writeTextFile(`${inRoot}/.git/config.json`, `"${canary}"`);
  await Deno.writeTextFile(`${inRoot}/sub/.secret/x.ts`, code);
  await Deno.symlink(`${outside}/canary.ts`, `${inRoot}/link.ts`);
  await Deno.symlink(outside, `${inRoot}/dirlink`);
  await Deno.symlink(`${outside}/fifo.ts`, `${inRoot}/fifolink.ts`);
  await mkfifo(`${inRoot}/pipe.ts`);
  // Over a frame: refused by its size, never read (it is sparse).
  const huge = await Deno.open(`${inRoot}/huge.json`, {
    write: true,
    create: true,
  });
  await huge.truncate(MAX_FRAME + 1);
  huge.close();
  return { inRoot, outside, canary, served };
}

async function removeFixture(f: Fixture): Promise<void> {
  await Deno.remove(f.inRoot, { recursive: true });
  await Deno.remove(f.outside, { recursive: true });
}

/** A stand-in npm and JSR registry that records the paths asked of it. */
function recorder(): {
  paths: string[];
  origin: string;
  server: Deno.HttpServer;
} {
  const paths: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      paths.push(new URL(req.url).pathname);
      return Response.json({ name: "ok-package" });
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  return { paths, origin: `http://127.0.0.1:${port}`, server };
}

/** An answer `probe` got: its status, its size, its first 4 KiB. */
interface ProbeAnswer {
  status: number;
  size: number;
  body: string;
}

/** Runs the hostile agent in `module-probe` mode; resolves to its reports. */
async function probe(
  paths: string[],
): Promise<Map<string, ProbeAnswer>> {
  const lines: string[] = [];
  const tun = new Hostile("module-probe", paths, {
    output: (line) => lines.push(line),
  });
  try {
    await tun.connect();
    const deadline = Date.now() + SETTLE_MS * 2;
    while (!lines.some((l) => l.includes('"done":true'))) {
      assert.ok(
        Date.now() < deadline,
        "the module requests were not all answered",
      );
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await tun.close();
  }
  const answers = new Map<string, ProbeAnswer>();
  let secret = "";
  for (const line of lines) {
    if (!line.startsWith("HOSTILE ")) continue;
    const r = JSON.parse(line.slice(8));
    if (r.done) secret = r.secret;
    else {
      answers.set(r.path, {
        status: r.status,
        size: r.size,
        body: atob(r.body),
      });
    }
  }
  // Key the answers by template again.
  const byTemplate = new Map<string, ProbeAnswer>();
  for (const template of paths) {
    const last = secret.at(-1) === "0" ? "1" : "0";
    const path = template.replaceAll("{secret}", secret)
      .replaceAll("{SECRET}", secret.toUpperCase())
      .replaceAll("{badsecret}", secret.slice(0, -1) + last);
    const answer = answers.get(path);
    assert.ok(answer, `no answer to ${template}`);
    byTemplate.set(template, answer);
  }
  return byTemplate;
}

async function moduleProbe(): Promise<void> {
  const f = await makeFixture();
  const registry = recorder();
  try {
    await withRegistries(registry.origin, async () => {
      const up = (n: number) => "/..".repeat(n);
      const upEncoded = (n: number, dots: string) => `/${dots}`.repeat(n);
      const out = f.outside;
      const S = "/{secret}/";
      const cases: [string, number][] = [
        // What may be served, to show the probe sees served content.
        [`${S}f${f.inRoot}/ok.ts`, 200],
        [`${S}v/agent.js`, 200],
        [`${S}p/npm/ok-package`, 200],
        // Absolute paths elsewhere.
        [`${S}f${out}/canary.ts`, 403],
        [`${S}f${out}/canary.json`, 403],
        [`${S}f/etc/passwd`, 403],
        [`${S}f/proc/self/environ`, 403],
        [`${S}f${out}/fifo.ts`, 403],
        // Traversal, plain and encoded.
        [`${S}f${f.inRoot}${up(12)}${out}/canary.ts`, 403],
        [`${S}f${f.inRoot}${upEncoded(12, "%2e%2e")}${out}/canary.ts`, 403],
        [`${S}f${f.inRoot}${upEncoded(12, "%2E%2E")}${out}/canary.ts`, 403],
        [`${S}f${f.inRoot}${upEncoded(12, ".%2e")}${out}/canary.ts`, 403],
        [`${S}f${f.inRoot}${upEncoded(12, "%2e.")}${out}/canary.ts`, 403],
        [
          `${S}f${f.inRoot}/${"..%2f".repeat(12)}${out.slice(1)}%2fcanary.ts`,
          403,
        ],
        [
          `${S}f${f.inRoot}/${"..%2F".repeat(12)}${out.slice(1)}%2Fcanary.ts`,
          403,
        ],
        [`${S}f${f.inRoot}/${"..\\".repeat(12)}${out.slice(1)}/canary.ts`, 403],
        [
          `${S}f${f.inRoot}/${"..%5c".repeat(12)}${out.slice(1)}/canary.ts`,
          403,
        ],
        [`${S}f${f.inRoot}/%252e%252e/%252e%252e${out}/canary.ts`, 404],
        [`${S}f${out}/canary.ts%00.ts`, 403],
        [`${S}f/${out}/canary.ts`, 403],
        [`${S}f/.${out}/canary.ts`, 403],
        [`${S}f${f.inRoot}/./ok.ts`, 403],
        [`${S}../{secret}/f${out}/canary.ts`, 403],
        // Symlinks out of the roots, FIFOs that must never be opened.
        [`${S}f${f.inRoot}/link.ts`, 403],
        [`${S}f${f.inRoot}/dirlink/canary.ts`, 403],
        [`${S}f${f.inRoot}/fifolink.ts`, 403],
        [`${S}f${f.inRoot}/pipe.ts`, 404],
        // Dotfiles, secrets and non-modules inside the roots.
        [`${S}f${f.inRoot}/.env`, 403],
        [`${S}f${f.inRoot}/.hidden.ts`, 403],
        [`${S}f${f.inRoot}/.git/config`, 403],
        [`${S}f${f.inRoot}/.git/config.json`, 403],
        [`${S}f${f.inRoot}/sub/.secret/x.ts`, 403],
        [`${S}f${f.inRoot}/canary.txt`, 403],
        [`${S}f${root}/.git/config`, 403],
        [`${S}f${root}/deno.lock`, 403],
        [`${S}f${f.inRoot}/huge.json`, 413],
        // A wrong, missing, or almost right secret.
        [`/${"0".repeat(48)}/f${f.inRoot}/ok.ts`, 404],
        [`/f${f.inRoot}/ok.ts`, 404],
        [`/{badsecret}/f${f.inRoot}/ok.ts`, 404],
        [`/{SECRET}/f${f.inRoot}/ok.ts`, 404],
        [`/{secret}f${f.inRoot}/ok.ts`, 404],
        [`/{secret}`, 404],
        ["", 404],
        // In-memory names that do not exist.
        [`${S}v/nope.js`, 404],
        [`${S}v/__proto__`, 404],
        [`${S}v/constructor`, 404],
        [`${S}v/`, 404],
        [`${S}v/../f${out}/canary.ts`, 403],
        // Remote modules from origins the controller never used.
        [`${S}u/https/evil.invalid/x.ts`, 403],
        [`${S}u/http/${registry.origin.slice(7)}/x.ts`, 403],
        [
          `${S}u/https/registry.npmjs.org@${registry.origin.slice(7)}/x.ts`,
          403,
        ],
        [`${S}u/ftp/example.com/x.ts`, 404],
        // Registry paths that would climb out of the registry's prefix.
        [`${S}p/npm/../..`, 403],
        [`${S}p/npm/../../private/x`, 403],
        [`${S}p/npm/%2e%2e/%2E%2e/private/x`, 403],
        [`${S}p/npm/..\\..\\private`, 403],
        [`${S}p/jsr/../../private/x`, 403],
        // URL parsers drop tabs and newlines, leaving "..": refused before.
        [`${S}p/npm/.\t./.\t./private/x`, 400],
        [`${S}p/npm/%2\te%2e/%2e\n%2e/private/x`, 400],
        [`${S}p/jsr/.\r./private/x`, 400],
        [`${S}p/npm/. ./x`, 400],
        [`${S}f${f.inRoot}/.\t./.\t./ok.ts`, 400],
        [`${S}p/other/x`, 404],
      ];
      const answers = await probe(cases.map(([p]) => p));
      for (const [path, status] of cases) {
        const a = answers.get(path)!;
        assert.equal(
          a.status,
          status,
          `${path}: ${a.status} ${a.body.slice(0, 100)}`,
        );
        assert.ok(!a.body.includes(f.canary), `${path}: the canary was served`);
        assert.ok(
          !a.body.includes("root:x:0:0"),
          `${path}: /etc/passwd was served`,
        );
      }
      assert.match(answers.get(cases[0][0])!.body, new RegExp(f.served));
      // The registry got only what is under its prefix, and the remote
      // origin the controller never used got nothing.
      assert.deepEqual(registry.paths, ["/npm/ok-package"]);
    });
  } finally {
    await registry.server.shutdown();
    await removeFixture(f);
  }
}

/**
 * Points the controller's npm and JSR registries at `origin` while `body`
 * runs.
 */
function withRegistries(
  origin: string,
  body: () => Promise<void>,
): Promise<void> {
  return withEnv({
    NPM_CONFIG_REGISTRY: `${origin}/npm/`,
    JSR_URL: `${origin}/jsr/`,
  }, body);
}

async function upstreamTooLarge(): Promise<void> {
  // A registry whose answers are 256 MiB, sent as they are read, with a
  // content-length for /npm/declared-*, without one (chunked) for the rest.
  const SIZE = 256 * MiB;
  const chunk = new Uint8Array(MiB).fill(0x61);
  let sent = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      let left = SIZE;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (left === 0) return c.close();
          c.enqueue(chunk);
          left -= MiB;
          sent += MiB;
        },
      }, { highWaterMark: 0 });
      const headers: Record<string, string> = {
        "content-type": "application/octet-stream",
      };
      if (new URL(req.url).pathname.startsWith("/npm/declared-")) {
        headers["content-length"] = String(SIZE);
      }
      return new Response(body, { headers });
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  try {
    await withRegistries(`http://127.0.0.1:${port}`, async () => {
      const paths = [
        ...Array.from({ length: 4 }, (_, i) => `/{secret}/p/npm/big-${i}.tgz`),
        "/{secret}/p/npm/declared-0.tgz",
      ];
      const before = Deno.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, Deno.memoryUsage().rss);
      }, 5);
      const start = performance.now();
      const answers = await probe(paths);
      clearInterval(sampler);
      const took = performance.now() - start;
      for (const path of paths) {
        const a = answers.get(path)!;
        assert.equal(a.status, 413, `${path}: ${a.status} ${a.body}`);
      }
      const grew = peak - before;
      // Each of the 4 chunked answers is read up to the limit (64 MiB),
      // and some more is in flight when it is cut (about 290 MiB in all
      // here); the declared one is refused from its header. Read whole,
      // they were 1.25 GiB.
      assert.ok(
        sent < 6 * MAX_FRAME,
        `the registry sent ${sent / MiB} MiB`,
      );
      assert.ok(grew < 512 * MiB, `the controller grew ${grew / MiB} MiB`);
      assert.ok(took < SETTLE_MS * 2, `took ${took.toFixed(0)} ms`);
    });
  } finally {
    await server.shutdown();
  }
}

/**
 * Writes a JSON module of about `mib` MiB in the project (where the module
 * server serves files from), runs `body` with the path an agent asks for
 * it by, and removes it.
 */
async function withBigModule(
  name: string,
  mib: number,
  body: (path: string) => Promise<void>,
): Promise<void> {
  const dir = `${root}/tests/fixtures/tmp/hostile-${name}-${Deno.pid}`;
  await Deno.mkdir(dir, { recursive: true });
  try {
    await Deno.writeTextFile(
      `${dir}/big.json`,
      JSON.stringify("x".repeat(mib * MiB)),
    );
    await body(`/{secret}/f${dir}/big.json`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function moduleFlood(): Promise<void> {
  // 4 MiB of module, asked for 500 times: 2 GB if all were answered.
  await withBigModule("flood", 4, async (path) => {
    const lines: string[] = [];
    const tun = new Hostile(
      "module-flood",
      { path, count: 500 },
      { output: (line) => lines.push(line) },
    );
    const before = Deno.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }, 10);
    await tun.connect();
    while (!lines.some((l) => l.includes('"sent":500'))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 1500));
    clearInterval(sampler);
    const start = performance.now();
    await tun.close();
    assert.ok(performance.now() - start < SETTLE_MS, "close() was slow");
    const grew = peak - before;
    assert.ok(grew < 256 * MiB, `the controller grew ${grew / MiB} MiB`);
  });
}

/** Waits until `value()` stayed the same for a second (at most `ms`). */
async function steady(value: () => number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let last = -1;
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const now = value();
    if (now !== last) [last, since] = [now, Date.now()];
    else if (Date.now() - since >= 1000) return;
  }
}

async function answersWithinShare(): Promise<void> {
  // A registry whose every answer is 48 MiB, sent as it is read; it counts
  // the answers it sent whole, and the bytes it sent.
  const SIZE = 48 * MiB;
  const chunk = new Uint8Array(MiB).fill(0x62);
  let whole = 0;
  let sent = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => {
      let left = SIZE;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (left === 0) {
            whole++;
            return c.close();
          }
          c.enqueue(chunk);
          sent += MiB;
          left -= MiB;
        },
      }, { highWaterMark: 0 });
      return new Response(body, {
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(SIZE),
        },
      });
    },
  );
  const { port } = server.addr as Deno.NetAddr;
  try {
    await withBigModule(
      "share",
      40,
      (big) =>
        withRegistries(`http://127.0.0.1:${port}`, async () => {
          // Two agents that ask for 8 answers of 48 MiB each (as many as
          // they have module workers) and read none, and one that asks for a
          // module file of 40 MiB 8 times: 1,088 MiB if all were held.
          const tag = `${Deno.pid}-${Date.now()}`;
          const floods = [0, 1].map((a) =>
            new Hostile("module-flood", {
              path: `/{secret}/p/npm/flood-${a}-{n}-${tag}.tgz`,
              count: 8,
            }, { output: () => {} })
          );
          floods.push(
            new Hostile("module-flood", {
              path: big,
              count: 8,
            }, { output: () => {} }),
          );
          const before = Deno.memoryUsage().rss;
          let peak = before;
          let beforeClose = 0;
          const sampler = setInterval(() => {
            peak = Math.max(peak, Deno.memoryUsage().rss);
          }, 10);
          try {
            await Promise.all(floods.map((tun) => tun.connect()));
            const queued = () =>
              floods.reduce((n, tun) => n + tun.stats.moduleBytes, 0);
            await steady(() => sent + queued(), SETTLE_MS * 4);
            clearInterval(sampler);
            // What each was sent waits in its channel: at most its share and
            // one answer more (without the share: 384 and 320 MiB).
            for (const tun of floods) {
              const bytes = tun.stats.moduleBytes;
              assert.ok(
                bytes <= SHARE + MAX_MODULE,
                `${tun.host} was sent ${bytes / MiB} MiB`,
              );
              assert.ok(bytes >= 40 * MiB, `${tun.host} got nothing`);
            }
            assert.ok(whole <= 6, `${whole} answers were read whole`);
            const grew = peak - before;
            assert.ok(
              grew < 3 * (SHARE + MAX_MODULE) + 128 * MiB,
              `the controller grew ${grew / MiB} MiB`,
            );
            // Another agent asks for what the first asked for last: that
            // download waits for room in the first one's share, but goes on
            // for this one, which has room.
            const shared = await probe([
              `/{secret}/p/npm/flood-0-8-${tag}.tgz`,
            ]);
            const answer = [...shared.values()][0];
            assert.equal(answer.status, 200);
            assert.equal(answer.size, SIZE);
          } finally {
            clearInterval(sampler);
            beforeClose = sent;
            for (const tun of floods) await tun.close();
          }
          // Their downloads that waited for room are dropped, not read on for
          // nobody (six each, about 500 MiB more).
          await new Promise((r) => setTimeout(r, 1500));
          assert.ok(
            sent - beforeClose <= 16 * MiB,
            `the registry sent ${(sent - beforeClose) / MiB} MiB more`,
          );
          // An agent that reads what it asked for gets it all, 8 answers of
          // 48 MiB (over its share), one after another as it reads.
          const paths = Array.from(
            { length: 8 },
            (_, i) => `/{secret}/p/npm/read-${i}-${tag}.tgz`,
          );
          const answers = await probe(paths);
          for (const path of paths) {
            assert.equal(answers.get(path)!.status, 200, path);
            assert.equal(answers.get(path)!.size, SIZE, path);
          }
        }),
    );
  } finally {
    await server.shutdown();
  }
}

async function floodThenEnd(): Promise<void> {
  await withBigModule("end", 40, async (path) => {
    // Eight requests for 40 MiB, none read; the agent's output ends a
    // second later, while its stdin stays open (the shell lingers). The
    // waiting answers once spun the controller until it ran out of memory.
    const tun = new Hostile("module-flood", {
      path,
      count: 8,
      exitAfter: 1000,
    }, { output: () => {}, linger: true });
    const before = Deno.memoryUsage().rss;
    let peak = before;
    let last = performance.now();
    let gap = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      gap = Math.max(gap, now - last);
      last = now;
      peak = Math.max(peak, Deno.memoryUsage().rss);
    }, 20);
    try {
      await tun.connect();
      await new Promise((r) => setTimeout(r, 3000));
      assert.ok(gap < 1000, `the controller stood still ${gap.toFixed(0)} ms`);
      assert.ok(
        tun.stats.moduleBytes <= SHARE + MAX_MODULE,
        `it was sent ${tun.stats.moduleBytes / MiB} MiB`,
      );
      const grew = peak - before;
      assert.ok(grew < 256 * MiB, `the controller grew ${grew / MiB} MiB`);
    } finally {
      clearInterval(ticker);
      const start = performance.now();
      await tun.close();
      assert.ok(performance.now() - start < SETTLE_MS, "close() was slow");
    }
  });
}

Deno.test("hostile agents: values that are cheap to send but costly to read, or not what code reading them expects, end nothing slowly and reach no terminal raw", async (t) => {
  const ext = (n: number) => ({ $ext: n });
  /**
   * Arrays A_k = [A_(k-1), A_(k-1)], the second a back reference: about 12
   * bytes a level, 2^n arrays to whatever walks it without remembering.
   * `first` is the pre-order number of A_n in the whole value.
   */
  const dag = (n: number, first: number) => {
    let node: unknown = [];
    for (let k = 1; k <= n; k++) node = [node, [ext(3), first + n - k + 1]];
    return node;
  };

  await t.step(
    "a thrown array of shared references is described at once",
    async () => {
      // String() walked 2^25 arrays of a 170-byte reply: 5 s, 280 MB.
      await using tun = new Hostile("reply", [2, null, [ext(0), dag(25, 0)]], {
        output: () => {},
      });
      await tun.connect();
      const start = performance.now();
      const e = await tun.call(add, 1, 2).catch((e) => e);
      const took = performance.now() - start;
      assert.ok(e instanceof RemoteError, String(e));
      assert.ok(took < 1000, `took ${took.toFixed(0)} ms`);
      assert.ok(e.message.length < 70_000, `${e.message.length} characters`);
      assert.equal(tun.connected, true, "the tunnel stays open");
    },
  );

  await t.step(
    "an Error whose pairs set its message, stack or name to what is not text breaks the protocol at once",
    async () => {
      // It ended the tunnel as an agent that exits does: 3 s later, with a
      // TypeError of the controller's as the cause.
      for (const field of ["message", "stack", "name"]) {
        const tun = new Hostile("reply", [2, null, [
          ext(0),
          [ext(14), "Error", "m", "s", field, [ext(5), true]],
        ]], { output: () => {} });
        await tun.connect();
        await settles(
          tun,
          () => tun.call(add, 1, 2),
          ProtocolError,
          new RegExp(`sets its ${field} again`),
        );
      }
    },
  );

  await t.step(
    "a tree listing whose path is not text is refused at once",
    async () => {
      const dir = await Deno.makeTempDir();
      try {
        // A path with no prototype threw a bare TypeError and the tunnel
        // stayed; one of shared references took 6 s to show. The listing
        // is object 0, its entries 1, the entry 2, so the path is 3.
        for (const path of [[ext(5), true], dag(25, 3)]) {
          await using tun = new Hostile("files", {
            marked: true,
            trees: {
              "/remote": [{ path, type: "file", mode: 0o644, size: 3 }],
            },
          }, { output: () => {} });
          await settles(
            tun,
            () => tun.fetchTree("/remote", `${dir}/copy`),
            ProtocolError,
            /holds a path that is not text/,
          );
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  await t.step(
    "an ext type outside a marked value is refused: it reached the program as msgpack's own object",
    async () => {
      for (
        const value of [[1, ext(42)], ext(3), { a: ext(7) }]
      ) {
        const tun = new Hostile("reply", [1, null, value], {
          output: () => {},
        });
        await tun.connect();
        await settles(
          tun,
          () => tun.call(add, 1, 2),
          ProtocolError,
          /an ext type outside a marked value/,
        );
      }
    },
  );

  await t.step(
    "escape sequences in what an agent throws do not reach a terminal when the error is printed",
    async () => {
      // OSC title, BEL, CSI clear screen: console.error(e) or an uncaught
      // error printed them raw, in the error and in its causes.
      const evil = "a\x1b]0;pwned\x07b\x1b[2Jc";
      const replies: [string, unknown][] = [
        ["an Error", [ext(0), [
          ext(14),
          `Error${evil}`,
          evil,
          `Error: ${evil}\n    at f (file:///x.ts:1:1)`,
          "cause",
          [ext(14), "TypeError", evil, `TypeError: ${evil}`],
        ]]],
        ["a string", evil],
      ];
      for (const [what, value] of replies) {
        await using tun = new Hostile("reply", [2, null, value], {
          output: () => {},
        });
        await tun.connect();
        const e = await tun.call(add, 1, 2).catch((e) => e);
        assert.ok(e instanceof RemoteError, String(e));
        const printed = Deno.inspect(e, { colors: false });
        // deno-lint-ignore no-control-regex
        assert.doesNotMatch(printed, /[\x07\x1b]/, `${what}: ${printed}`);
        assert.match(e.message, /a\^\[\]0;pwned\^Gb\^\[\[2Jc/, what);
      }
    },
  );
});
