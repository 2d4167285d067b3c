/**
 * The behaviours every transport must have, as one suite that each
 * transport's test file runs with its own tunnel factory.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type BaseTunnel,
  ConnectionLostError,
  RemoteError,
  TimeoutError,
  type TunnelOptions,
} from "../mod.ts";
import * as facts from "../facts.ts";
import {
  add,
  bigAndSmall,
  bytesLayout,
  echo,
  exitNow,
  fail,
  greet,
  importUrl,
  makeClosure,
  moduleUrl,
  noisy,
  pid,
  readText,
  sleep,
  unsendable,
} from "./fixtures/funcs.ts";

/** Makes a tunnel of the transport under test. */
export type TunnelFactory = (options?: TunnelOptions) => BaseTunnel;

/** Collects output lines instead of printing them. */
export function capture(): { lines: string[]; options: TunnelOptions } {
  const lines: string[] = [];
  return { lines, options: { output: (line) => lines.push(line) } };
}

/** How a transport's test file runs the suite. */
export interface ConformanceOptions {
  /**
   * Skips the whole suite, for this reason (printed once), such as test
   * hosts that are not up.
   */
  ignore?: string;
  /**
   * Tests that cannot apply to this transport: test name to the reason,
   * printed when the test is skipped.
   */
  skip?: Record<string, string>;
}

/** Registers the suite for one transport. */
export function conformance(
  transport: string,
  make: TunnelFactory,
  options: ConformanceOptions = {},
): void {
  if (options.ignore) {
    console.error(
      `${transport}: skipping the conformance suite: ${options.ignore}`,
    );
  }
  const test = (name: string, fn: () => Promise<void>) => {
    const reason = options.skip?.[name];
    if (reason && !options.ignore) {
      console.error(`${transport}: skipping "${name}": ${reason}`);
    }
    Deno.test({
      name: `${transport}: ${name}`,
      ignore: options.ignore !== undefined || reason !== undefined,
      fn,
    });
  };

  test("call() runs exported functions, built-ins and bare-specifier imports", async () => {
    await using tun = make();
    assert.equal(tun.connected, false, "connect is lazy");
    assert.equal(await tun.call(add, 2, 3), 5);
    assert.equal(tun.connected, true);
    assert.equal(await tun.call(greet, "you"), "Hello, you!");
    const now = await tun.call(Date.now);
    assert.ok(Math.abs(now - Date.now()) < 60_000);
    assert.equal(typeof await tun.call(Deno.hostname), "string");
    assert.notEqual(await tun.call(pid), Deno.pid);
  });

  test("call() refuses closures and unexported functions before sending", async () => {
    await using tun = make();
    await assert.rejects(
      () => tun.call(makeClosure()),
      (e: Error) => e instanceof TypeError && /export it/.test(e.message),
    );
    await assert.rejects(
      () => tun.call(() => 1),
      (e: Error) => e instanceof TypeError && /export it/.test(e.message),
    );
    // The agent each call started while it looked the function up was
    // given up: none is connected, long past the time one takes.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(tun.connected, false, "no agent is running");
  });

  test("a call or connect() right after a refused call gets an agent, and refusals at once leave none", async () => {
    await using tun = make();
    const refused = (e: Error) =>
      e instanceof TypeError && /export it/.test(e.message);
    await assert.rejects(() => tun.call(() => 1), refused);
    // At once: the connect given up is still ending. It is not theirs.
    assert.equal(await tun.call(add, 2, 3), 5);
    await tun.close();
    await assert.rejects(() => tun.call(() => 1), refused);
    await tun.connect();
    assert.equal(tun.connected, true);
    await tun.close();
    // Two refused at once: neither waits for the connect once refused.
    const both = await Promise.allSettled([
      tun.call(() => 1),
      tun.call(makeClosure()),
    ]);
    assert.deepEqual(both.map((r) => r.status), ["rejected", "rejected"]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(tun.connected, false, "no agent is running");
    assert.equal(await tun.call(add, 1, 1), 2);
  });

  test("calls in flight are matched by id and a slow call does not block a fast one", async () => {
    await using tun = make();
    await tun.connect();
    const order: string[] = [];
    const slow = tun.call(sleep, 600, "slow").then((v) =>
      order.push(v as string)
    );
    const fast = tun.call(sleep, 10, "fast").then((v) =>
      order.push(v as string)
    );
    await Promise.all([slow, fast]);
    assert.deepEqual(order, ["fast", "slow"]);
    const many = Array.from(
      { length: 300 },
      (_, i) => tun.call(sleep, (i * 7) % 40, i),
    );
    assert.deepEqual(await Promise.all(many), [...Array(300).keys()]);
  });

  test("values keep their types both ways", async () => {
    await using tun = make();
    const shared = { n: 1 };
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const value = {
      u: undefined,
      n: null,
      b: [true, false],
      nums: [0, -0, 1.5, NaN, Infinity, -Infinity],
      big: [12345678901234567890123n, -1n],
      s: "text ✓",
      bytes: new Uint8Array([1, 2, 255]),
      f64: new Float64Array([1.5, -2]),
      i16: new Int16Array([-3, 4]),
      buffer: new Uint8Array([9, 8]).buffer,
      date: new Date(1_700_000_000_123),
      re: /a+b/gi,
      map: new Map<unknown, unknown>([["k", 1], [2, { x: [3] }]]),
      set: new Set([1, "two"]),
      error: new RangeError("out", { cause: new Error("inner") }),
      pair: [shared, shared],
      cyclic,
    };
    const back = await tun.call(echo, value) as typeof value;
    assert.deepEqual(back, value);
    assert.ok(Object.is(back.nums[1], -0));
    assert.ok(back.error instanceof RangeError);
    assert.equal((back.error.cause as Error).message, "inner");
    assert.equal(back.pair[0], back.pair[1], "a shared reference stays shared");
    assert.equal(back.cyclic.self, back.cyclic, "a cycle stays a cycle");
  });

  test("byte arrays arrive with buffers of their own, both ways", async () => {
    // They were views into the message they came in: a small one kept a
    // big message alive, and its buffer held the other values' bytes.
    await using tun = make();
    const big = new Uint8Array(1 << 20);
    assert.deepEqual(
      await tun.call(bytesLayout, big, new Uint8Array([1, 2])),
      [[1 << 20, 1 << 20, 0], [2, 2, 0]],
    );
    for (const marked of [false, true]) {
      const { blob, tag } = await tun.call(bigAndSmall, 1 << 20, marked);
      assert.equal(blob.buffer.byteLength, 1 << 20, `marked: ${marked}`);
      assert.deepEqual(
        [...new Uint8Array(tag.buffer)],
        [7],
        `marked: ${marked}`,
      );
    }
  });

  test("unsendable values are refused with their path; the tunnel stays usable", async () => {
    await using tun = make();
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      () => tun.call(echo as any, [1, { onDone() {} }]),
      (e: Error) =>
        e instanceof TypeError && /args\[0\]\[1\]\.onDone/.test(e.message),
    );
    await assert.rejects(
      () => tun.call(echo, Symbol("s")),
      (e: Error) => e instanceof TypeError && /args\[0\]/.test(e.message),
    );
    await assert.rejects(
      () => tun.call(echo, new WeakMap()),
      (e: Error) => e instanceof TypeError && /WeakMap/.test(e.message),
    );
    await assert.rejects(
      () => tun.call(unsendable),
      (e: Error) =>
        e instanceof RemoteError && e.remoteName === "TypeError" &&
        /result\.callback/.test(e.message),
    );
    assert.equal(await tun.call(add, 1, 1), 2);
  });

  test("a remote throw rejects with RemoteError carrying controller paths", async () => {
    await using tun = make();
    const error = await tun.call(fail, "boom", "TypeError").catch((e) => e);
    assert.ok(error instanceof RemoteError);
    assert.equal(error.host, tun.host);
    assert.equal(error.remoteName, "TypeError");
    assert.equal(error.message, "boom");
    assert.match(
      error.remoteStack,
      /file:\/\/\/.*tests\/fixtures\/funcs\.ts:\d+:\d+/,
    );
    assert.doesNotMatch(error.remoteStack, /127\.0\.0\.1/);
    assert.ok(error.cause instanceof TypeError);
    assert.deepEqual((error.cause as Error).cause, { code: 42 });
    // Called again, the function runs in the turn its call arrived: the
    // stack goes down into the agent's bootstrap (a data: URL there, which
    // V8 shortens with "......"). Every frame names a file here.
    const again = await tun.call(fail, "boom").catch((e) => e);
    const frames = again.remoteStack.split("\n").filter((l: string) =>
      /^\s+at /.test(l)
    );
    assert.ok(frames.length >= 3, again.remoteStack);
    for (const frame of frames) {
      assert.match(frame, /file:\/\/\/\S+:\d+:\d+\)?$/, again.remoteStack);
    }
    assert.match(again.remoteStack, /agent\/_bootstrap\.bundle\.js:\d+:\d+/);
    // A data: URL in a message of the remote code's own is left as it is.
    const own = "see data:application/javascript;base64,QUJD......retry later";
    assert.equal((await tun.call(fail, own).catch((e) => e)).message, own);
    assert.equal(await tun.call(add, 2, 2), 4);
  });

  test("everything the remote code prints reaches the output as lines", async () => {
    const { lines, options } = capture();
    const tun = make(options);
    assert.equal(await tun.call(noisy), "done");
    assert.equal(await tun.call(add, 1, 2), 3, "the channel survived");
    await tun.close();
    for (
      const expected of [
        "log line",
        "error line",
        "stdout write",
        "bad\uFFFD\uFFFD",
        "child stdout",
        "child stderr",
        "no newline at the end",
      ]
    ) {
      assert.ok(lines.includes(expected), `missing ${expected} in ${lines}`);
    }
  });

  test("a scoped agent is refused outside its permissions and allowed inside", async () => {
    // The directory is made on the target, through the tunnel itself, so
    // the test holds on any transport (another user, another filesystem).
    const dir = `/tmp/chopsticks-scope-${crypto.randomUUID()}`;
    await using tun = make({ permissions: { read: [dir], write: [dir] } });
    try {
      await tun.call(Deno.mkdir, dir);
      await tun.call(Deno.writeTextFile, `${dir}/ok.txt`, "inside");
      assert.equal(await tun.call(readText, `${dir}/ok.txt`), "inside");
      const error = await tun.call(readText, "/etc/hostname").catch((e) => e);
      assert.ok(error instanceof RemoteError, String(error));
      assert.equal(error.remoteName, "NotCapable");
      // Deno's advice (a flag to run again with) is replaced by the
      // tunnel's option that grants it.
      assert.match(
        error.message,
        /^Requires read access to "\/etc\/hostname", grant it with the tunnel's permissions option \(\{ read: \[\.\.\.\] \} or \{ read: true \}\)/,
      );
      const env = await tun.call(Deno.env.toObject).catch((e) => e);
      assert.equal(env.remoteName, "NotCapable");
      assert.match(env.message, /\{ env: true \}/);
    } finally {
      await tun.call(Deno.remove, dir, { recursive: true }).catch(() => {});
    }
  });

  test("the agent cannot read controller files outside the module roots", async () => {
    await using tun = make();
    const url = await tun.call(moduleUrl);
    const base = url.slice(0, url.indexOf("/f/") + 3);
    for (const path of ["etc/passwd", "etc/hostname.ts"]) {
      const error = await tun.call(importUrl, base + path).catch((e) => e);
      assert.ok(error instanceof RemoteError, `${path} was served`);
    }
    const wrongSecret = url.replace(
      /\/[0-9a-f]{48}\//,
      "/" + "0".repeat(48) + "/",
    );
    assert.ok(
      await tun.call(importUrl, wrongSecret).catch((e) => e) instanceof
        RemoteError,
    );
  });

  test("an edited module is served fresh to the next agent", async () => {
    const dir = new URL("./fixtures/tmp/", import.meta.url);
    await Deno.mkdir(dir, { recursive: true });
    const file = new URL(`version_${crypto.randomUUID()}.ts`, dir);
    const source = (v: string) =>
      `export function version(): string { return "${v}"; }\n`;
    await Deno.writeTextFile(file, source("one"));
    try {
      const mod = await import(file.href);
      await using tun = make();
      assert.equal(await tun.call(mod.version), "one");
      await Deno.writeTextFile(file, source("two"));
      assert.equal(
        await tun.call(mod.version),
        "one",
        "a running agent keeps what it loaded",
      );
      await tun.close();
      assert.equal(
        await tun.call(mod.version),
        "two",
        "the next agent sees the edit",
      );
    } finally {
      await Deno.remove(file);
    }
  });

  test("lifecycle: close, await using, and a fresh agent after close", async () => {
    const tun = make();
    // Each agent's module URLs hold its own random secret; a pid would not
    // do, as a fresh container gives its agent the same pid each time.
    const first = await tun.call(moduleUrl);
    await tun.close();
    assert.equal(tun.connected, false);
    const second = await tun.call(moduleUrl);
    assert.notEqual(first, second, "a fresh agent");
    {
      await using scoped = tun;
      assert.equal(scoped.connected, true);
    }
    assert.equal(tun.connected, false);
  });

  test("per-call timeout and AbortSignal reject at once; the tunnel stays usable", async () => {
    await using tun = make();
    await tun.connect();
    const started = performance.now();
    await assert.rejects(
      () => tun.callWith({ timeout: 100 }, sleep, 5_000, 1),
      TimeoutError,
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("stop")), 50);
    await assert.rejects(
      () => tun.callWith({ signal: controller.signal }, sleep, 5_000, 1),
      /stop/,
    );
    assert.ok(performance.now() - started < 2_000);
    assert.equal(await tun.call(add, 3, 4), 7);
  });

  test("when the agent dies, pending calls reject with its exit code and stderr", async () => {
    const { options } = capture();
    await using tun = make(options);
    const pending = tun.call(sleep, 10_000, 1);
    const error = await tun.call(exitNow, 3).catch((e) => e);
    assert.ok(error instanceof ConnectionLostError, String(error));
    assert.equal(error.exitCode, 3);
    assert.ok(
      error.stderrTail.includes("about to exit"),
      String(error.stderrTail),
    );
    await assert.rejects(pending, ConnectionLostError);
    assert.equal(tun.connected, false);
    assert.equal(await tun.call(add, 1, 2), 3, "the next call reconnects");
  });

  test("facts run through call()", async () => {
    await using tun = make();
    assert.equal(await tun.call(facts.denoVersion), Deno.version.deno);
    assert.equal(typeof await tun.call(facts.hostname), "string");
    assert.match(await tun.call(facts.osRelease), /\d/);
    assert.ok(Array.isArray(await tun.call(facts.ip)));
    assert.equal((await tun.call(facts.platform)).os, "linux");
  });
}
