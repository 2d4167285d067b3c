import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { drop, fetchBegin, putBegin, putData, putEnd } from "./_files.ts";
import { CHUNK, FLUSH, Msg } from "../wire/_protocol.ts";

Deno.test("a put acknowledges each chunk, and again each flush to disk, so a slow disk still shows progress", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const messages: unknown[][] = [];
    const files = {
      message: (m: unknown[]) => void messages.push(m),
      frame: () => {},
      cwd: dir,
      tempDir: dir,
    };
    await putBegin(files, 1, `${dir}/out.bin`);
    const chunk = new Uint8Array(CHUNK).fill(7);
    const chunks = (3 * FLUSH) / CHUNK;
    const hash = createHash("sha256");
    for (let i = 0; i < chunks; i++) {
      putData(files, 1, chunk);
      hash.update(chunk);
    }
    const size = chunks * CHUNK;
    const done = await putEnd(1, size, hash.digest("hex"), null);
    assert.equal(done.size, size);
    const acks = messages.filter((m) => m[0] === Msg.Ack);
    assert.equal(acks.length, chunks + 3, "one per chunk, one per flush");
    assert.deepEqual(acks.at(-1), [Msg.Ack, 1, size]);
    assert.equal((await Deno.stat(`${dir}/out.bin`)).size, size);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a small file travels whole, with a put's end or a fetch's begin, checked as a streamed one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sent: unknown[] = [];
    const files = {
      message: (m: unknown[]) => void sent.push(m),
      frame: (kind: number) => void sent.push(kind),
      cwd: dir,
      tempDir: dir,
    };
    const data = new TextEncoder().encode("small file\n");
    const sha = createHash("sha256").update(data).digest("hex");
    await putBegin(files, 1, "in.txt");
    const done = await putEnd(1, 11, sha, 0o640, data);
    assert.deepEqual(done, {
      remotePath: `${dir}/in.txt`,
      sha256: sha,
      size: 11,
    });
    assert.equal(await Deno.readTextFile(`${dir}/in.txt`), "small file\n");
    assert.equal((await Deno.stat(`${dir}/in.txt`)).mode! & 0o777, 0o640);
    await putBegin(files, 2, "bad.txt");
    await assert.rejects(
      () => putEnd(2, 11, "0".repeat(64), null, data),
      /received 11 bytes with sha256 [0-9a-f]{64}, expected 11 bytes with 0{64}/,
    );
    const begun = await fetchBegin(files, 3, "in.txt");
    assert.deepEqual(begun, {
      path: `${dir}/in.txt`,
      size: 11,
      mode: 0o640,
      whole: [data, sha],
    });
    assert.deepEqual(sent, [], "no acknowledgement, frame or end");
    // One byte more than a chunk streams as before.
    await Deno.writeFile(`${dir}/big.bin`, new Uint8Array(CHUNK + 1));
    const big = await fetchBegin(files, 4, "big.bin");
    assert.equal(big.whole, undefined);
    assert.equal(big.size, CHUNK + 1);
    await drop(4);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      ["big.bin", "in.txt"],
      "the refused put left nothing",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
