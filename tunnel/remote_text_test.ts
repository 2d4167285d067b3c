import assert from "node:assert/strict";
import { cutText, MAX_REMOTE_TEXT, replaceAgentFiles } from "./_remote_text.ts";

const hex = "0123456789abcdef".repeat(4);
const file = `file:///home/u/.cache/chopsticks/agent-${hex}.js`;
/** What the controller matched with a regex before (quadratic). */
const OLD = /file:\/\/[^\s)]*\/agent-[0-9a-f]{64}\.js/g;

Deno.test("replaceAgentFiles() replaces what the old regex matched", () => {
  const B = "BUNDLE";
  assert.equal(
    replaceAgentFiles(`at f (${file}:1:2)\n    at ${file}:3:4`, B),
    `at f (${B}:1:2)\n    at ${B}:3:4`,
  );
  assert.equal(replaceAgentFiles("no path here", B), "no path here");
  // Seeded random texts of the pieces that matter.
  const pieces = [
    "file://",
    "file:",
    "/",
    "/agent-",
    `/agent-${hex}.js`,
    `/agent-${hex}`,
    hex,
    hex.slice(1),
    "A",
    ".js",
    " ",
    ")",
    "\n",
    "\u00a0",
    "x",
    ":1:2",
  ];
  let seed = 42;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor(seed / 2 ** 31 * n);
  };
  let matched = 0;
  for (let i = 0; i < 20_000; i++) {
    let text = "";
    const count = random(14);
    for (let j = 0; j < count; j++) text += pieces[random(pieces.length)];
    if (OLD.test(text)) matched++;
    OLD.lastIndex = 0;
    assert.equal(
      replaceAgentFiles(text, B),
      text.replace(OLD, B),
      JSON.stringify(text),
    );
  }
  assert.ok(matched > 1000, `only ${matched} texts held a path`);
});

Deno.test("replaceAgentFiles() takes linear time on hostile text", () => {
  // 1 MB: the old regex took minutes on this (280 KB: 6.8 s).
  for (
    const text of [
      "file://".repeat(150_000),
      `file://${"/agent-".repeat(150_000)}`,
      `${"file://".repeat(75_000)}${`/agent-${hex}.js`.repeat(7_000)}`,
    ]
  ) {
    const start = performance.now();
    replaceAgentFiles(text, "B");
    const took = performance.now() - start;
    assert.ok(took < 1000, `${took.toFixed(0)} ms`);
  }
});

Deno.test("cutText() keeps 64 KiB and says how much it cut", () => {
  assert.equal(cutText("short"), "short");
  const exact = "x".repeat(MAX_REMOTE_TEXT);
  assert.equal(cutText(exact), exact);
  const cut = cutText("x".repeat(MAX_REMOTE_TEXT + 10));
  assert.equal(cut, `${exact}… [10 more characters cut]`);
  // Never half a surrogate pair.
  const pairs = cutText("y" + "😀".repeat(MAX_REMOTE_TEXT));
  assert.ok(pairs.startsWith("y" + "😀".repeat(MAX_REMOTE_TEXT / 2 - 1) + "…"));
  assert.ok(
    pairs.endsWith(
      `[${
        2 * MAX_REMOTE_TEXT + 1 - (MAX_REMOTE_TEXT - 1)
      } more characters cut]`,
    ),
  );
});
