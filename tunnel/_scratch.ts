/**
 * Temporary files this program is writing (a fetch's, beside its
 * destination), removed if it exits before they are done: through
 * `Deno.exit` (as SIGINT and SIGTERM do, see `_liveness.ts`), or of an
 * uncaught error. (A program killed with SIGKILL leaves them.)
 *
 * @module
 */

const files = new Set<string>();
let hooked = false;

/** `path` is being written; it goes if the program exits meanwhile. */
export function writing(path: string): void {
  files.add(path);
  // An uncaught error ends the program unless a listener prevents it: this
  // one goes after every listener the program has so far (added again at
  // each file), so that one that lets the program go on keeps the files
  // (a listener added while a fetch is under way comes after it).
  for (const type of ["error", "unhandledrejection"]) {
    removeEventListener(type, ending);
    addEventListener(type, ending);
  }
  if (!hooked) {
    hooked = true;
    addEventListener("unload", removeAll);
  }
}

/** `path` was renamed into place or removed. */
export function written(path: string): void {
  files.delete(path);
}

function ending(event: Event): void {
  if (!event.defaultPrevented) removeAll();
}

function removeAll(): void {
  for (const path of files) {
    try {
      Deno.removeSync(path);
    } catch {
      // Gone already.
    }
  }
  files.clear();
}
