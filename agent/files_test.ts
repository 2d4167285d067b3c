import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { putBegin, putData, putEnd } from "./_files.ts";
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
