/**
 * The abort signal of the call a remote function is running in.
 *
 * @module
 */

const KEY = Symbol.for("chopsticks.callSignal");
const never = new AbortController().signal;

/**
 * The signal of the call being served, inside a function running on an
 * agent: it aborts when the controller cancels the call (its `AbortSignal`
 * fired or its `timeout` passed) or the tunnel closes (then as the agent
 * ends: its listeners run, what they start may be cut short). Pass it on to long
 * work (`fetch`, timers); `Deno.Command`s started during the call get it
 * automatically unless they are given a signal of their own, so they are
 * killed on cancel. Outside an agent it is a signal that never aborts.
 *
 * @example Stop long work when the caller gives up
 * ```ts
 * import { callSignal } from "@chopsticks/chopsticks";
 *
 * export async function poll(url: string): Promise<number> {
 *   const signal = callSignal();
 *   let tries = 0;
 *   while (!signal.aborted && tries < 3) {
 *     await fetch(url, { signal }).catch(() => {});
 *     tries++;
 *   }
 *   return tries;
 * }
 * ```
 */
export function callSignal(): AbortSignal {
  const current =
    (globalThis as Record<symbol, (() => AbortSignal) | undefined>)[
      KEY
    ];
  return current?.() ?? never;
}
