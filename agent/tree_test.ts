import assert from "node:assert/strict";
import { checkRelative, makeEntries, safePath } from "./_tree.ts";

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
