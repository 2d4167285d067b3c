/**
 * Fleets: run one operation on many hosts at once with {@linkcode Group},
 * read per-host outcomes from {@linkcode GroupResult} (failures are
 * {@linkcode ErrorResult} values), and order work per host with
 * {@linkcode Queue} and {@linkcode AsyncResult}.
 *
 * ```ts
 * import { Local } from "@chopsticks/chopsticks";
 * import { Group } from "@chopsticks/chopsticks/group";
 * await using group = new Group([new Local("a"), new Local("b")], {
 *   concurrency: 10,
 *   timeout: 5_000,
 * });
 * const result = await group.call(Deno.hostname);
 * for (const [host, name] of result.successful()) console.log(host, name);
 * for (const [host, failure] of result.failures()) console.error(host, failure.message);
 * ```
 *
 * @module
 */
export { Group, type HostSet } from "./group.ts";
export type {
  FilterOptions,
  GroupOptions,
  HostEvent,
  RunOptions,
} from "./run_options.ts";
export { GroupResult } from "./group_result.ts";
export { ErrorResult, type ErrorResultJson } from "./error_result.ts";
export { GroupError } from "./group_error.ts";
export { Queue, type QueueOptions } from "./queue.ts";
export { AsyncResult } from "./async_result.ts";
// The tunnel types the API above refers to, as types only (the classes
// themselves come from the package's root).
export type * from "../tunnel/mod.ts";
