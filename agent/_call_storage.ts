/**
 * The async context that carries the running call's AbortSignal on an
 * agent: what `callSignal()` reads, through awaits, timers and callbacks.
 *
 * Deno's `AsyncLocalStorage` (node:async_hooks) is built on an async
 * variable of Deno's core. Loading any `node:` module first sets up Deno's
 * Node compatibility layer, about 5 ms of every agent's start, so the
 * agent uses that variable directly when this Deno has it, and
 * `AsyncLocalStorage` (loaded on first use) when it does not.
 *
 * @module
 */

/** A value that follows async work started inside `run`. */
export interface CallStorage {
  /** Which mechanism carries it. */
  readonly kind: "core" | "node";
  /** Runs `fn` with `signal` as the current value. */
  run<R>(signal: AbortSignal, fn: () => R): R | Promise<R>;
  /** The current value, or undefined outside `run`. */
  get(): AbortSignal | undefined;
}

interface DenoCore {
  AsyncVariable: new () => {
    enter(value: unknown): unknown;
    get(): unknown;
  };
  setAsyncContext(previous: unknown): void;
}

/** The best storage this Deno offers. */
export function callStorage(): CallStorage {
  const internal = (Deno as unknown as Record<symbol, unknown>)[
    (Deno as unknown as { internal: symbol }).internal
  ] as { core?: Partial<DenoCore> } | undefined;
  const core = internal?.core;
  if (
    typeof core?.AsyncVariable === "function" &&
    typeof core.setAsyncContext === "function"
  ) {
    return coreStorage(core as DenoCore);
  }
  return nodeStorage();
}

/** Storage on Deno core's async variable (what AsyncLocalStorage uses). */
export function coreStorage(core: DenoCore): CallStorage {
  const variable = new core.AsyncVariable();
  return {
    kind: "core",
    run(signal, fn) {
      const previous = variable.enter(signal);
      try {
        return fn();
      } finally {
        core.setAsyncContext(previous);
      }
    },
    get: () => variable.get() as AbortSignal | undefined,
  };
}

/** Storage on node:async_hooks' AsyncLocalStorage, loaded on first use. */
export function nodeStorage(): CallStorage {
  type Als = {
    run<R>(s: AbortSignal, f: () => R): R;
    getStore(): AbortSignal | undefined;
  };
  let als: Als | undefined;
  const ready = import("node:async_hooks").then(({ AsyncLocalStorage }) => {
    als = new AsyncLocalStorage<AbortSignal>();
  });
  return {
    kind: "node",
    run(signal, fn) {
      if (als) return als.run(signal, fn);
      return ready.then(() => als!.run(signal, fn));
    },
    get: () => als?.getStore(),
  };
}
