/**
 * The memory a controller gives module answers, across all its agents.
 *
 * Each agent is already held back on its own (a few requests answered at a
 * time, none while its channel has much to write: see
 * `tunnel/_module_requests.ts`), but an agent that asks for eight big
 * upstream answers and reads nothing still had the controller hold them,
 * up to 576 MiB, and each agent more. An answer's bytes now count from
 * the first one read from a registry until its agent's channel wrote it;
 * one that would take the total past the budget gets a 503 instead, at
 * once (waiting for room could wait on agents that never read). One body
 * shared by many agents (a fleet importing the same package) counts once.
 *
 * @module
 */

/** Bytes of module answers the controller holds at most. */
export const ANSWER_BUDGET = 512 * 1024 * 1024;

let held = 0;
const shares = new WeakMap<Uint8Array, number>();

/** Bytes held now (for tests). */
export function answerBytesHeld(): number {
  return held;
}

/**
 * Takes `bytes` of the budget for an answer being read; false (and
 * nothing taken) when they do not fit.
 */
export function reserve(bytes: number): boolean {
  if (held + bytes > ANSWER_BUDGET) return false;
  held += bytes;
  return true;
}

/** Gives back what {@linkcode reserve} took. */
export function unreserve(bytes: number): void {
  held -= bytes;
}

/**
 * Counts `body` as held until {@linkcode release}d as often as it was
 * held; false when it does not fit (a body held already always does).
 */
export function hold(body: Uint8Array): boolean {
  const shared = shares.get(body) ?? 0;
  if (shared === 0 && !reserve(body.length)) return false;
  shares.set(body, shared + 1);
  return true;
}

/** Ends one {@linkcode hold} of `body`. */
export function release(body: Uint8Array): void {
  const shared = shares.get(body) ?? 0;
  if (shared <= 1) {
    shares.delete(body);
    if (shared === 1) unreserve(body.length);
  } else shares.set(body, shared - 1);
}

/** The answer to a request that does not fit in the budget. */
export function overBudget(what: string): string {
  return `Service unavailable: the controller already holds ${
    ANSWER_BUDGET / 1024 / 1024
  } MiB of module answers for its agents, so ${what} is not fetched now; try again once they are taken`;
}
