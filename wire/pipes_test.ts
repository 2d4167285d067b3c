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

/** An anonymous pipe of this process, named as the other side names one: `/proc/self/fd/<n>`. */
function anonymousPipe(libc: Deno.DynamicLibrary<typeof LIBC>) {
  const fds = new Int32Array(2);
  assert.equal(libc.symbols.pipe(fds), 0);
  return { fds: [...fds], path: `/proc/self/fd/${fds[0]}` };
}

const LIBC = {
  pipe: { parameters: ["buffer"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

Deno.test("a channel's pipes are left alone once it closed, even when its paths name another process's pipes; their budget counts back", async () => {
  const libc = Deno.dlopen("libc.so.6", LIBC);
  const ours = anonymousPipe(libc);
  const theirs = anonymousPipe(libc);
  try {
    const pipes = new ChannelPipes(() => [ours.path]);
    pipes.streaming()();
    assert.deepEqual(pipeSizes([ours.path]), [MiB]);
    pipes.close();
    // The process ended and another took its pid: the path names its pipe,
    // which it widened itself.
    libc.symbols.dup2(theirs.fds[0], ours.fds[0]);
    pipes.streaming()();
    assert.deepEqual(pipeSizes([ours.path]), [64 * KiB], "closed: not widened");
    const owner = new ChannelPipes(() => [`/proc/self/fd/${theirs.fds[0]}`]);
    owner.streaming();
    await new Promise((resolve) => setTimeout(resolve, 1300));
    assert.deepEqual(pipeSizes([ours.path]), [MiB], "not narrowed");
    owner.close();
    await using f = await fifos(16);
    const ends = Array.from(
      { length: 8 },
      (_, i) =>
        new ChannelPipes(() => f.paths.slice(2 * i, 2 * i + 2)).streaming(),
    );
    assert.deepEqual(pipeSizes(f.paths), Array(16).fill(MiB), "budget back");
    ends.forEach((e) => e());
    assert.deepEqual(await narrowed(f.paths), Array(16).fill(64 * KiB));
  } finally {
    [...ours.fds, ...theirs.fds].forEach((fd) => libc.symbols.close(fd));
    libc.close();
  }
});

Deno.test("a widened link that names another pipe when it narrows (its pid was taken) is left alone", async () => {
  const libc = Deno.dlopen("libc.so.6", LIBC);
  const ours = anonymousPipe(libc);
  const theirs = anonymousPipe(libc);
  try {
    const end = new ChannelPipes(() => [ours.path]).streaming();
    assert.deepEqual(pipeSizes([ours.path]), [MiB]);
    libc.symbols.dup2(theirs.fds[0], ours.fds[0]);
    const other = `/proc/self/fd/${theirs.fds[0]}`;
    const owner = new ChannelPipes(() => [other]);
    owner.streaming(); // widened by its owner
    end();
    await new Promise((resolve) => setTimeout(resolve, 1300));
    assert.deepEqual(pipeSizes([ours.path]), [MiB]);
    owner.close();
  } finally {
    [...ours.fds, ...theirs.fds].forEach((fd) => libc.symbols.close(fd));
    libc.close();
  }
});

Deno.test("a transfer that begins after one pipe refused to narrow widens the others again", async () => {
  await using f = await fifos(2);
  const files = f.paths.map((path) =>
    Deno.openSync(path, { read: true, write: true })
  );
  try {
    const pipes = new ChannelPipes(() => f.paths);
    pipes.streaming()();
    files[0].writeSync(new Uint8Array(100 * KiB)); // its reader lags
    await new Promise((resolve) => setTimeout(resolve, 1300));
    assert.deepEqual(pipeSizes(f.paths), [MiB, 64 * KiB]);
    files[0].readSync(new Uint8Array(100 * KiB));
    const end = pipes.streaming();
    assert.deepEqual(pipeSizes(f.paths), [MiB, MiB]);
    end();
    assert.deepEqual(await narrowed(f.paths), [64 * KiB, 64 * KiB]);
  } finally {
    files.forEach((file) => file.close());
  }
});
