/**
 * File transfer behaviours every transport must have: `put` and `fetch`
 * stream, verify, rename atomically, and fail without leaving a partial
 * file. Remote paths are made through the tunnel itself, so the suite runs
 * unchanged against containers and other hosts.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { RemoteError } from "../mod.ts";
import type { TunnelFactory } from "./_conformance.ts";
import {
  add,
  describeTree,
  list,
  makeFifo,
  modeOf,
  readBytes,
  removeAll,
  tempDir,
  writeBytes,
} from "./fixtures/funcs.ts";

function random(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  }
  return bytes;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Registers the file transfer suite for one transport. */
export function filesConformance(transport: string, make: TunnelFactory): void {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({ name: `${transport}: ${name}`, fn });

  test("put() and fetch() copy a file, checked by sha256, with its mode", async () => {
    const local = await Deno.makeTempDir();
    await using tun = make();
    const remote = await tun.call(tempDir);
    try {
      const bytes = random(3 * 1024 * 1024 + 17);
      await Deno.writeFile(`${local}/src.bin`, bytes, { mode: 0o640 });
      await Deno.chmod(`${local}/src.bin`, 0o640);
      const put = await tun.put(`${local}/src.bin`, `${remote}/dst.bin`);
      assert.deepEqual(put, {
        remotePath: `${remote}/dst.bin`,
        sha256: sha256(bytes),
        size: bytes.length,
      });
      assert.deepEqual(await tun.call(readBytes, `${remote}/dst.bin`), bytes);
      assert.equal(await tun.call(modeOf, `${remote}/dst.bin`), 0o640);
      await tun.put(`${local}/src.bin`, `${remote}/x.bin`, { mode: 0o600 });
      assert.equal(await tun.call(modeOf, `${remote}/x.bin`), 0o600);
      const fetched = await tun.fetch(`${remote}/dst.bin`, `${local}/back.bin`);
      assert.deepEqual(fetched, {
        localPath: `${local}/back.bin`,
        remotePath: `${remote}/dst.bin`,
        sha256: sha256(bytes),
        size: bytes.length,
      });
      assert.deepEqual(await Deno.readFile(`${local}/back.bin`), bytes);
      const fresh = await tun.put(`${local}/src.bin`);
      assert.match(fresh.remotePath, /^\/.*\/chopsticks-put-[0-9a-f]{32}$/);
      assert.deepEqual(await tun.call(readBytes, fresh.remotePath), bytes);
      await tun.call(removeAll, fresh.remotePath);
      assert.deepEqual(await tun.call(list, remote), ["dst.bin", "x.bin"]);
    } finally {
      await tun.call(removeAll, remote);
      await Deno.remove(local, { recursive: true });
    }
  });

  test("put() resolves a relative path against the agent's working directory", async () => {
    const local = await Deno.makeTempDir();
    const probe = make();
    const remote = await probe.call(tempDir);
    await probe.close();
    try {
      await Deno.writeTextFile(`${local}/a.txt`, "relative");
      await using tun = make({ cwd: remote });
      const put = await tun.put(`${local}/a.txt`, "sub.txt");
      assert.equal(put.remotePath, `${remote}/sub.txt`);
      const fetched = await tun.fetch("sub.txt", `${local}/b.txt`);
      assert.equal(fetched.remotePath, `${remote}/sub.txt`);
      assert.equal(await Deno.readTextFile(`${local}/b.txt`), "relative");
      await tun.call(removeAll, remote);
    } finally {
      await Deno.remove(local, { recursive: true });
    }
  });

  test("put() refuses a directory target and a missing local file, leaving nothing", async () => {
    const local = await Deno.makeTempDir();
    await using tun = make();
    const remote = await tun.call(tempDir);
    try {
      await Deno.writeTextFile(`${local}/a.txt`, "x");
      await assert.rejects(
        () => tun.put(`${local}/a.txt`, remote),
        (e: Error) => /is a directory/.test(e.message),
      );
      await assert.rejects(
        () => tun.put(`${local}/missing.txt`, `${remote}/m.txt`),
        (e: Error) =>
          e instanceof Deno.errors.NotFound && /missing\.txt/.test(e.message),
      );
      await assert.rejects(
        () => tun.put(local, `${remote}/dir.txt`),
        /not a regular file/,
      );
      await assert.rejects(
        () => tun.put(`${local}/a.txt`, `${remote}/no/such/a.txt`),
        (e: Error) =>
          e.message.includes(`its directory ${remote}/no/such does not exist`),
      );
      assert.deepEqual(await tun.call(list, remote), []);
      assert.equal(await tun.call(add, 1, 1), 2, "the tunnel stays usable");
    } finally {
      await tun.call(removeAll, remote);
      await Deno.remove(local, { recursive: true });
    }
  });

  test("fetch() makes the missing directories of its local path", async () => {
    const local = await Deno.makeTempDir();
    await using tun = make();
    const remote = await tun.call(tempDir);
    try {
      await tun.call(writeBytes, `${remote}/log`, new Uint8Array([7]));
      const got = await tun.fetch(`${remote}/log`, `${local}/logs/a/b.log`);
      assert.equal(got.localPath, `${local}/logs/a/b.log`);
      assert.deepEqual(await Deno.readFile(got.localPath), new Uint8Array([7]));
      // A path ending in "/" names a directory, made if missing.
      const into = await tun.fetch(`${remote}/log`, `${local}/logs/new/`);
      assert.equal(into.localPath, `${local}/logs/new/log`);
      assert.deepEqual(
        await Deno.readFile(into.localPath),
        new Uint8Array([7]),
      );
      // A file where a directory should be: a clear error, nothing made.
      await Deno.writeTextFile(`${local}/file`, "x");
      await assert.rejects(
        () => tun.fetch(`${remote}/log`, `${local}/file/b.log`),
        /cannot make its directory/,
      );
      assert.deepEqual(
        [...Deno.readDirSync(local)].map((e) => e.name).sort(),
        ["file", "logs"],
      );
    } finally {
      await tun.call(removeAll, remote);
      await Deno.remove(local, { recursive: true });
    }
  });

  test("fetch() of a missing file or a directory fails and never touches the local file", async () => {
    const local = await Deno.makeTempDir();
    await using tun = make();
    const remote = await tun.call(tempDir);
    try {
      await Deno.writeTextFile(`${local}/keep.txt`, "precious");
      const missing = await tun.fetch(`${remote}/none`, `${local}/keep.txt`)
        .catch((e) => e);
      assert.ok(missing instanceof RemoteError, String(missing));
      assert.equal(missing.remoteName, "NotFound");
      assert.match(missing.message, /none/);
      await assert.rejects(
        () => tun.fetch(remote, `${local}/keep.txt`),
        /is a directory/,
      );
      assert.equal(await Deno.readTextFile(`${local}/keep.txt`), "precious");
      assert.deepEqual([...Deno.readDirSync(local)].map((e) => e.name), [
        "keep.txt",
      ]);
    } finally {
      await tun.call(removeAll, remote);
      await Deno.remove(local, { recursive: true });
    }
  });

  test("put() of a local FIFO and fetch() of a remote one fail at once, and the tunnel goes on", async () => {
    const local = await Deno.makeTempDir();
    await using tun = make();
    const remote = await tun.call(tempDir);
    try {
      await makeFifo(`${local}/pipe`);
      await tun.call(makeFifo, `${remote}/pipe`);
      // Opening either would wait for a writer that never comes.
      await assert.rejects(
        () => tun.put(`${local}/pipe`, `${remote}/out`),
        /Cannot put "[^"]*\/pipe": it is not a regular file/,
      );
      await assert.rejects(
        () => tun.fetch(`${remote}/pipe`, `${local}/out`),
        /Cannot fetch "[^"]*\/pipe": it is not a regular file/,
      );
      assert.equal(await tun.call(add, 2, 3), 5);
      assert.deepEqual(await tun.call(list, remote), ["pipe"]);
      assert.deepEqual([...Deno.readDirSync(local)].map((e) => e.name), [
        "pipe",
      ]);
    } finally {
      await tun.call(removeAll, remote);
      await Deno.remove(local, { recursive: true });
    }
  });

  test("a transfer cut off by closing the tunnel leaves no partial file", async () => {
    const local = await Deno.makeTempDir();
    const tun = make();
    const remote = await tun.call(tempDir);
    try {
      await Deno.writeFile(`${local}/big.bin`, random(64 * 1024 * 1024));
      const put = tun.put(`${local}/big.bin`, `${remote}/big.bin`)
        .catch((e) => e);
      await new Promise((r) => setTimeout(r, 30));
      await tun.close();
      assert.ok(await put instanceof Error, "the put was cut off");
      assert.deepEqual(await tun.call(list, remote), [], "nothing was left");
    } finally {
      await tun.call(removeAll, remote);
      await tun.close();
      await Deno.remove(local, { recursive: true });
    }
  });

  test("put() and fetch() respect the agent's permissions", async () => {
    const local = await Deno.makeTempDir();
    const probe = make();
    const allowed = await probe.call(tempDir);
    const denied = await probe.call(tempDir);
    await probe.call(writeBytes, `${denied}/secret.txt`, new Uint8Array([1]));
    try {
      await Deno.writeTextFile(`${local}/a.txt`, "x");
      await using tun = make({
        permissions: { read: [allowed], write: [allowed] },
      });
      await tun.put(`${local}/a.txt`, `${allowed}/a.txt`);
      await tun.fetch(`${allowed}/a.txt`, `${local}/b.txt`);
      const put = await tun.put(`${local}/a.txt`, `${denied}/a.txt`)
        .catch((e) => e);
      assert.equal(put.remoteName, "NotCapable", String(put));
      const fetched = await tun.fetch(`${denied}/secret.txt`, `${local}/c.txt`)
        .catch((e) => e);
      assert.equal(fetched.remoteName, "NotCapable", String(fetched));
      assert.deepEqual(await probe.call(list, denied), ["secret.txt"]);
    } finally {
      await probe.call(removeAll, allowed);
      await probe.call(removeAll, denied);
      await probe.close();
      await Deno.remove(local, { recursive: true });
    }
  });

  test("putTree() and fetchTree() copy a tree with modes and symlinks, then only what changed", async () => {
    const local = await Deno.makeTempDir();
    await using tun = make();
    const remote = await tun.call(tempDir);
    try {
      const src = `${local}/src`;
      await Deno.mkdir(`${src}/sub/deep`, { recursive: true });
      await Deno.mkdir(`${src}/empty`);
      await Deno.writeTextFile(`${src}/a.txt`, "alpha");
      await Deno.writeTextFile(`${src}/sub/b.sh`, "#!/bin/sh\necho b\n");
      await Deno.writeTextFile(`${src}/sub/deep/c.txt`, "gamma");
      await Deno.chmod(`${src}/sub/b.sh`, 0o755);
      await Deno.chmod(`${src}/a.txt`, 0o640);
      await Deno.chmod(`${src}/sub`, 0o750);
      await Deno.chmod(src, 0o710);
      await Deno.symlink("sub/deep/c.txt", `${src}/link`);
      await Deno.symlink("/nonexistent/target", `${src}/dangling`);
      const expected = await describeTree(src);

      const first = await tun.putTree(src, `${remote}/dst`);
      assert.deepEqual(first, {
        root: `${remote}/dst`,
        files: 3,
        copied: 3,
        bytes: 5 + 17 + 5,
      });
      assert.deepEqual(await tun.call(describeTree, `${remote}/dst`), expected);
      assert.equal(await tun.call(modeOf, `${remote}/dst`), 0o710, "the root");
      const again = await tun.putTree(src, `${remote}/dst`);
      assert.equal(again.copied, 0, "nothing changed, nothing is sent");

      await Deno.writeTextFile(`${src}/sub/deep/c.txt`, "GAMMA");
      await Deno.chmod(`${src}/a.txt`, 0o600);
      const third = await tun.putTree(src, `${remote}/dst`);
      assert.equal(third.copied, 1, "only the edited file is sent");
      assert.deepEqual(
        await tun.call(describeTree, `${remote}/dst`),
        await describeTree(src),
        "the mode change arrived too",
      );

      const back = await tun.fetchTree(`${remote}/dst`, `${local}/back`);
      assert.equal(back.copied, 3);
      assert.equal((await Deno.stat(`${local}/back`)).mode! & 0o7777, 0o710);
      assert.deepEqual(
        await describeTree(`${local}/back`),
        await describeTree(src),
      );
      const backAgain = await tun.fetchTree(`${remote}/dst`, `${local}/back`);
      assert.equal(backAgain.copied, 0);
    } finally {
      await tun.call(removeAll, remote);
      await Deno.remove(local, { recursive: true });
    }
  });

  test("a second putTree() replaces a file there that its user may not read (mode 000)", async () => {
    const local = await Deno.makeTempDir();
    await using tun = make();
    const remote = await tun.call(tempDir);
    try {
      await Deno.mkdir(`${local}/src`);
      await Deno.writeTextFile(`${local}/src/locked`, "v1");
      await Deno.writeTextFile(`${local}/src/open`, "same");
      await Deno.chmod(`${local}/src/locked`, 0o000);
      assert.equal(
        (await tun.putTree(`${local}/src`, `${remote}/dst`)).copied,
        2,
      );
      // Same size, new content: only a hash could tell, and the agent's
      // user (unless root) cannot read what is there.
      await Deno.chmod(`${local}/src/locked`, 0o600);
      await Deno.writeTextFile(`${local}/src/locked`, "v2");
      await Deno.chmod(`${local}/src/locked`, 0o000);
      const again = await tun.putTree(`${local}/src`, `${remote}/dst`);
      assert.equal(again.files, 2);
      assert.equal(again.copied, 1, "the locked file is sent again");
      assert.equal(await tun.call(modeOf, `${remote}/dst/locked`), 0o000);
    } finally {
      await tun.call(removeAll, remote);
      await Deno.remove(local, { recursive: true });
    }
  });
}
