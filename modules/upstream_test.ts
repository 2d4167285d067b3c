import assert from "node:assert/strict";
import { upstream, within } from "./_upstream.ts";
import type { AnswerHold } from "./_module_server.ts";

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

Deno.test("upstream redirects are followed only within the registry's path or to origins the agent may fetch from (a CDN listed in remoteModules)", async () => {
  // Another host: nothing may reach it.
  const elsewhere: string[] = [];
  const other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      elsewhere.push(new URL(req.url).pathname);
      return new Response("export const stolen = 1;");
    },
  );
  const otherOrigin = `http://127.0.0.1:${other.addr.port}`;
  // A CDN a registry sends its tarballs from, when remoteModules lists it.
  const fromCdn: string[] = [];
  const cdn = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      fromCdn.push(new URL(req.url).pathname);
      return new Response("tarball", {
        headers: { "content-type": "application/octet-stream" },
      });
    },
  );
  const cdnOrigin = `http://127.0.0.1:${cdn.addr.port}`;
  const asked: string[] = [];
  const registry = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const path = new URL(req.url).pathname;
      asked.push(path);
      const to = (location: string) =>
        new Response(null, { status: 302, headers: { location } });
      switch (path) {
        case "/npm/moved":
          return to("/npm/ok");
        case "/npm/ok":
        case "/mods/ok.ts":
          return Response.json({ name: "ok" });
        case "/npm/away":
          return to(`${otherOrigin}/secret`);
        case "/npm/pkg/-/pkg-1.0.0.tgz":
          return to(`${cdnOrigin}/blobs/pkg-1.0.0.tgz`);
        case "/npm/up":
          return to("/admin/x");
        case "/npm/loop":
          return to("/npm/loop");
        case "/jsr/away":
          return new Response(null, {
            status: 307,
            headers: { location: `${otherOrigin}/internal` },
          });
        case "/mods/away.ts":
          return to(`${otherOrigin}/x.ts`);
        case "/mods/moved.ts":
          return to("/mods/ok.ts");
      }
      return new Response("not found", { status: 404 });
    },
  );
  const host = `127.0.0.1:${registry.addr.port}`;
  const saved = {
    NPM_CONFIG_REGISTRY: Deno.env.get("NPM_CONFIG_REGISTRY"),
    JSR_URL: Deno.env.get("JSR_URL"),
  };
  Deno.env.set("NPM_CONFIG_REGISTRY", `http://${host}/npm/`);
  Deno.env.set("JSR_URL", `http://${host}/jsr/`);
  const get = async (rest: string, allowed = [`http://${host}`]) => {
    const a = await upstream(rest, allowed, 5000);
    return `${a.status} ${new TextDecoder().decode(a.body).slice(0, 200)}`;
  };
  try {
    assert.match(await get("p/npm/moved"), /^200 .*"ok"/);
    assert.match(await get("u/http/" + host + "/mods/moved.ts"), /^200 /);
    for (
      const rest of [
        "p/npm/away",
        "p/jsr/away",
        `u/http/${host}/mods/away.ts`,
      ]
    ) {
      assert.match(await get(rest), /^502 .*redirects to/, rest);
    }
    // Out of the registry's path: refused, unless the registry's origin is
    // one the agent may fetch from anyway.
    assert.match(await get("p/npm/up", []), /^502 .*remoteModules/);
    // To a CDN: refused, then followed once remoteModules lists it.
    const tarball = "p/npm/pkg/-/pkg-1.0.0.tgz";
    assert.match(await get(tarball), /^502 .*redirects to/);
    assert.deepEqual(fromCdn, [], "the CDN was asked before it was allowed");
    assert.match(await get(tarball, [cdnOrigin]), /^200 tarball/);
    assert.deepEqual(fromCdn, ["/blobs/pkg-1.0.0.tgz"]);
    // What was kept for a tunnel that lists the CDN is not given to one
    // that does not.
    assert.match(await get(tarball), /^502 .*redirects to/);
    assert.match(await get(tarball, [cdnOrigin]), /^200 tarball/);
    assert.deepEqual(
      fromCdn,
      ["/blobs/pkg-1.0.0.tgz"],
      "kept, not asked again",
    );
    assert.match(await get("p/npm/loop"), /^502 .*more than 5 redirects/);
    assert.deepEqual(elsewhere, [], "another host was asked");
    assert.ok(!asked.includes("/admin/x"), "the registry was asked /admin/x");
    assert.equal(asked.filter((p) => p === "/npm/loop").length, 6);
  } finally {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) Deno.env.delete(key);
      else Deno.env.set(key, value);
    }
    await registry.shutdown();
    await other.shutdown();
    await cdn.shutdown();
  }
});

Deno.test("agents that ask for one URL at once share one upstream fetch", async () => {
  let asked = 0;
  let release = () => {};
  const released = new Promise<void>((r) => release = r);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      asked++;
      await released;
      return new Response("export const shared = 1;", {
        headers: { "content-type": "application/typescript" },
      });
    },
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  try {
    // A path no other test fetches: answers are kept in memory.
    const rest =
      `u/http/127.0.0.1:${server.addr.port}/shared-${crypto.randomUUID()}.ts`;
    const answers = Array.from(
      { length: 8 },
      () => upstream(rest, [origin], 5000),
    );
    await new Promise((r) => setTimeout(r, 100));
    release();
    for (const answer of await Promise.all(answers)) {
      assert.equal(answer.status, 200);
      assert.equal(
        new TextDecoder().decode(answer.body),
        "export const shared = 1;",
      );
    }
    assert.equal(asked, 1, "one fetch for eight requests");
  } finally {
    release();
    await server.shutdown();
  }
});

Deno.test("a download waits while no answer waiting on it has room, and that wait does not count toward its timeout", async () => {
  const body = new Uint8Array(256 * 1024).fill(0x61);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(body, { headers: { "content-type": "text/plain" } }),
  );
  const origin = `http://127.0.0.1:${server.addr.port}`;
  // A hold with room for nothing until `open`, counting what it took.
  let open = false;
  let taken = 0;
  const waiting = new Set<() => void>();
  const hold: AnswerHold = {
    gone: false,
    fits: () => open,
    take: (bytes) => taken += bytes,
    onChange: (listener) => {
      waiting.add(listener);
      return () => waiting.delete(listener);
    },
  };
  try {
    const answer = upstream(
      `u/http/${origin.slice(7)}/held-${Date.now()}.txt`,
      [origin],
      300,
      hold,
    );
    // Held back three times its timeout: nothing read, no 504.
    await new Promise((r) => setTimeout(r, 900));
    assert.equal(taken, 0, "it read with no room");
    open = true;
    for (const wake of [...waiting]) wake();
    const got = await answer;
    assert.equal(got.status, 200, new TextDecoder().decode(got.body));
    assert.equal(got.body.length, body.length);
    assert.equal(taken, body.length, "what it read was not counted");
  } finally {
    await server.shutdown();
  }
});
