import assert from "node:assert/strict";
import { ModuleServer } from "./_module_server.ts";

const SECRET = "s3cr3t";

async function tree() {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  const root = `${dir}/project`;
  await Deno.mkdir(`${root}/src`, { recursive: true });
  await Deno.mkdir(`${root}/.git`);
  await Deno.mkdir(`${dir}/outside`);
  await Deno.writeTextFile(`${root}/src/mod.ts`, "export const x = 1;");
  await Deno.writeTextFile(`${root}/data.json`, "{}");
  await Deno.writeTextFile(`${root}/.env`, "SECRET=1");
  await Deno.writeTextFile(`${root}/.git/config`, "[core]");
  await Deno.writeTextFile(`${root}/src/notes.txt`, "text");
  await Deno.writeTextFile(`${root}/.hidden.ts`, "export {}");
  await Deno.writeTextFile(`${dir}/outside/secret.ts`, "export const k = 1;");
  await Deno.symlink(`${dir}/outside/secret.ts`, `${root}/src/escape.ts`);
  await Deno.symlink(`${root}/src/mod.ts`, `${root}/src/alias.ts`);
  await Deno.symlink(`${dir}/outside`, `${root}/linkdir`);
  return { dir, root, server: new ModuleServer([root], SECRET) };
}

Deno.test("ModuleServer serves module files under the roots", async () => {
  const { dir, root, server } = await tree();
  try {
    const ok = await server.answer(`/${SECRET}/f${root}/src/mod.ts`);
    assert.equal(ok.status, 200);
    assert.equal(new TextDecoder().decode(ok.body), "export const x = 1;");
    assert.equal(
      (await server.answer(`/${SECRET}/f${root}/data.json`)).status,
      200,
    );
    const alias = await server.answer(`/${SECRET}/f${root}/src/alias.ts`);
    assert.equal(alias.status, 200, "a symlink that stays inside is fine");
    const spaced = await server.answer(`/${SECRET}/f${root}/src/%6Dod.ts`);
    assert.equal(spaced.status, 200, "plain percent-encoding is decoded");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModuleServer refuses every way out of the roots", async () => {
  const { dir, root, server } = await tree();
  const refused: [string, string][] = [
    ["wrong secret", `/nope/f${root}/src/mod.ts`],
    ["no secret", `/f${root}/src/mod.ts`],
    ["secret prefix only", `/${SECRET.slice(0, 3)}/f${root}/src/mod.ts`],
    ["dot-dot", `/${SECRET}/f${root}/src/../../outside/secret.ts`],
    [
      "encoded dot-dot",
      `/${SECRET}/f${root}/src/%2e%2e/%2E%2E/outside/secret.ts`,
    ],
    ["encoded slash", `/${SECRET}/f${root}/src%2f..%2f..%2foutside/secret.ts`],
    ["encoded backslash", `/${SECRET}/f${root}/src%5c..%5csecret.ts`],
    ["NUL byte", `/${SECRET}/f${root}/src/mod.ts%00.ts`],
    ["bad encoding", `/${SECRET}/f${root}/src/%zz.ts`],
    ["absolute path elsewhere", `/${SECRET}/f${dir}/outside/secret.ts`],
    ["/etc/passwd", `/${SECRET}/f/etc/passwd`],
    ["double slash", `/${SECRET}/f${root}//src/mod.ts`],
    ["symlink leaving the root", `/${SECRET}/f${root}/src/escape.ts`],
    ["symlinked dir leaving the root", `/${SECRET}/f${root}/linkdir/secret.ts`],
    [".env", `/${SECRET}/f${root}/.env`],
    [".git/config", `/${SECRET}/f${root}/.git/config`],
    ["dot module", `/${SECRET}/f${root}/.hidden.ts`],
    ["other extension", `/${SECRET}/f${root}/src/notes.txt`],
    ["directory", `/${SECRET}/f${root}/src`],
    ["missing", `/${SECRET}/f${root}/src/none.ts`],
  ];
  try {
    for (const [why, path] of refused) {
      const answer = await server.answer(path);
      assert.notEqual(answer.status, 200, `${why} was served`);
      assert.ok(answer.status >= 400, why);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModuleServer serves a root named through a symlink by that path, with the same checks", async () => {
  // A project's `links` entry may be a symlink: Deno then names the
  // package's modules by the symlink's path.
  const { dir, root } = await tree();
  const linked = `${dir}/linked`;
  await Deno.symlink(root, linked);
  const server = new ModuleServer([linked], SECRET);
  try {
    const ok = await server.answer(`/${SECRET}/f${linked}/src/mod.ts`);
    assert.equal(ok.status, 200);
    assert.equal(
      (await server.answer(`/${SECRET}/f${root}/src/mod.ts`)).status,
      200,
      "and by its real path",
    );
    for (
      const path of [
        "src/escape.ts",
        "linkdir/secret.ts",
        ".env",
        ".hidden.ts",
        "src/notes.txt",
        "src/../../outside/secret.ts",
      ]
    ) {
      const answer = await server.answer(`/${SECRET}/f${linked}/${path}`);
      assert.ok(answer.status >= 400, `${path} was served`);
    }
    const outside = await server.answer(`/${SECRET}/f${dir}/outside/secret.ts`);
    assert.equal(outside.status, 403);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ModuleServer fetches remote modules only from origins the program uses", async () => {
  const hits: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      hits.push(new URL(req.url).pathname);
      return new Response("export const x = 1;", {
        headers: { "content-type": "application/typescript" },
      });
    },
  );
  const origin = `127.0.0.1:${server.addr.port}`;
  try {
    const closed = new ModuleServer([], SECRET);
    const refused = await closed.answer(`/${SECRET}/u/http/${origin}/x.ts`);
    assert.equal(refused.status, 403);
    assert.match(new TextDecoder().decode(refused.body), /remoteModules/);
    assert.deepEqual(hits, [], "nothing was fetched");
    const open = new ModuleServer([], SECRET, {}, undefined, [
      `http://${origin}`,
    ]);
    const served = await open.answer(`/${SECRET}/u/http/${origin}/x.ts`);
    assert.equal(served.status, 200);
    assert.equal(new TextDecoder().decode(served.body), "export const x = 1;");
    const again = await open.answer(
      `/${SECRET}/u/http/${origin}/x.ts`,
      served.sha256,
    );
    assert.equal(again.status, 304, "an unchanged answer is not sent again");
    assert.equal(again.body.length, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("ModuleServer serves a root inside a dot directory of another (a package linked from .vendor), and nothing else there", async () => {
  const { dir, root } = await tree();
  const vendored = `${root}/.vendor/pkg`;
  await Deno.mkdir(vendored, { recursive: true });
  await Deno.writeTextFile(`${vendored}/mod.ts`, "export const v = 1;");
  await Deno.writeTextFile(`${vendored}/.secret.ts`, "export {}");
  await Deno.writeTextFile(`${root}/.vendor/other.ts`, "export {}");
  const server = new ModuleServer([root, vendored], SECRET);
  try {
    const ok = await server.answer(`/${SECRET}/f${vendored}/mod.ts`);
    assert.equal(ok.status, 200);
    for (const path of [`${vendored}/.secret.ts`, `${root}/.vendor/other.ts`]) {
      const answer = await server.answer(`/${SECRET}/f${path}`);
      assert.equal(answer.status, 403, `${path} was served`);
    }
    const alone = new ModuleServer([root], SECRET);
    assert.equal(
      (await alone.answer(`/${SECRET}/f${vendored}/mod.ts`)).status,
      403,
      "not a root: a dot directory of the project",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
