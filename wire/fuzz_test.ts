import assert from "node:assert/strict";
import { Decoder } from "@msgpack/msgpack";
import { fuzz } from "./fuzz.ts";
import { checkMsgpack, FrameError } from "./_frame.ts";

Deno.test("fuzz() finds nothing in 3,000 seeded inputs per target", () => {
  const report = fuzz({ seed: 20240607, runs: 3_000 });
  assert.deepEqual(report.findings, []);
  assert.ok(report.accepted > 3_000, "too few inputs decoded");
  assert.ok((report.refused.FrameError ?? 0) > 100, "too few refused");
  assert.ok(report.slowestMillis < 2_000);
});

Deno.test("fuzz() is deterministic by seed", () => {
  const a = fuzz({ seed: 5, runs: 300 });
  const b = fuzz({ seed: 5, runs: 300 });
  assert.deepEqual(
    { ...a, slowestMillis: 0 },
    { ...b, slowestMillis: 0 },
  );
});

Deno.test("checkMsgpack() refuses array headers that claim more items than bytes", () => {
  // Each header claims 30 M items: a decoder would allocate 240 MB per
  // header before finding that the data is missing.
  const bomb = new Uint8Array(
    Array(8).fill([0xdd, 0x01, 0xc9, 0xc3, 0x80]).flat(),
  );
  assert.throws(() => checkMsgpack(bomb, 100), FrameError);
  const map = new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff, 0x01]);
  assert.throws(() => checkMsgpack(map, 100), /claims/);
});

Deno.test("checkMsgpack() refuses nesting past the limit, without recursion", () => {
  const deep = (n: number) => new Uint8Array([...Array(n).fill(0x91), 0xc0]);
  checkMsgpack(deep(10), 10);
  assert.deepEqual(new Decoder().decode(deep(3)), [[[null]]]);
  assert.throws(() => checkMsgpack(deep(11), 10), /deeper than 10/);
  assert.throws(() => checkMsgpack(deep(10_000_000), 1008), /deeper/);
});

Deno.test("checkMsgpack() refuses truncation, trailing bytes and the unused byte", () => {
  assert.throws(() => checkMsgpack(new Uint8Array([0x92, 0x01]), 5), /claims/);
  assert.throws(
    () => checkMsgpack(new Uint8Array([0x92, 0x91, 0x01]), 5),
    /ends/,
  );
  assert.throws(() => checkMsgpack(new Uint8Array([0xa5, 0x61]), 5), /past/);
  assert.throws(() => checkMsgpack(new Uint8Array([0x01, 0x02]), 5), /follow/);
  assert.throws(() => checkMsgpack(new Uint8Array([0xc1]), 5), /0xc1/);
  assert.throws(() => checkMsgpack(new Uint8Array([]), 5), /ends/);
  assert.throws(
    () => checkMsgpack(new Uint8Array([0xc6, 0xff, 0xff, 0xff, 0xff]), 5),
    /past/,
  );
});

Deno.test("checkMsgpack() tells whether a message holds binary data or ext types", () => {
  const shape = (...bytes: number[]) => checkMsgpack(new Uint8Array(bytes), 4);
  // [1, "a"]; [1, bin 8 of 2 bytes]; a bin 16 in a map; a bin 32.
  assert.deepEqual(shape(0x92, 0x01, 0xa1, 0x61), {
    bytes: false,
    exts: false,
  });
  assert.deepEqual(shape(0x92, 0x01, 0xc4, 0x02, 9, 9), {
    bytes: true,
    exts: false,
  });
  assert.equal(shape(0x81, 0xa1, 0x62, 0xc5, 0x00, 0x01, 9).bytes, true);
  assert.equal(shape(0x91, 0xc6, 0, 0, 0, 1, 9).bytes, true);
  // 0xc4 inside a string is no bin.
  assert.equal(shape(0xa1, 0xc4).bytes, false);
  // fixext 1, ext 8, and a timestamp (fixext 4 of type -1).
  assert.equal(shape(0x91, 0xd4, 0x05, 0x00).exts, true);
  assert.equal(shape(0xc7, 0x01, 0x05, 0x00).exts, true);
  assert.equal(shape(0xd6, 0xff, 0, 0, 0, 0).exts, true);
});
