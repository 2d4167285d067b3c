/**
 * File URL and path helpers (POSIX paths; the controller and agents run on
 * Linux and other Unix systems).
 *
 * @module
 */

/** Converts a `file:` URL to an absolute path. */
export function fromFileUrl(url: string | URL): string {
  const u = new URL(url);
  if (u.protocol !== "file:") {
    throw new TypeError(`Cannot convert "${u.href}" to a path: not a file URL`);
  }
  return decodeURIComponent(u.pathname);
}

/** Converts an absolute path to a URL path, encoding each segment. */
export function toUrlPath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** Converts an absolute path to a `file:` URL. */
export function toFileUrl(path: string): string {
  return "file://" + toUrlPath(path);
}

/** The directory part of `path`. */
export function dirname(path: string): string {
  const cut = path.replace(/\/+$/, "").lastIndexOf("/");
  return cut <= 0 ? "/" : path.slice(0, cut);
}

/** True when `path` is `root` or inside it (both absolute, lexically). */
export function isUnder(path: string, root: string): boolean {
  return path === root ||
    path.startsWith(root.endsWith("/") ? root : root + "/");
}
