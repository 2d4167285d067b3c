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
  if (hooked) return;
  hooked = true;
  addEventListener("unload", removeAll);
  // Not prevented (by a handler of the program's own, registered before):
  // the program ends.
  const ending = (event: Event) => {
    if (!event.defaultPrevented) removeAll();
  };
  addEventListener("error", ending);
  addEventListener("unhandledrejection", ending);
}

/** `path` was renamed into place or removed. */
export function written(path: string): void {
  files.delete(path);
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
