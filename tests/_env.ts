/**
 * Environment variables for a test's controller: set while a body runs,
 * then put back as they were (removed where they were not set).
 *
 * @module
 */

/** Sets `vars` while `body` runs; restores them after, however it ends. */
export async function withEnv<T>(
  vars: Record<string, string>,
  body: () => Promise<T>,
): Promise<T> {
  const saved = Object.keys(vars).map((key) => [key, Deno.env.get(key)]);
  for (const [key, value] of Object.entries(vars)) Deno.env.set(key, value);
  try {
    return await body();
  } finally {
    for (const [key, value] of saved) {
      if (value === undefined) Deno.env.delete(key!);
      else Deno.env.set(key!, value);
    }
  }
}
