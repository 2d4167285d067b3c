import { Decoder, Encoder } from "@msgpack/msgpack";
import { fromWire, toWire } from "./_codec.ts";

const encoder = new Encoder();
const decoder = new Decoder();
const call = [0, 1, ["a", 2, true]];
const marked = [0, 1, ["a", undefined, new Map([[1, 2n]])]];
const options = { warmup: 100_000, n: 1_000_000 };

Deno.bench(
  "msgpack encode+decode of a small call",
  { ...options, group: "call", baseline: true },
  () => {
    decoder.decode(encoder.encode(call));
  },
);

Deno.bench(
  "toWire+encode+decode+fromWire of a small call",
  { ...options, group: "call" },
  () => {
    fromWire(decoder.decode(encoder.encode(toWire(call, "args"))));
  },
);

Deno.bench(
  "toWire+encode+decode+fromWire of a call that needs markers",
  { ...options, group: "call" },
  () => {
    fromWire(decoder.decode(encoder.encode(toWire(marked, "args"))));
  },
);

Deno.bench("toWire of a small call", { ...options, group: "toWire" }, () => {
  toWire(call, "args");
});

Deno.bench("toWire of undefined", { ...options, group: "toWire" }, () => {
  toWire(undefined, "result");
});
