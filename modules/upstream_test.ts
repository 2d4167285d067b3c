import assert from "node:assert/strict";
import { within } from "./_upstream.ts";

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
