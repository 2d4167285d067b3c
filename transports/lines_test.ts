import assert from "node:assert/strict";
import { OutputLines } from "../tunnel/_output.ts";
import { LineReader, TooMuchOutput } from "./_lines.ts";

const utf8 = new TextEncoder();

/** A stream of `chunks`, one per read. */
function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  });
}

/** `text` in chunks of `size` bytes. */
function chunked(text: string, size: number): Uint8Array[] {
  const bytes = utf8.encode(text);
  const chunks = [];
  for (let at = 0; at < bytes.length; at += size) {
    chunks.push(bytes.subarray(at, at + size));
  }
  return chunks;
}

Deno.test("LineReader picks out marker lines and passes the rest on", async () => {
  const noise: string[] = [];
  const text = "banner\nbefore M have /x\nM need Linux x86_64\npart é";
  for (const size of [1, 3, 1000]) {
    noise.length = 0;
    const lines = new LineReader(
      streamOf(chunked(text, size)),
      new OutputLines("h", (line) => noise.push(line)),
      "M ",
      1000,
    );
    assert.equal(await lines.next(), "have /x");
    assert.equal(await lines.next(), "need Linux x86_64");
    assert.equal(await lines.next(), null);
    assert.deepEqual(noise, ["banner", "before ", "part é"], `size ${size}`);
  }
});

Deno.test("LineReader searches each byte once: a long line in small reads", async () => {
  // 512 KiB in 16-byte reads: 5.9 s when each read searched the whole line.
  const long = "x".repeat(512 * 1024);
  const noise: string[] = [];
  const lines = new LineReader(
    streamOf(chunked(`${long}\nM done\n`, 16)),
    new OutputLines("h", (line) => noise.push(line)),
    "M ",
    1024 * 1024,
  );
  const start = performance.now();
  assert.equal(await lines.next(), "done");
  const took = performance.now() - start;
  assert.ok(took < 1000, `took ${took.toFixed(0)} ms`);
  assert.equal(noise.join(""), long);
});

Deno.test("LineReader refuses more than its limit, in a line or in lines", async () => {
  for (const text of ["y".repeat(5000), "y\n".repeat(2500)]) {
    const lines = new LineReader(
      streamOf(chunked(text, 100)),
      new OutputLines("h", () => {}),
      "M ",
      4096,
    );
    await assert.rejects(() => lines.next(), TooMuchOutput);
  }
});
