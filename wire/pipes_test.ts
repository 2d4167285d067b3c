import assert from "node:assert/strict";
import { ChannelPipes } from "./_pipes.ts";
import { pipeSizes } from "../tests/_pipe_sizes.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/** `n` FIFOs in a fresh directory, each held open (a FIFO's buffer lives only while it is open). */
async function fifos(n: number) {
  const dir = await Deno.makeTempDir({ prefix: "chopsticks-pipes-" });
  const paths = Array.from({ length: n }, (_, i) => `${dir}/${i}`);
  const made = await new Deno.Command("mkfifo", { args: paths }).output();
  assert.ok(made.success);
  // Read-write: on Linux such an open of a FIFO never waits.
  const files = paths.map((path) =>
    Deno.openSync(path, { read: true, write: true })
  );
  return {
    paths,
    async [Symbol.asyncDispose]() {
      for (const file of files) file.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function narrowed(paths: string[]): Promise<number[]> {
  const until = Date.now() + 5000;
  while (Date.now() < until && pipeSizes(paths).some((n) => n !== 64 * KiB)) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return pipeSizes(paths);
}

Deno.test("ChannelPipes widens a channel's pipes while any of its transfers streams, and narrows them a second after the last", async () => {
  await using f = await fifos(2);
  const pipes = new ChannelPipes(() => f.paths);
  const first = pipes.streaming();
  assert.deepEqual(pipeSizes(f.paths), [MiB, MiB]);
  const second = pipes.streaming();
  first();
  first(); // a second call does nothing
  await new Promise((resolve) => setTimeout(resolve, 1500));
  assert.deepEqual(pipeSizes(f.paths), [MiB, MiB], "one still streams");
  second();
  assert.deepEqual(await narrowed(f.paths), [64 * KiB, 64 * KiB]);
});

Deno.test("a process widens at most 16 pipes at a time, and those of a channel that ended count back", async () => {
  await using f = await fifos(20);
  const channels = Array.from(
    { length: 10 },
    (_, i) => new ChannelPipes(() => f.paths.slice(2 * i, 2 * i + 2)),
  );
  const ends = channels.map((c) => c.streaming());
  const sizes = pipeSizes(f.paths);
  assert.deepEqual(sizes.slice(0, 16), Array(16).fill(MiB));
  assert.deepEqual(sizes.slice(16), Array(4).fill(64 * KiB));
  ends[0]();
  assert.deepEqual(
    await narrowed(f.paths.slice(0, 2)),
    Array(2).fill(64 * KiB),
  );
  // The next transfer of a channel left narrow widens it.
  const late = channels[8].streaming();
  assert.deepEqual(pipeSizes(f.paths.slice(16, 18)), [MiB, MiB]);
  late();
  ends.forEach((end) => end());
  assert.deepEqual(await narrowed(f.paths), Array(20).fill(64 * KiB));
});

Deno.test("the pipes of a channel whose process is gone count back at its first narrowing", async () => {
  const gone = await fifos(2);
  const pipes = new ChannelPipes(() => gone.paths);
  const end = pipes.streaming();
  assert.deepEqual(pipeSizes(gone.paths), [MiB, MiB]);
  await gone[Symbol.asyncDispose]();
  end();
  await new Promise((resolve) => setTimeout(resolve, 1300));
  await using f = await fifos(16);
  const ends = Array.from(
    { length: 8 },
    (_, i) =>
      new ChannelPipes(() => f.paths.slice(2 * i, 2 * i + 2)).streaming(),
  );
  assert.deepEqual(pipeSizes(f.paths), Array(16).fill(MiB));
  ends.forEach((e) => e());
  assert.deepEqual(await narrowed(f.paths), Array(16).fill(64 * KiB));
});
