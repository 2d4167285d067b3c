import assert from "node:assert/strict";
import { upstream, within } from "./_upstream.ts";

Deno.test("within() keeps the URL fetched on the registry's origin and under its path, whatever the parser does", () => {
  const base = "http://127.0.0.1:4873/repository/npm-proxy/";
  // What the module server refuses first (control characters, dot
  // segments, backslashes), checked here again on the parsed URL.
  const out = [
    ".\t./.\t./admin/secret",
    "%2\te%2e/%2e\n%2e/admin/x",
    ".\r./.\r./internal/y",
    "../../admin",
    "%2e%2e/%2E%2e/admin",
    "..\\..\\admin",
    "../npm-proxy-other/x",
    "..",
    "x/../../admin",
  ];
  for (const rest of out) {
    assert.equal(within(base, rest), undefined, JSON.stringify(rest));
  }
  const kept: [string, string][] = [
    ["is-number", "/repository/npm-proxy/is-number"],
    ["@scope%2fname", "/repository/npm-proxy/@scope%2fname"],
    [
      "is-number/-/is-number-7.0.0.tgz",
      "/repository/npm-proxy/is-number/-/is-number-7.0.0.tgz",
    ],
    ["//evil.example/x", "/repository/npm-proxy///evil.example/x"],
    ["a/../b", "/repository/npm-proxy/b"],
  ];
  for (const [rest, path] of kept) {
    const url = within(base, rest);
    assert.ok(url, JSON.stringify(rest));
    assert.equal(url.origin, "http://127.0.0.1:4873");
    assert.equal(url.pathname, path);
  }
});

Deno.test("an upstream request that stalls ends with a 504 at its timeout", async () => {
  // One path never answers, one sends its headers and part of its body,
  // then nothing more; both are let go when the test ends.
  let release = () => {};
  const released = new Promise<void>((r) => release = r);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req) => {
      if (new URL(req.url).pathname === "/silent.ts") {
        await released;
        return new Response("export {};");
      }
      return new Response(
        new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode("export const x = "));
            await released;
            c.close();
          },
        }),
        { headers: { "content-type": "application/typescript" } },
      );
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  try {
    for (const path of ["silent.ts", "stalled.ts"]) {
      const start = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const answer = await Promise.race([
        upstream(`u/http/${origin.slice(7)}/${path}`, [origin], 300),
        new Promise<"hang">((r) => timer = setTimeout(() => r("hang"), 5000)),
      ]);
      clearTimeout(timer);
      assert.notEqual(answer, "hang", `${path}: no answer after 5 s`);
      if (answer === "hang") return;
      assert.equal(answer.status, 504, new TextDecoder().decode(answer.body));
      assert.match(new TextDecoder().decode(answer.body), /within 0\.3 s/);
      const took = performance.now() - start;
      assert.ok(took < 2000, `${path}: took ${took.toFixed(0)} ms`);
    }
  } finally {
    release();
    await server.shutdown();
  }
});
