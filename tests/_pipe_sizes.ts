/**
 * Reads the sizes of pipes, for the tests of their widening.
 *
 * @module
 */
import assert from "node:assert/strict";

/** The sizes of the pipes at `paths`, read with fcntl(F_GETPIPE_SZ). */
export function pipeSizes(paths: string[]): number[] {
  const libc = Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32", "i32"], result: "i32" },
    fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
  try {
    return paths.map((path) => {
      // O_RDONLY | O_NONBLOCK: a FIFO's open for reading does not wait.
      const fd = libc.symbols.open(
        new TextEncoder().encode(path + "\0"),
        0o4000,
        0,
      );
      assert.ok(fd >= 0, `cannot open ${path}`);
      try {
        return libc.symbols.fcntl(fd, 1032, 0);
      } finally {
        libc.symbols.close(fd);
      }
    });
  } finally {
    libc.close();
  }
}

/** The size the kernel gives a pipe made now (less once the user's pipes would pass their budget). */
export function freshPipeSize(): number {
  const libc = Deno.dlopen("libc.so.6", {
    pipe: { parameters: ["buffer"], result: "i32" },
    fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
  });
  const fds = new Int32Array(2);
  try {
    assert.equal(libc.symbols.pipe(fds), 0);
    return libc.symbols.fcntl(fds[0], 1032, 0);
  } finally {
    libc.symbols.close(fds[0]);
    libc.symbols.close(fds[1]);
    libc.close();
  }
}
