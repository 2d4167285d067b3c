import assert from "node:assert/strict";
import { ErrorResult } from "../group/error_result.ts";
import { RemoteError } from "../errors.ts";
import { formatValue, toJsonable, truncate } from "./_format_value.ts";
import type { Outcome } from "./_outcome.ts";
import { Progress } from "./_progress.ts";
import {
  oneLine,
  renderBlocks,
  renderFooter,
  renderJson,
  renderPlain,
  renderProgress,
  renderTable,
} from "./_render.ts";

const remote = new RemoteError("b", {
  name: "RangeError",
  message: "bad\nvalue",
  stack: "RangeError: bad\n    at f (file:///t.ts:1:1)",
});
const outcomes: Outcome[] = [
  { host: "a", ok: true, value: { n: 1n, s: new Set([1]) }, ms: 12.34 },
  { host: "b", ok: false, error: new ErrorResult("b", remote), ms: 5 },
  { host: "c", ok: true, value: "plain text", ms: 1 },
];
const screen = { columns: 60, color: false };

Deno.test("formatValue() and toJsonable() print any value on one line", () => {
  assert.equal(formatValue("as is"), "as is");
  assert.equal(formatValue("two\nlines"), '"two\\nlines"');
  assert.equal(formatValue(undefined), "null");
  assert.equal(
    formatValue({
      big: 2n ** 70n,
      nan: NaN,
      d: new Date(0),
      m: new Map([["k", 1]]),
    }),
    '{"big":"1180591620717411303424","nan":"NaN","d":"1970-01-01T00:00:00.000Z","m":{"k":1}}',
  );
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.deepEqual(toJsonable(cyclic), { self: "[Circular]" });
  assert.deepEqual(toJsonable(new Uint8Array([1, 2])), [1, 2]);
  assert.deepEqual(toJsonable(new Map([[1, "x"]])), [[1, "x"]]);
  assert.equal(truncate("abcdef", 4), "abc…");
  assert.equal(truncate("abc", 4), "abc");
});

Deno.test("toJsonable() copies what an agent returns faithfully: typed arrays by element, invalid dates, Maps whose keys print alike", () => {
  // Typed arrays printed their bytes (1.5 as [0,0,0,0,0,0,248,63]).
  assert.deepEqual(toJsonable(new Float64Array([1.5, -2])), [1.5, -2]);
  assert.deepEqual(toJsonable(new Int16Array([-1, 300])), [-1, 300]);
  assert.deepEqual(toJsonable(new BigInt64Array([5n])), ["5"]);
  assert.deepEqual(toJsonable(new Float32Array([NaN])), ["NaN"]);
  assert.deepEqual(toJsonable(new DataView(new Uint8Array([7, 8]).buffer)), [
    7,
    8,
  ]);
  // An invalid Date threw, and the CLI died with every host's results.
  assert.equal(toJsonable(new Date(NaN)), "Invalid Date");
  // "1" and 1n print alike: as an object, one entry was lost.
  assert.deepEqual(
    toJsonable(new Map<unknown, string>([["1", "a"], [1n, "b"]])),
    [
      ["1", "a"],
      ["1", "b"],
    ],
  );
  // A shared object is copied again where it appears (not a cycle).
  const shared = { x: 1 };
  assert.deepEqual(toJsonable([shared, shared]), [{ x: 1 }, { x: 1 }]);
});

Deno.test("toJsonable() copies a value of shared references in bounded time", () => {
  // A_k = [A_(k-1), A_(k-1)]: 23 levels are 23 arrays, 2^23 copies when
  // every reference is copied again (4.8 s; 25 levels ran out of memory).
  let value: unknown[] = [];
  for (let k = 0; k < 23; k++) value = [value, value];
  const start = performance.now();
  const text = formatValue(value);
  assert.ok(performance.now() - start < 500, "bounded");
  assert.ok(text.includes('"[Shared]"'), text.slice(0, 200));
  assert.ok(text.length < 1_000_000, `${text.length} characters`);
});

Deno.test("truncate() looks at no more of a long text than it keeps", () => {
  assert.equal(truncate("😀😀😀", 3), "😀😀😀");
  assert.equal(truncate("😀😀😀😀", 3), "😀😀…");
  assert.equal(truncate("ab", 1), "…");
  assert.equal(truncate("ab", 0), "");
  // Counts the code points read: spreading a 64 MiB value from an agent
  // into an array took 9 times its size.
  const iterate = String.prototype[Symbol.iterator];
  let read = 0;
  String.prototype[Symbol.iterator] = function (this: string) {
    const chars = iterate.call(this);
    const next = chars.next.bind(chars);
    chars.next = () => {
      read++;
      return next();
    };
    return chars;
  };
  try {
    assert.equal(truncate("x".repeat(100_000), 10), "xxxxxxxxx…");
  } finally {
    String.prototype[Symbol.iterator] = iterate;
  }
  assert.ok(read <= 11, `read ${read} code points`);
});

Deno.test("renderPlain() prints host, status and value separated by tabs", () => {
  assert.equal(
    renderPlain(outcomes),
    'a\tok\t{"n":"1","s":[1]}\nb\tfailed\t"RangeError: bad\\nvalue"\nc\tok\tplain text\n',
  );
});

Deno.test("renderJson() prints one document with every host", () => {
  const doc = JSON.parse(renderJson({ command: "call" }, outcomes));
  assert.equal(doc.command, "call");
  assert.equal(doc.ok, false);
  assert.deepEqual(doc.hosts[0], {
    host: "a",
    ok: true,
    ms: 12.3,
    value: { n: "1", s: [1] },
  });
  assert.equal(doc.hosts[1].error.remoteName, "RangeError");
  assert.equal(doc.hosts[1].error.name, "RemoteError");
  assert.match(doc.hosts[1].error.remoteStack, /t\.ts/);
});

Deno.test("renderTable() fits the screen and renderFooter() sums up", () => {
  const table = renderTable(outcomes, screen).split("\n");
  assert.match(table[0], /^HOST\s+STATUS\s+TIME\s+RESULT$/);
  assert.match(table[2], /^b\s+failed\s+0\.01 s\s+RangeError: bad value$/);
  for (const line of table) assert.ok([...line].length < 60, line);
  assert.equal(
    renderFooter({ total: 3, ok: 2, failed: 1, running: 0 }, 1500, screen),
    "3 hosts: 2 ok, 1 failed in 1.50 s\n",
  );
  const colored = renderTable(outcomes, { columns: 60, color: true });
  assert.ok(colored.includes("\x1b[31mfailed"));
});

Deno.test("oneLine() makes each run of white space with a line break one space", () => {
  assert.equal(oneLine("a \n\t b  c\r\n\nd\n"), "a b  c d ");
  assert.equal(oneLine("\u00a0\nx\u2028y"), " x\u2028y");
  // What the regex \s*\n\s* did, on seeded random texts.
  const pieces = [" ", "\n", "\t", "\r", "\u00a0", "x", "yz"];
  let seed = 7;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return Math.floor(seed / 2 ** 31 * n);
  };
  for (let i = 0; i < 5000; i++) {
    let text = "";
    for (let j = random(12); j > 0; j--) text += pieces[random(pieces.length)];
    assert.equal(oneLine(text), text.replace(/\s*\n\s*/g, " "), text);
  }
});

/** Host "a" returned `text`, host "b" threw it. */
function fromAgent(text: string): Outcome[] {
  const error = new ErrorResult(
    "b",
    new RemoteError("b", { name: "Error", message: text, stack: "" }),
  );
  return [
    { host: "a", ok: true, value: text, ms: 1 },
    { host: "b", ok: false, error, ms: 1 },
  ];
}

Deno.test("renderTable() and renderBlocks() take linear time on white space from an agent", () => {
  // 160,000 spaces took 9.4 s in renderTable; 400,000 take minutes.
  const hostile = fromAgent(" ".repeat(400_000) + "x");
  const start = performance.now();
  const table = renderTable(hostile, screen);
  const blocks = renderBlocks(hostile, screen);
  const took = performance.now() - start;
  assert.ok(took < 1000, `took ${took.toFixed(0)} ms`);
  for (const line of [...table.split("\n"), ...blocks.split("\n")]) {
    assert.ok([...line].length < 60, line);
  }
});

Deno.test("renderBlocks() prints each key of a host's value on its own line", () => {
  const text = renderBlocks([
    {
      host: "a",
      ok: true,
      value: { hostname: "web1", ip: ["10.0.0.1"] },
      ms: 3,
    },
    outcomes[1],
  ], screen);
  assert.equal(
    text,
    'a  ok  0.00 s\n  hostname  web1\n  ip        ["10.0.0.1"]\nb  failed  0.01 s\n  RangeError: bad value\n',
  );
});

Deno.test("renderProgress() shows done, failed and running in the width", () => {
  const line = renderProgress(
    "call x",
    { total: 4, ok: 1, failed: 1, running: 2 },
    2500,
    80,
  );
  assert.equal(
    line,
    "[##########..........] 2/4 done, 1 failed, 2 running  2.50 s  call x",
  );
  assert.equal(
    [...renderProgress(
      "x".repeat(200),
      { total: 1, ok: 0, failed: 0, running: 1 },
      0,
      40,
    )].length,
    39,
  );
});

Deno.test("what an agent returns or throws cannot drive the terminal through the CLI", () => {
  const escapes = "\x1b]0;pwned\x07\x1b[2J\x9b1m";
  const hostile: Outcome[] = [
    ...fromAgent(escapes),
    { host: "c", ok: true, value: { k: escapes }, ms: 1 },
    { host: "d", ok: true, value: { [escapes]: 1 }, ms: 1 },
  ];
  const wide = { columns: 200, color: false };
  const lines: string[] = [];
  const progress = new Progress("call", 1, {
    write: (t) => void lines.push(t),
    columns: 200,
  });
  progress.line(escapes, "e");
  progress.stop();
  for (
    const text of [
      renderPlain(hostile),
      renderTable(hostile, wide),
      renderBlocks(hostile, wide),
      renderJson({ command: "call" }, hostile).replaceAll("\n", ""),
      lines.join("").replaceAll("\r\x1b[2K", ""),
    ]
  ) {
    // deno-lint-ignore no-control-regex
    const controls = text.replace(/[\t\n]/g, "").match(/[\x00-\x1f\x7f-\x9f]/g);
    assert.equal(controls, null, JSON.stringify(text));
  }
});

Deno.test("host names are printed with their control characters escaped: a tab from an inventory breaks no line", () => {
  const odd: Outcome[] = [
    { host: "web\t1", ok: true, value: 1, ms: 1 },
    {
      host: "db\x1b[2J",
      ok: false,
      error: new ErrorResult("db", remote),
      ms: 1,
    },
  ];
  assert.equal(renderPlain(odd).split("\n")[0], "web\\u00091\tok\t1");
  for (
    const text of [
      renderPlain(odd),
      renderTable(odd, screen),
      renderBlocks(odd, screen),
    ]
  ) {
    // deno-lint-ignore no-control-regex
    assert.doesNotMatch(text.replaceAll("\t", ""), /[\x00-\x09\x0b-\x1f]/);
  }
  assert.equal(renderPlain(odd).split("\n")[0].split("\t").length, 3);
});
