import assert from "node:assert/strict";
import { encodeFrame, FrameError, FrameReader } from "./_frame.ts";

const MiB = 1024 * 1024;

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

Deno.test("FrameReader hands a big frame's buffer out to be filled in place", () => {
  const { frames, reader } = collect();
  const body = new Uint8Array(100_000).map((_, i) => i % 251);
  const frame = encodeFrame(4, body);
  reader.push(frame.subarray(0, 1000));
  // Not while less than `min` bytes are missing, nor past `max`.
  assert.equal(reader.reserve(100_000, MiB), undefined);
  assert.equal(reader.reserve(1024, 50_000), undefined);
  const big = reader.reserve(32 * 1024, MiB);
  assert.ok(big);
  assert.equal(big.frame.length, body.length + 1);
  assert.equal(big.have, 1000 - 4);
  assert.equal(reader.pending, 1000, "what was read of the frame is pending");
  assert.deepEqual([...big.frame.subarray(0, big.have)], [
    ...frame.subarray(4, 1000),
  ]);
  assert.equal(frames.length, 0);
  big.frame.set(frame.subarray(1000), big.have);
  reader.complete(big.frame);
  assert.equal(frames.length, 1);
  assert.equal(frames[0][0], 4);
  assert.deepEqual(frames[0][1], [...body]);
  // Reading goes on with the next frame.
  reader.push(encodeFrame(5, new Uint8Array([9])));
  assert.deepEqual(frames[1], [5, [9]]);
  assert.equal(reader.pending, 0);
});

Deno.test("FrameReader makes a big frame in a spare buffer big enough for it, else in a fresh one", () => {
  const { frames, reader } = collect();
  const spare = new ArrayBuffer(300_000);
  const first = encodeFrame(6, new Uint8Array(100_000).fill(1));
  reader.push(first.subarray(0, 10));
  const big = reader.reserve(1, MiB, spare);
  assert.equal(big?.frame.buffer, spare);
  assert.equal(big?.frame.length, 100_001);
  big!.frame.set(first.subarray(10), big!.have);
  reader.complete(big!.frame);
  assert.deepEqual(frames[0][1], Array(100_000).fill(1));
  reader.push(encodeFrame(6, new Uint8Array(400_000)).subarray(0, 10));
  const bigger = reader.reserve(1, MiB, spare);
  assert.notEqual(bigger?.frame.buffer, spare);
  assert.equal(bigger?.frame.length, 400_001);
});

Deno.test("FrameReader refuses to complete a frame of the wrong size", () => {
  const { frames, reader } = collect();
  reader.push(encodeFrame(1, new Uint8Array(50_000)).subarray(0, 10));
  const big = reader.reserve(1, MiB);
  assert.equal(big?.frame.length, 50_001);
  assert.throws(() => reader.complete(new Uint8Array(10)), FrameError);
  assert.equal(frames.length, 0);
});
