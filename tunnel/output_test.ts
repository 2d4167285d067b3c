import assert from "node:assert/strict";
import { OutputLines, printable } from "./_output.ts";

const utf8 = new TextEncoder();

function capture(): { lines: string[]; out: OutputLines } {
  const lines: string[] = [];
  return { lines, out: new OutputLines("h", (line) => lines.push(line)) };
}

Deno.test("OutputLines splits any chunking into the same lines", () => {
  const text = "one\r\ntwo\n\nthré\nlast";
  for (const size of [1, 2, 5, 100]) {
    const { lines, out } = capture();
    const bytes = utf8.encode(text);
    for (let at = 0; at < bytes.length; at += size) {
      out.push(bytes.subarray(at, at + size));
    }
    out.end();
    assert.deepEqual(lines, ["one", "two", "", "thré", "last"], `${size}`);
    assert.deepEqual(out.tail, lines);
  }
});

Deno.test("OutputLines cuts a line without end at 64 KiB", () => {
  const { lines, out } = capture();
  out.push(utf8.encode("a".repeat(100_000)));
  out.push(utf8.encode("b\nc"));
  out.end();
  assert.deepEqual(lines.map((l) => l.length), [65_536, 34_465, 1]);
  assert.ok(lines[1].endsWith("ab"));
});

Deno.test("OutputLines searches each byte once: a long line in 1-byte reads", () => {
  // 6.7 s when each read searched the unfinished line again (up to 64 KiB).
  const { lines, out } = capture();
  const x = utf8.encode("x");
  const start = performance.now();
  for (let i = 0; i < 2 * 1024 * 1024; i++) out.push(x);
  const took = performance.now() - start;
  assert.ok(took < 3000, `took ${took.toFixed(0)} ms`);
  assert.equal(lines.length, 31);
});

Deno.test("printable() keeps colours and shows every other control character", () => {
  assert.equal(printable("plain\ttext"), "plain\ttext");
  assert.equal(
    printable("\x1b]0;pwned\x07title"),
    "^[]0;pwned^Gtitle",
    "no retitling",
  );
  assert.equal(printable("a\x1b[2Jb\x1b[1;1H"), "a^[[2Jb^[[1;1H", "no cursor");
  assert.equal(printable("\x1b]52;c;ZXZpbA==\x07"), "^[]52;c;ZXZpbA==^G");
  assert.equal(printable("\x00\x7f\x9b"), "^@^?M-^[");
  assert.equal(
    printable("\x1b[31mred\x1b[0m"),
    "\x1b[31mred\x1b[0m\x1b[0m",
    "colours stay, reset at the end",
  );
});

Deno.test("OutputLines cuts a long line at 64 KiB even when it comes whole in one read", () => {
  const lines: string[] = [];
  const out = new OutputLines("h", (line) => void lines.push(line));
  out.push(new TextEncoder().encode("x".repeat(100 * 1024) + "\nend\n"));
  assert.deepEqual(lines.map((l) => l.length), [64 * 1024, 36 * 1024, 3]);
});
