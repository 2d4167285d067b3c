/**
 * Trees of many small files, for the tests of a putTree or fetchTree that
 * stops midway: making one, and what a destination holds afterwards.
 *
 * @module
 */
import assert from "node:assert/strict";

/**
 * Makes `count` files of random bytes under `dir`, spread over ten
 * directories, of sizes from 1 byte to `most`.
 */
export async function smallTree(
  dir: string,
  count: number,
  most = 3000,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const sub = `${dir}/d${i % 10}`;
    if (i < 10) await Deno.mkdir(sub, { recursive: true });
    const bytes = new Uint8Array(1 + (i * 977) % most);
    for (let at = 0; at < bytes.length; at += 65536) {
      crypto.getRandomValues(bytes.subarray(at, at + 65536));
    }
    await Deno.writeFile(`${sub}/f${i}`, bytes);
  }
}

/**
 * What is under `dir`: its files by relative path, sorted, and apart from
 * them the transfers' temporary files. Synchronous, so that it can be
 * taken the moment a transfer settles, before anything else runs.
 */
export function landed(
  dir: string,
): { files: string[]; temporaries: string[] } {
  const files: string[] = [];
  const temporaries: string[] = [];
  const walk = (at: string, prefix: string) => {
    for (const e of Deno.readDirSync(at)) {
      const path = prefix + e.name;
      if (e.isDirectory) walk(`${at}/${e.name}`, `${path}/`);
      else if (e.name.includes(".chopsticks-")) temporaries.push(path);
      else files.push(path);
    }
  };
  walk(dir, "");
  return { files: files.sort(), temporaries: temporaries.sort() };
}

/** Which of `paths` under `dir` do not hold what they hold under `src`. */
export async function differing(
  src: string,
  dir: string,
  paths: string[],
): Promise<string[]> {
  const bad: string[] = [];
  for (const path of paths) {
    const [a, b] = await Promise.all([
      Deno.readFile(`${src}/${path}`),
      Deno.readFile(`${dir}/${path}`),
    ]);
    if (a.length !== b.length || a.some((byte, i) => byte !== b[i])) {
      bad.push(path);
    }
  }
  return bad;
}

/**
 * Waits for `copying` (a putTree or fetchTree into `dest`, `name` in
 * messages) to reject, and checks what a tree transfer that stops midway
 * promises: a fetchTree leaves no temporary file as it rejects, those of
 * the agent go soon after, nothing lands later, and every file there is
 * whole (the same as under `src`). Returns the rejection and the files
 * that had landed.
 */
export async function stoppedMidway(
  name: "putTree" | "fetchTree",
  copying: Promise<unknown>,
  src: string,
  dest: string,
): Promise<{ error: unknown; files: string[] }> {
  // What is there the moment it rejects.
  const [error, then] = await copying.then(
    () => assert.fail(`${name} was not stopped`),
    (e) => [e, landed(dest)] as const,
  );
  if (name === "fetchTree") {
    // Each fetch removes its temporary file before it rejects.
    assert.deepEqual(then.temporaries, [], `${name}: left`);
  }
  // The agent removes its own as the aborts reach it.
  const end = Date.now() + 3000;
  while (landed(dest).temporaries.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 500));
  const later = landed(dest);
  assert.deepEqual(later.temporaries, [], `${name}: temporary files`);
  assert.deepEqual(later.files, then.files, `${name}: landed later`);
  assert.deepEqual(await differing(src, dest, later.files), [], name);
  return { error, files: then.files };
}
