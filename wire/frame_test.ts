import assert from "node:assert/strict";
import { encodeFrame, FrameError, FrameReader } from "./_frame.ts";

function collect(max?: number) {
  const frames: [number, number[]][] = [];
  const reader = new FrameReader(
    (kind, body) => frames.push([kind, [...body]]),
    max,
  );
  return { frames, reader };
}

Deno.test("FrameReader splits frames across any chunk boundaries", () => {
  const bytes = new Uint8Array([
    ...encodeFrame(1, new Uint8Array([1, 2, 3])),
    ...encodeFrame(2, new Uint8Array([])),
    ...encodeFrame(3, new Uint8Array(1000).fill(7)),
  ]);
  for (const size of [1, 2, 3, 5, 7, 64, bytes.length]) {
    const { frames, reader } = collect();
    for (let i = 0; i < bytes.length; i += size) {
      reader.push(bytes.subarray(i, i + size));
    }
    assert.deepEqual(frames.map((f) => f[0]), [1, 2, 3]);
    assert.deepEqual(frames[0][1], [1, 2, 3]);
    assert.equal(frames[2][1].length, 1000);
    assert.equal(reader.pending, 0);
  }
});

Deno.test("FrameReader refuses a length over the cap before buffering it", () => {
  const { reader } = collect(1024);
  const head = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => reader.push(head), FrameError);
});

Deno.test("FrameReader refuses a zero length", () => {
  const { reader } = collect();
  assert.throws(() => reader.push(new Uint8Array(4)), /outside/);
});

Deno.test("FrameReader keeps a partial frame pending", () => {
  const { frames, reader } = collect();
  const frame = encodeFrame(1, new Uint8Array(10));
  reader.push(frame.subarray(0, 8));
  assert.equal(frames.length, 0);
  assert.equal(reader.pending, 8);
  reader.push(frame.subarray(8));
  assert.equal(frames.length, 1);
});
