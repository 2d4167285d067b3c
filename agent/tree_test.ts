import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  checkRelative,
  hashFiles,
  listTree,
  makeEntries,
  safePath,
} from "./_tree.ts";

Deno.test("checkRelative() refuses paths that could leave the tree", () => {
  for (
    const bad of [
      "",
      "/etc/passwd",
      "../x",
      "a/../../x",
      "a//b",
      "./a",
      "a/.",
      "a\0b",
    ]
  ) {
    assert.throws(() => checkRelative(bad), TypeError, JSON.stringify(bad));
  }
  assert.equal(checkRelative("a/b.c/..d"), "a/b.c/..d");
});

Deno.test("safePath() and makeEntries() never write through a symlink", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/root`);
    await Deno.mkdir(`${dir}/outside`);
    await Deno.symlink(`${dir}/outside`, `${dir}/root/escape`);
    await assert.rejects(
      () => safePath(`${dir}/root`, "escape/x"),
      /is a symlink/,
    );
    await assert.rejects(
      () =>
        makeEntries(`${dir}/root`, [
          { path: "escape/evil", type: "dir", mode: 0o755, size: 0 },
        ]),
      /is a symlink/,
    );
    assert.deepEqual([...Deno.readDirSync(`${dir}/outside`)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs `job` while a timer chain ticks beside it; returns the job's result
 * and the longest wait of a tick (how long the job held the event loop).
 */
async function longestHold<T>(
  job: () => Promise<T>,
): Promise<[T, { longest: number; total: number }]> {
  const start = performance.now();
  let longest = 0;
  let last = performance.now();
  let running = true;
  const tick = () => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    if (running) setTimeout(tick, 0);
  };
  setTimeout(tick, 0);
  try {
    const result = await job();
    // A tick after the job, to measure the stretch it ended with.
    await new Promise((resolve) => setTimeout(resolve, 0));
    return [result, { longest, total: performance.now() - start }];
  } finally {
    running = false;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

Deno.test("hashFiles(), listTree() and makeEntries() give other work a turn as they go", async () => {
  // Their file operations are synchronous, in slices: a call on the same
  // agent must not wait for a whole tree (hashing 160 MiB takes far longer
  // than the bound below on this kind of machine).
  const dir = await Deno.makeTempDir();
  try {
    const big = new Uint8Array(160 * 1024 * 1024).fill(7);
    await Deno.writeFile(`${dir}/big`, big);
    const [hashes, hashing] = await longestHold(() =>
      hashFiles(dir, ["big", "missing"])
    );
    assert.deepEqual(hashes, [
      createHash("sha256").update(big).digest("hex"),
      null,
    ]);
    const entries = Array.from({ length: 6000 }, (_, i) => ({
      path: `d${i % 30}${i < 30 ? "" : `/e${i}`}`,
      type: "dir" as const,
      mode: 0o750,
      size: 0,
    }));
    const [, making] = await longestHold(() =>
      makeEntries(`${dir}/tree`, entries)
    );
    for (let i = 0; i < 12000; i++) {
      Deno.writeFileSync(`${dir}/tree/d${i % 30}/f${i}`, new Uint8Array());
    }
    const [tree, listing] = await longestHold(() => listTree(`${dir}/tree`));
    assert.equal(tree.entries?.length, 18000);
    assert.equal(tree.entries?.[0].mode, 0o750);
    for (
      const [what, { longest, total }] of [
        ["hashing", hashing],
        ["making", making],
        ["listing", listing],
      ] as const
    ) {
      assert.ok(
        longest < 100 && longest < total / 2,
        `${what} held the event loop for ${longest} of its ${total} ms`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hashFiles() gives null for what is not a regular file, without waiting on a FIFO", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    const fifo = await new Deno.Command("mkfifo", { args: [`${dir}/pipe`] })
      .output();
    assert.ok(fifo.success);
    await Deno.mkdir(`${dir}/dir`);
    await Deno.symlink(`${dir}/file`, `${dir}/link`);
    // Opening the FIFO would wait for a writer for ever; a symlink (put
    // where the listing saw a file) is not followed.
    assert.deepEqual(await hashFiles(dir, ["pipe", "dir", "link", "file"]), [
      null,
      null,
      null,
      createHash("sha256").update("x").digest("hex"),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hashFiles() does not follow a symlink on an agent whose reads are scoped", async () => {
  // Deno ignores O_NOFOLLOW there: the check is by inode.
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/file`, "x");
    await Deno.symlink(`${dir}/file`, `${dir}/link`);
    const tree = new URL("./_tree.ts", import.meta.url);
    const code = `import { hashFiles } from ${JSON.stringify(tree.href)};
console.log(JSON.stringify(await hashFiles(${
      JSON.stringify(dir)
    }, ["link", "file"])));`;
    await Deno.writeTextFile(`${dir}/hash.ts`, code);
    // (`deno eval` would have every permission.)
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-lock",
        `--allow-read=${dir},${new URL(".", tree).pathname}`,
        `${dir}/hash.ts`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, stderr);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), [
      null,
      createHash("sha256").update("x").digest("hex"),
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
