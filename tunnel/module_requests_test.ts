import assert from "node:assert/strict";
import { ModuleRequests, SHARE } from "./_module_requests.ts";
import { ModuleServer } from "../modules/_module_server.ts";
import type { ProcessChannel } from "./_process_channel.ts";

const MiB = 1024 * 1024;
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

/**
 * The part of a ProcessChannel that module requests use, with an agent
 * that reads when the test says so. (A unit test of the share's wake-ups:
 * the share is tested with real agents in tests/hostile_test.ts.)
 */
class Channel {
  backlog = 0;
  closing = false;
  frames = 0;
  #progress: PromiseWithResolvers<void> | undefined;
  #waiters: { limit: number; resolve: () => void }[] = [];
  drained(limit: number): Promise<void> {
    if (this.backlog <= limit || this.closing) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ limit, resolve }));
  }
  progress(): Promise<void> {
    if (this.backlog === 0 || this.closing) return Promise.resolve();
    this.#progress ??= Promise.withResolvers<void>();
    return this.#progress.promise;
  }
  write(bytes: Uint8Array): void {
    this.backlog += bytes.length;
  }
  writeFrame(_kind: number, ...parts: Uint8Array[]): void {
    this.frames++;
    for (const part of parts) this.backlog += part.length;
  }
  /** The agent reads `bytes`. */
  read(bytes: number): void {
    this.backlog = Math.max(0, this.backlog - bytes);
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      if (this.backlog <= w.limit) w.resolve();
      else this.#waiters.push(w);
    }
    const progress = this.#progress;
    this.#progress = undefined;
    progress?.resolve();
  }
}

function request(id: number, path: string): Uint8Array {
  const p = new TextEncoder().encode(path);
  const body = new Uint8Array(5 + p.length);
  new DataView(body.buffer).setUint32(0, id);
  body.set(p, 5);
  return body;
}

Deno.test("module answers waiting for room go on as soon as the agent has read enough, whatever was queued when they began to wait", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/big.js`, "x".repeat(40 * MiB));
    const channel = new Channel();
    const requests = new ModuleRequests(
      new ModuleServer([root], "s"),
      channel as unknown as ProcessChannel,
    );
    // A small frame waits to be written when three 40 MiB answers come.
    channel.write(new Uint8Array(100));
    for (let id = 1; id <= 3; id++) {
      requests.push(request(id, `/s/f${root}/big.js`));
    }
    await tick(200);
    assert.equal(channel.frames, 2, "two answers went, the third waits");
    assert.ok(channel.backlog > SHARE);
    // The agent reads down to 1 MiB, and a transfer keeps about that much
    // queued: the third answer, now the oldest, goes on (it waited for the
    // backlog to fall below 100 bytes, what was queued when it began).
    channel.read(channel.backlog - MiB);
    for (let i = 0; i < 10 && channel.frames < 3; i++) {
      await tick(50);
      channel.read(256 * 1024);
      channel.write(new Uint8Array(256 * 1024));
    }
    assert.equal(channel.frames, 3, "the third answer still waits");
    requests.stop();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("an answer ready once the channel is closing is neither sent nor counted as sent", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/small.js`, "export {};");
    const channel = new Channel();
    const requests = new ModuleRequests(
      new ModuleServer([root], "s"),
      channel as unknown as ProcessChannel,
    );
    requests.push(request(1, `/s/f${root}/small.js`));
    await tick(100);
    assert.equal(channel.frames, 1);
    const sent = requests.bytes;
    assert.ok(sent > 0);
    channel.closing = true;
    requests.push(request(2, `/s/f${root}/small.js`));
    await tick(100);
    assert.equal(channel.frames, 1, "written to a closing channel");
    assert.equal(requests.bytes, sent, "counted as sent");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
