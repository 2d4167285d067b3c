/**
 * The async context that carries the running call on an agent (its
 * cancellation, which `callSignal()` reads), through awaits, timers and
 * callbacks.
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
export interface CallStorage<T> {
  /** Which mechanism carries it. */
  readonly kind: "core" | "node";
  /** Runs `fn` with `value` as the current value. */
  run<R>(value: T, fn: () => R): R | Promise<R>;
  /** The current value, or undefined outside `run`. */
  get(): T | undefined;
}

interface DenoCore {
  AsyncVariable: new () => {
    enter(value: unknown): unknown;
    get(): unknown;
  };
  setAsyncContext(previous: unknown): void;
}

/** The best storage this Deno offers. */
export function callStorage<T>(): CallStorage<T> {
  const internal = (Deno as unknown as Record<symbol, unknown>)[
    (Deno as unknown as { internal: symbol }).internal
  ] as { core?: Partial<DenoCore> } | undefined;
  const core = internal?.core;
  if (
    typeof core?.AsyncVariable === "function" &&
    typeof core.setAsyncContext === "function"
  ) {
    return coreStorage<T>(core as DenoCore);
  }
  return nodeStorage<T>();
}

/** Storage on Deno core's async variable (what AsyncLocalStorage uses). */
export function coreStorage<T>(core: DenoCore): CallStorage<T> {
  const variable = new core.AsyncVariable();
  return {
    kind: "core",
    run(value, fn) {
      const previous = variable.enter(value);
      try {
        return fn();
      } finally {
        core.setAsyncContext(previous);
      }
    },
    get: () => variable.get() as T | undefined,
  };
}

/** Storage on node:async_hooks' AsyncLocalStorage, loaded on first use. */
export function nodeStorage<T>(): CallStorage<T> {
  type Als = {
    run<R>(value: T, f: () => R): R;
    getStore(): T | undefined;
  };
  let als: Als | undefined;
  const ready = import("node:async_hooks").then(({ AsyncLocalStorage }) => {
    als = new AsyncLocalStorage<T>();
  });
  return {
    kind: "node",
    run(value, fn) {
      if (als) return als.run(value, fn);
      return ready.then(() => als!.run(value, fn));
    },
    get: () => als?.getStore(),
  };
}
