/**
 * Bad option values are refused with a TypeError or RangeError that names
 * the option, the value and what is expected, before any agent starts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Local, type SpawnSpec, type TunnelOptions } from "../mod.ts";
import { add } from "./fixtures/funcs.ts";

/** A Local tunnel that counts the agents it starts. */
class Counting extends Local {
  spawned = 0;
  constructor(options: TunnelOptions = {}) {
    super("counting", options);
  }
  protected override spawnSpec(script: string): SpawnSpec {
    this.spawned++;
    return super.spawnSpec(script);
  }
}

// Values a caller may pass from untyped code (JSON, environment, CLI).
// deno-lint-ignore no-explicit-any
const bad = (value: unknown): any => value;

Deno.test("tunnel options: connectTimeout and callTimeout must be milliseconds from 0 to 2147483647", () => {
  for (const name of ["connectTimeout", "callTimeout"]) {
    for (
      const [value, kind, shown] of [
        [-1, RangeError, "-1"],
        [NaN, RangeError, "NaN"],
        [Infinity, RangeError, "Infinity"],
        [2 ** 31, RangeError, "2147483648"],
        ["5s", TypeError, '"5s"'],
      ] as const
    ) {
      assert.throws(
        () => new Local("x", { [name]: bad(value) }),
        (e: Error) =>
          e instanceof kind &&
          e.message.includes(`${name} ${shown}`) &&
          /expected a number of milliseconds from 0 to 2147483647/.test(
            e.message,
          ),
        `${name}: ${String(value)}`,
      );
    }
    new Local("x", { [name]: 0 });
  }
});

Deno.test("callWith() refuses a bad timeout before an agent starts", async () => {
  const tun = new Counting();
  for (
    const [value, kind, shown] of [
      [-1, RangeError, "-1"],
      ["5s", TypeError, '"5s"'],
    ] as const
  ) {
    await assert.rejects(
      tun.callWith({ timeout: bad(value) }, add, 1, 2),
      (e: Error) => e instanceof kind && e.message.includes(`timeout ${shown}`),
    );
  }
  assert.equal(tun.spawned, 0, "no agent was started");
  assert.equal(tun.connected, false);
});

Deno.test("callWith() refuses a bad timeout on a connected tunnel too, and the tunnel stays usable", async () => {
  await using tun = new Counting({ output: () => {} });
  assert.equal(await tun.call(add, 1, 2), 3);
  await assert.rejects(
    tun.callWith({ timeout: -1 }, add, 1, 2),
    (e: Error) => e instanceof RangeError && /timeout -1/.test(e.message),
  );
  assert.equal(await tun.callWith({ timeout: 5_000 }, add, 2, 2), 4);
});

Deno.test("tunnel options: maxDepth must be a whole number, 0 or more", () => {
  for (
    const [value, kind] of [[-1, RangeError], [1.5, RangeError], [
      "2",
      TypeError,
    ]] as const
  ) {
    assert.throws(
      () => new Local("x", { maxDepth: bad(value) }),
      (e: Error) =>
        e instanceof kind && e.message.includes("maxDepth") &&
        /a whole number, 0 or more/.test(e.message),
    );
  }
});

Deno.test("tunnel options: env values must be strings, and names are checked when the tunnel is made", () => {
  assert.throws(
    () => new Local("x", { env: bad({ PORT: 8080 }) }),
    (e: Error) =>
      e instanceof TypeError &&
      /env\.PORT 8080: expected a string, such as "8080"/.test(e.message),
  );
  assert.throws(
    () => new Local("x", { env: { _d: "/tmp" } }),
    (e: Error) =>
      e instanceof TypeError &&
      /the agent script uses that name/.test(e.message),
  );
  assert.throws(
    () => new Local("x", { env: bad(["A=1"]) }),
    (e: Error) => e instanceof TypeError && /env/.test(e.message),
  );
});

Deno.test("put() refuses a mode that is not permission bits before an agent starts", async () => {
  const tun = new Counting();
  for (
    const [value, kind, shown] of [
      ["644", TypeError, '"644"'],
      [0o10000, RangeError, "4096"],
      [-1, RangeError, "-1"],
      [1.5, RangeError, "1.5"],
    ] as const
  ) {
    await assert.rejects(
      tun.put("deno.json", "/tmp/never-written", { mode: bad(value) }),
      (e: Error) =>
        e instanceof kind && e.message.includes(`mode ${shown}`) &&
        /from 0 to 0o7777.*0o644/.test(e.message),
      String(value),
    );
  }
  // Written in decimal: 644 is 0o1204 (sticky, owner write-only). The
  // sticky bit is refused, naming the mode meant; setuid is not.
  await assert.rejects(
    tun.put("deno.json", "/tmp/never-written", { mode: 644 }),
    (e: Error) =>
      e instanceof RangeError &&
      e.message.includes(
        "mode 644: expected permission bits without the sticky bit",
      ) &&
      e.message.endsWith("644 is 0o1204: did you mean 0o644?"),
  );
  await assert.rejects(
    tun.put("deno.json", "/tmp/never-written", { mode: 0o1755 }),
    (e: Error) => e instanceof RangeError && /sticky bit/.test(e.message),
  );
  assert.equal(tun.spawned, 0, "no agent was started");
});

Deno.test("tunnel options: liveness is false or an interval and a timeout in milliseconds", () => {
  for (
    const [value, kind, named] of [
      [{ interval: -5, timeout: 1000 }, RangeError, "liveness.interval -5"],
      [{ interval: 100, timeout: 2 ** 40 }, RangeError, "liveness.timeout"],
      // It said "liveness.timeout null", of a timeout not given.
      [
        { interval: 100 },
        TypeError,
        "liveness.timeout undefined: expected a number of milliseconds: give both interval and timeout",
      ],
      [{ interval: "1s", timeout: 1000 }, TypeError, 'liveness.interval "1s"'],
      [true, TypeError, "liveness true"],
      [{ interval: 0, timeout: 0 }, RangeError, "a timeout longer"],
      [{ interval: 15_000, timeout: 5 }, RangeError, "a timeout longer"],
    ] as const
  ) {
    assert.throws(
      () => new Local("x", { liveness: bad(value) }),
      (e: Error) => e instanceof kind && e.message.includes(named),
      JSON.stringify(value),
    );
  }
  new Local("x", { liveness: false });
  new Local("x", { liveness: { interval: 1, timeout: 1000 } });
});

Deno.test("tunnel options: cwd, deno, project, output, remoteModules and permissions are checked when the tunnel is made", () => {
  for (
    const [options, kind, named] of [
      [{ cwd: 5 }, TypeError, "cwd 5: expected a string"],
      [{ deno: 5 }, TypeError, "deno 5: expected a string"],
      [{ project: ["/x"] }, TypeError, "project"],
      [{ output: "x" }, TypeError, 'output "x": expected a function'],
      [{ remoteModules: "https://x" }, TypeError, "a list of strings"],
      [{ remoteModules: ["not a url"] }, TypeError, "remoteModules entry"],
      [{ remoteModules: ["ftp://x"] }, TypeError, "http: or https:"],
      [{ permissions: "all" }, TypeError, "permissions"],
      [{ permissions: { bogus: true } }, TypeError, 'permission "bogus"'],
      [{ permissions: { read: "yes" } }, TypeError, 'permission "read"'],
      [{ permissions: { net: ["a,b"] } }, RangeError, "without commas"],
    ] as const
  ) {
    const counting = () => new Counting(bad(options));
    assert.throws(
      counting,
      (e: Error) => e instanceof kind && e.message.includes(named),
      JSON.stringify(options),
    );
  }
  new Local("x", {
    cwd: "/",
    deno: "upload",
    output: () => {},
    remoteModules: ["https://deno.land/"],
    permissions: { read: true, net: ["127.0.0.1"] },
  });
});
