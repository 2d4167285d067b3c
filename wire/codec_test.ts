import assert from "node:assert/strict";
import { Decoder, Encoder, ExtData } from "@msgpack/msgpack";
import {
  fromWire,
  Marker,
  MAX_DEPTH,
  MAX_REGEXP_SOURCE,
  toWire,
} from "./_codec.ts";
import { regexpCost } from "./_codec_markers.ts";

const encoder = new Encoder();
const decoder = new Decoder();

/** Sends `value` through toWire, msgpack and fromWire. */
function roundTrip<T>(value: T, enc: Encoder = encoder): T {
  return fromWire(decoder.decode(enc.encode(toWire(value, "value")))) as T;
}

const ext = (type: number, data = new Uint8Array()) => new ExtData(type, data);
const root = (body: unknown) => [ext(Marker.ROOT), body];

/** Asserts that fromWire refuses `tree` with an error of class `kind`. */
function assertRefused(
  tree: unknown,
  kind: typeof TypeError | typeof RangeError,
  message?: RegExp,
) {
  assert.throws(() => fromWire(tree), (error: unknown) => {
    assert.equal((error as Error).constructor, kind, String(error));
    if (message) assert.match((error as Error).message, message);
    return true;
  });
}

Deno.test("toWire() returns plain data as itself", () => {
  const values = [
    null,
    true,
    0,
    -1.5,
    NaN,
    Infinity,
    "héllo ✓ 🎉",
    new Uint8Array([1, 2]),
    [0, 1, ["a", 2, true]],
    { a: 1, b: [{ c: "d" }, null], e: new Uint8Array(0) },
    [],
    {},
  ];
  for (const value of values) assert.equal(toWire(value, "value"), value);
});

Deno.test("fromWire() returns a tree without a root marker as itself", () => {
  const tree = decoder.decode(encoder.encode({ a: [1, "b", null] }));
  assert.equal(fromWire(tree), tree);
  const untouchable = new Proxy({}, {
    get: () => assert.fail("walked"),
    getPrototypeOf: () => assert.fail("walked"),
    ownKeys: () => assert.fail("walked"),
  });
  assert.equal(fromWire(untouchable), untouchable);
  assert.equal(fromWire(5), 5);
});

Deno.test("toWire() round-trips primitives", () => {
  const values = [
    undefined,
    null,
    true,
    false,
    0,
    -0,
    42,
    -7.25,
    NaN,
    Infinity,
    -Infinity,
    Number.MAX_SAFE_INTEGER,
    2 ** 60,
    Number.MIN_VALUE,
    "",
    "text",
  ];
  for (const value of values) assert.ok(Object.is(roundTrip(value), value));
  assert.deepEqual(roundTrip([undefined, -0, [undefined]]), [
    undefined,
    -0,
    [undefined],
  ]);
  assert.ok(Object.is(roundTrip({ z: -0 }).z, -0));
});

Deno.test("toWire() round-trips bigints of any size and sign", () => {
  for (
    const value of [0n, 1n, -1n, 2n ** 63n, -(2n ** 64n) - 1n, 7n ** 5000n]
  ) {
    assert.equal(roundTrip(value), value);
  }
  assert.deepEqual(roundTrip({ n: [-(10n ** 40n)] }), { n: [-(10n ** 40n)] });
});

Deno.test("toWire() round-trips strings with lone surrogates", () => {
  const values = ["\uD800", "a\uDC00b", "x".repeat(300) + "\uD83D", "🎉"];
  for (const value of values) assert.equal(roundTrip(value), value);
  const record = roundTrip({ ["k\uDFFF"]: "v\uD800" });
  assert.deepEqual(Object.entries(record), [["k\uDFFF", "v\uD800"]]);
  assert.equal(roundTrip(new RegExp("\uD800")).source, "\uD800");
});

Deno.test("toWire() sends only the bytes of a view into a bigger buffer", () => {
  const big = new Uint8Array(1 << 16).map((_, i) => i);
  const part = big.subarray(10, 14);
  const bytes = encoder.encode(toWire([part], "value"));
  assert.ok(bytes.length < 16);
  assert.deepEqual(roundTrip(part), new Uint8Array([10, 11, 12, 13]));
  const wide = new Int16Array(big.buffer, 2, 3);
  assert.ok(encoder.encode(toWire(wide, "value")).length < 32);
  assert.deepEqual(roundTrip(wide), new Int16Array(wide));
});

Deno.test("toWire() round-trips every typed array, DataView and ArrayBuffer", () => {
  const buffer = new ArrayBuffer(64);
  new Uint8Array(buffer).forEach((_, i, all) => all[i] = i * 7);
  const views: ArrayBufferView[] = [
    new Int8Array([-1, 2]),
    new Uint8ClampedArray([0, 255]),
    new Int16Array([-300, 2]),
    new Uint16Array([65535]),
    new Int32Array([-(2 ** 31)]),
    new Uint32Array([2 ** 32 - 1]),
    new Float32Array([1.5, NaN]),
    new Float64Array([Math.PI, -0]),
    new BigInt64Array([-(2n ** 63n)]),
    new BigUint64Array([2n ** 64n - 1n]),
    new Float64Array(buffer, 8, 3),
    new DataView(buffer, 3, 5),
  ];
  if (typeof Float16Array === "function") {
    views.push(new Float16Array([0.5, -2]));
  }
  for (const view of views) {
    const copy = roundTrip(view);
    assert.equal(copy.constructor, view.constructor);
    assert.equal(copy.byteLength, view.byteLength);
    assert.deepEqual(
      new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength),
      new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
    );
  }
  const copy = roundTrip(buffer.slice(0, 5));
  assert.ok(copy instanceof ArrayBuffer);
  assert.deepEqual(new Uint8Array(copy), new Uint8Array(buffer, 0, 5));
});

Deno.test("toWire() round-trips Dates and RegExps", () => {
  const date = roundTrip(new Date(1_700_000_000_123));
  assert.ok(date instanceof Date);
  assert.equal(date.getTime(), 1_700_000_000_123);
  assert.ok(Number.isNaN(roundTrip(new Date(NaN)).getTime()));
  assert.equal(roundTrip(new Date(-1)).getTime(), -1);
  const regexp = roundTrip(/a+(?<b>c)\//dgimsuy);
  assert.ok(regexp instanceof RegExp);
  assert.equal(regexp.source, "a+(?<b>c)\\/");
  assert.equal(regexp.flags, "dgimsuy");
});

Deno.test("toWire() round-trips Maps and Sets with any keys", () => {
  const key = { id: 1 };
  const map = new Map<unknown, unknown>([
    [key, "object key"],
    [1n, new Set([undefined, -0])],
    [undefined, null],
    ["s", [new Date(0)]],
  ]);
  const copy = roundTrip(map);
  assert.ok(copy instanceof Map);
  assert.deepEqual([...copy.keys()], [{ id: 1 }, 1n, undefined, "s"]);
  assert.deepEqual(copy, map);
  assert.deepEqual(
    roundTrip(new Set(["a", { b: 2 }])),
    new Set(["a", { b: 2 }]),
  );
});

Deno.test("toWire() sends array holes as undefined", () => {
  // deno-lint-ignore no-sparse-arrays
  const copy = roundTrip([, 1, , 3]);
  assert.equal(copy.length, 4);
  assert.ok(0 in copy && 2 in copy);
  assert.deepEqual(copy, [undefined, 1, undefined, 3]);
});

Deno.test("toWire() keeps key order and null prototypes, and drops symbol keys", () => {
  const value = { b: 1, a: 2, 10: "x", 2: "y", [Symbol("s")]: 3, u: 4n };
  const copy = roundTrip(value);
  assert.deepEqual(Object.keys(copy), ["2", "10", "b", "a", "u"]);
  assert.equal(Object.getOwnPropertySymbols(copy).length, 0);
  const bare = Object.assign(Object.create(null), { x: 1, y: { z: 2 } });
  const bareCopy = roundTrip(bare);
  assert.equal(Object.getPrototypeOf(bareCopy), null);
  assert.deepEqual({ ...bareCopy }, { x: 1, y: { z: 2 } });
  assert.equal(Object.getPrototypeOf(bareCopy.y), Object.prototype);
});

Deno.test("toWire() round-trips built-in errors", () => {
  for (
    const create of [
      Error,
      TypeError,
      RangeError,
      SyntaxError,
      ReferenceError,
      EvalError,
      URIError,
    ]
  ) {
    const error = new create("boom", { cause: { code: 7 } });
    const copy = roundTrip(error);
    assert.equal(copy.constructor, create);
    assert.equal(copy.name, error.name);
    assert.equal(copy.message, "boom");
    assert.equal(copy.stack, error.stack);
    assert.deepEqual(copy.cause, { code: 7 });
    assert.deepEqual(Object.keys(copy), []);
  }
  const plain = roundTrip(new Error("no cause"));
  assert.ok(!Object.hasOwn(plain, "cause"));
});

Deno.test("toWire() round-trips AggregateError, extra properties and Deno.errors", () => {
  const inner = new RangeError("inner");
  const error = Object.assign(new AggregateError([inner, 1], "many"), {
    code: "EMANY",
    "odd key": -0,
  });
  const copy = roundTrip(error);
  assert.ok(copy instanceof AggregateError);
  assert.equal(copy.message, "many");
  assert.ok(copy.errors[0] instanceof RangeError);
  assert.equal(copy.errors[0].stack, inner.stack);
  assert.equal(copy.errors[1], 1);
  assert.equal(copy.code, "EMANY");
  assert.ok(Object.is(copy["odd key"], -0));
  assert.deepEqual(Object.keys(copy), ["code", "odd key"]);
  for (const name of ["NotFound", "NotCapable", "PermissionDenied"] as const) {
    const copy = roundTrip(new Deno.errors[name]("denied"));
    assert.ok(copy instanceof Deno.errors[name]);
    assert.equal(copy.name, name);
  }
});

Deno.test("toWire() sends other errors as Error with their name", () => {
  class HttpError extends Error {
    override name = "HttpError";
    status = 404;
  }
  const copy = roundTrip(new HttpError("missing"));
  assert.equal(copy.constructor, Error);
  assert.equal(copy.name, "HttpError");
  assert.equal(copy.status, 404);
  assert.equal(String(copy), "HttpError: missing");
  const abort = roundTrip(new DOMException("stop", "AbortError"));
  assert.equal(abort.name, "AbortError");
  const bare = new Error("no stack");
  delete bare.stack;
  assert.equal(roundTrip(bare).stack, undefined);
});

Deno.test("toWire() keeps shared references and cycles", () => {
  const shared = { n: 1 };
  const bytes = new Uint8Array([1]);
  const copy = roundTrip({ a: shared, b: [shared], c: bytes, d: bytes });
  assert.equal(copy.a, copy.b[0]);
  assert.equal(copy.c, copy.d);

  const array: unknown[] = [1];
  array.push(array);
  const arrayCopy = roundTrip(array);
  assert.equal(arrayCopy[1], arrayCopy);

  const record: Record<string, unknown> = {};
  record.self = record;
  const recordCopy = roundTrip(record);
  assert.equal(recordCopy.self, recordCopy);

  const map = new Map<unknown, unknown>();
  map.set(map, map);
  const mapCopy = roundTrip(map);
  assert.equal(mapCopy.get(mapCopy), mapCopy);

  const set = new Set<unknown>();
  set.add(set);
  const setCopy = roundTrip(set);
  assert.ok(setCopy.has(setCopy));

  const error = new Error("loop");
  error.cause = { error };
  const errorCopy = roundTrip(error);
  assert.equal((errorCopy.cause as { error: Error }).error, errorCopy);
});

Deno.test("toWire() leaves the value it converts untouched", () => {
  const value = { a: [undefined], b: new Map([[1, 2]]) };
  toWire(value, "value");
  assert.deepEqual(value, { a: [undefined], b: new Map([[1, 2]]) });
});

Deno.test("toWire() refuses what cannot be sent, naming its path", () => {
  class Foo {}
  const cases: [unknown, string][] = [
    [
      [1, { onDone() {} }],
      "Cannot send args[1].onDone: a function cannot be sent; send data and export the function instead",
    ],
    [
      () => 1,
      "Cannot send args: a function cannot be sent; send data and export the function instead",
    ],
    [
      { "a-b": [Symbol()] },
      'Cannot send args["a-b"][0]: a symbol cannot be sent',
    ],
    [
      [Promise.resolve()],
      "Cannot send args[0]: a Promise cannot be sent; await it and send its result",
    ],
    [{ m: new WeakMap() }, "Cannot send args.m: a WeakMap cannot be sent"],
    [[new WeakSet()], "Cannot send args[0]: a WeakSet cannot be sent"],
    [
      [new Foo()],
      "Cannot send args[0]: an instance of class Foo cannot be sent; send a plain object instead",
    ],
    [
      { url: new URL("http://x") },
      "Cannot send args.url: an instance of class URL cannot be sent; send a plain object instead",
    ],
    [
      [new Number(1)],
      "Cannot send args[0]: an instance of class Number cannot be sent; send a plain object instead",
    ],
    [
      [ext(1)],
      "Cannot send args[0]: an instance of class ExtData cannot be sent; send a plain object instead",
    ],
    [
      [Object.create({ inherited: 1 })],
      "Cannot send args[0]: an object with a custom prototype cannot be sent; send a plain object instead",
    ],
    [
      new Map([["k", () => 1]]),
      'Cannot send args.get("k"): a function cannot be sent; send data and export the function instead',
    ],
    [
      new Map([[{}, Symbol()]]),
      "Cannot send args.values()[0]: a symbol cannot be sent",
    ],
    [
      new Map<unknown, number>([[1, 2], [Symbol(), 3]]),
      "Cannot send args.keys()[1]: a symbol cannot be sent",
    ],
    [
      new Set([1, Symbol()]),
      "Cannot send args.values()[1]: a symbol cannot be sent",
    ],
    [
      [new Error("x", { cause: [Symbol()] })],
      "Cannot send args[0].cause[0]: a symbol cannot be sent",
    ],
    [
      JSON.parse('{"a": {"__proto__": 1}}'),
      'Cannot send args.a.__proto__: the key "__proto__" cannot be sent',
    ],
  ];
  for (const [value, message] of cases) {
    assert.throws(() => toWire(value, "args"), { name: "TypeError", message });
  }
});

Deno.test("toWire() refuses nesting deeper than MAX_DEPTH", () => {
  const nest = (levels: number) => {
    let value: unknown = 1;
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };
  const deepEncoder = new Encoder({ maxDepth: MAX_DEPTH + 2 });
  assert.deepEqual(roundTrip(nest(MAX_DEPTH), deepEncoder), nest(MAX_DEPTH));
  assert.throws(() => toWire(nest(MAX_DEPTH + 1), "args"), {
    name: "RangeError",
    message:
      /^Cannot send args\[0\].*\[0\]: nesting is deeper than 1000 levels$/,
  });
  assert.throws(() => toWire(nest(100_000), "args"), RangeError);
});

Deno.test("fromWire() refuses deep nesting without overflowing the stack", () => {
  const levels = 100_000;
  const head = new Uint8Array([0x92, 0xc7, 0x00, Marker.ROOT]);
  for (
    const open of [[0x91], [0x81, 0xa1, 0x61], [0x92, 0xc7, 0x00, Marker.SET]]
  ) {
    const bytes = new Uint8Array(head.length + levels * open.length + 1);
    bytes.set(head);
    for (let i = 0; i < levels; i++) {
      bytes.set(open, head.length + i * open.length);
    }
    bytes[bytes.length - 1] = 0xc0;
    assertRefused(
      decoder.decode(bytes),
      RangeError,
      /nesting is deeper than 1000/,
    );
  }
});

Deno.test("fromWire() refuses bad back references", () => {
  const ref = (index: unknown) => [ext(Marker.REF), index];
  assertRefused(root(ref(0)), RangeError);
  assertRefused(root([ref(1)]), RangeError);
  assertRefused(root([ref(-1)]), RangeError);
  assertRefused(root([ref(0.5)]), TypeError);
  assertRefused(root([ref("0")]), TypeError);
  assertRefused(root([[ext(Marker.REF)]]), TypeError);
  assertRefused(root([[ext(Marker.REF), 0, 0]]), TypeError);
  const self = fromWire(root([ref(0)])) as unknown[];
  assert.equal(self[0], self);
});

Deno.test("fromWire() refuses unknown and misplaced markers", () => {
  assertRefused([ext(Marker.ARRAY), 1], TypeError, /root/);
  assertRefused([ext(Marker.ROOT), 1, 2], TypeError, /root/);
  assertRefused([ext(Marker.ROOT, new Uint8Array([1])), 1], TypeError);
  assertRefused(root(ext(99)), TypeError, /marker 99/);
  assertRefused(root([ext(99)]), TypeError, /marker 99/);
  assertRefused(root(ext(Marker.MAP)), TypeError);
  assertRefused(root([ext(Marker.UNDEFINED), 1]), TypeError);
  assertRefused(root([ext(Marker.ROOT), 1]), TypeError);
  assertRefused(root(ext(Marker.UNDEFINED, new Uint8Array([0]))), TypeError);
  assertRefused(root(new ExtData(-1, new Uint8Array(4))), TypeError);
});

Deno.test("fromWire() refuses nodes of the wrong shape", () => {
  const node = (type: number, ...fields: unknown[]) => [ext(type), ...fields];
  const bad: unknown[] = [
    node(Marker.OBJECT, "yes", "k", 1),
    node(Marker.OBJECT, false, "k"),
    node(Marker.OBJECT, false, 1, 1),
    node(Marker.MAP, 1),
    node(Marker.DATE, "2020"),
    node(Marker.DATE),
    node(Marker.REGEXP, "a", "zz"),
    node(Marker.REGEXP, "(", ""),
    node(Marker.REGEXP, 1, ""),
    node(Marker.ARRAY_BUFFER, "bytes"),
    node(Marker.VIEW, "Function", new Uint8Array(0)),
    node(Marker.VIEW, "constructor", new Uint8Array(0)),
    node(Marker.VIEW, "Int8Array", [1]),
    node(Marker.BIGINT, 5),
    node(Marker.BIGINT, "0x10"),
    node(Marker.BIGINT, "12 "),
    node(Marker.BIGINT, ""),
    node(Marker.STRING, "abc"),
    node(Marker.ERROR, "Error", "m"),
    node(Marker.ERROR, "Error", 1, ext(Marker.UNDEFINED)),
    node(Marker.ERROR, "Error", "m", ext(Marker.UNDEFINED), "k"),
    undefined,
    5n,
    new Date(0),
    new Map(),
    new (class Foo {})(),
    () => 1,
  ];
  for (const body of bad) assertRefused(root([body]), TypeError);
});

Deno.test("fromWire() refuses over-limit lengths", () => {
  const node = (type: number, ...fields: unknown[]) => [ext(type), ...fields];
  assertRefused(
    root(node(Marker.VIEW, "Int16Array", new Uint8Array(3))),
    RangeError,
  );
  assertRefused(
    root(node(Marker.VIEW, "Float64Array", new Uint8Array(12))),
    RangeError,
  );
  assertRefused(root(node(Marker.STRING, new Uint8Array(3))), RangeError);
  assertRefused(root(node(Marker.BIGINT, "f".repeat(300_000))), RangeError);
  assert.throws(() => toWire(1n << 2_000_000n, "args"), {
    name: "RangeError",
    message:
      "Cannot send args: a bigint of more than 1048576 bits cannot be sent",
  });
});

Deno.test("fromWire() refuses __proto__ keys", () => {
  const node = (type: number, ...fields: unknown[]) => [ext(type), ...fields];
  const bad: unknown[] = [
    JSON.parse('{"__proto__": {"polluted": true}}'),
    node(Marker.OBJECT, false, "__proto__", { polluted: true }),
    node(Marker.OBJECT, true, "__proto__", { polluted: true }),
    node(Marker.ERROR, "Error", "m", "s", "__proto__", { polluted: true }),
  ];
  for (const body of bad) assertRefused(root([body]), TypeError, /__proto__/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("fromWire() builds errors from an allowlist, calling nothing named by the data", () => {
  const error = (name: string) =>
    fromWire(root([ext(Marker.ERROR), name, "m", "stack"])) as Error;
  for (
    const name of ["Function", "constructor", "toString", "errors", "eval"]
  ) {
    const copy = error(name);
    assert.equal(copy.constructor, Error);
    assert.equal(copy.name, name);
    assert.equal(copy.stack, "stack");
  }
  assert.ok(error("NotFound") instanceof Deno.errors.NotFound);
  assert.ok(error("URIError") instanceof URIError);
});

Deno.test("fromWire() throws only TypeError or RangeError on corrupted frames", () => {
  const value = {
    a: [1, undefined, -0, 2n ** 70n, "s\uD800"],
    m: new Map<unknown, unknown>([[{}, new Set([new Date(5)])]]),
    e: new AggregateError([new TypeError("t")], "x", { cause: /r/g }),
    v: [new Int32Array([1, 2]), new DataView(new ArrayBuffer(4))],
  };
  (value as Record<string, unknown>).self = value;
  const bytes = encoder.encode(toWire(value, "value"));
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let rebuilt = 0;
  for (let round = 0; round < 5000; round++) {
    const copy = bytes.slice();
    for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) {
      copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
    }
    let tree: unknown;
    try {
      tree = decoder.decode(copy);
    } catch {
      continue;
    }
    try {
      fromWire(tree);
      rebuilt++;
    } catch (error) {
      assert.ok(
        error instanceof TypeError || error instanceof RangeError,
        String(error),
      );
    }
  }
  assert.ok(rebuilt > 0);
});

Deno.test("toWire() and fromWire() hold a value to MAX_REGEXP_SOURCE characters of regular expressions, fromWire at once", () => {
  // Each \p{L} costs tens of microseconds to build: 64 MiB of them took
  // minutes before the budget. Each counts 64 more than its 5 characters.
  const many = Array.from({ length: 20_000 }, () => /\p{L}\p{L}/u);
  assert.throws(
    () => toWire(many, "args"),
    (e: Error) =>
      e instanceof RangeError &&
      e.message.startsWith("Cannot send args[118]: regular expressions") &&
      e.message.includes(`more than ${MAX_REGEXP_SOURCE} characters`),
  );
  // A sender that does not check: the receiver refuses before it builds
  // them all.
  const tree = root(
    many.map(() => [ext(Marker.REGEXP), "\\p{L}\\p{L}", "u"]),
  );
  const start = performance.now();
  assert.throws(
    () => fromWire(tree),
    (e: Error) =>
      e instanceof TypeError &&
      e.message.includes(`more than ${MAX_REGEXP_SOURCE} characters`),
  );
  assert.ok(performance.now() - start < 1000, "refused at once");
  // Within the budget, and again for the next value.
  const some = Array.from({ length: 100 }, () => /\p{L}+/u);
  for (let i = 0; i < 2; i++) {
    assert.equal((fromWire(toWire(some, "value")) as RegExp[]).length, 100);
  }
});

Deno.test("fromWire() counts a property escape under the v flag as 1,024 characters: properties of strings take milliseconds each to build", () => {
  // 1,260 of \p{RGI_Emoji} fit 16 KiB of source and held the controller
  // 2.5 s; 16 fit now.
  const emoji = (n: number) =>
    root([ext(Marker.REGEXP), "\\p{RGI_Emoji}".repeat(n), "v"]);
  const start = performance.now();
  assert.throws(
    () => fromWire(emoji(1260)),
    (e: Error) =>
      e instanceof TypeError &&
      e.message.includes("1,024 with the v flag"),
  );
  assert.ok(fromWire(emoji(15)) instanceof RegExp);
  assert.throws(() => fromWire(emoji(16)), TypeError);
  assert.ok(performance.now() - start < 500, "refused at once");
  assert.equal(regexpCost("\\p{L}", "u"), 5 + 64);
  assert.equal(regexpCost("[\\p{L}--\\P{Lu}]", "v"), 15 + 2048);
  assert.equal(regexpCost("a\\b\\", ""), 4);
});

Deno.test("fromWire() refuses an ERROR node whose pairs set its name, message or stack again", () => {
  // The head holds them as strings; a pair set them to anything, and code
  // that reads an error as text threw (the tunnel then ended slowly, as
  // when an agent exits).
  for (const key of ["name", "message", "stack"]) {
    const tree = root([ext(Marker.ERROR), "Error", "m", "s", key, 5]);
    assert.throws(
      () => fromWire(tree),
      (e: Error) =>
        e instanceof TypeError &&
        e.message.includes(`an ERROR node sets its ${key} again`),
    );
  }
  const error = fromWire(
    root([ext(Marker.ERROR), "Error", "m", "s", "code", 5]),
  ) as Error & { code: number };
  assert.equal(error.message, "m");
  assert.equal(error.code, 5);
});
