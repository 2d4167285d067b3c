/**
 * Synchronous file-system helpers of the agent's file and tree code, which
 * the controller's transfers and trees use too: short operations done at
 * once, where an asynchronous one is a hop to a thread and back.
 *
 * @module
 */

/** The stat of `path`, or undefined when there is nothing to stat. */
export function statOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.statSync(path);
  } catch {
    return undefined;
  }
}

/** The lstat of `path`, or undefined when there is nothing to stat. */
export function lstatOrUndefined(path: string): Deno.FileInfo | undefined {
  try {
    return Deno.lstatSync(path);
  } catch {
    return undefined;
  }
}

/** Up to `size` bytes from where `file` is, fewer at its end. */
export function readUpTo(file: Deno.FsFile, size: number): Uint8Array {
  const data = new Uint8Array(size);
  let got = 0;
  for (
    let n;
    got < size && (n = file.readSync(data.subarray(got))) !== null;
  ) {
    got += n;
  }
  return data.subarray(0, got);
}
