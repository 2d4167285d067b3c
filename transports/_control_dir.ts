/**
 * A private directory for ssh's ControlMaster sockets, made once per
 * process: `$XDG_RUNTIME_DIR/chopsticks-ssh-<uid>` (or under `$TMPDIR` or
 * `/tmp`), mode 0700, refused if another user owns it or others can use it.
 * A socket's path is at most 104 bytes (macOS) or 108 (Linux), and ssh
 * adds a random suffix while it makes one, to a name of 53 characters
 * here: a base longer than 32 (macOS's `TMPDIR` is about 49) gives way to
 * `/tmp`.
 *
 * @module
 */

let made: string | undefined;

/** The directory's path; makes and checks it on first use. */
export function controlDir(): string {
  if (made !== undefined) return made;
  const uid = Deno.uid() ?? 0;
  const given = Deno.env.get("XDG_RUNTIME_DIR") || Deno.env.get("TMPDIR") ||
    "/tmp";
  const base = given.replace(/\/+$/, "");
  const dir = `${base.length <= 32 ? base : "/tmp"}/chopsticks-ssh-${uid}`;
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
  }
  const info = Deno.lstatSync(dir);
  if (
    !info.isDirectory || info.uid !== uid || ((info.mode ?? 0) & 0o077) !== 0
  ) {
    throw new Error(
      `Cannot keep ssh control sockets in "${dir}": it must be a directory owned by this user with mode 0700`,
    );
  }
  return made = dir;
}
