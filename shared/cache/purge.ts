import { type Selection, tierPurges } from "./purge-selector.ts";
import type { TableTier } from "./table.ts";

/**
 * Runs a selection against the shared tier (docs/caching.md, "Purging"): what `DELETE /admin/cache`
 * and `npm run cache -- purge` share. Only the table is purged: the admin function and the CLI hold
 * no gateway container's memory, and there is no way to reach one.
 */

/** What a purge did, as the endpoint answers it and the CLI prints it. */
export interface PurgeReport {
  /** Table items deleted, per route key (0 for a selected route with nothing stored). */
  deleted: Record<string, number>;
  total: number;
  /** The prefix `/`: every cached route was purged whole. */
  everything: boolean;
  /** The longest TTL among the routes purged: how long another container's memory may still serve an entry. */
  memoryTtlSeconds: number;
  /** The plain statement of what was not purged. */
  memory: string;
}

/** A table call failed part way; `deleted` says what was deleted before it (for the log). */
export class CachePurgeError extends Error {
  override readonly name = "CachePurgeError";
  constructor(
    readonly routeKey: string,
    readonly deleted: Readonly<Record<string, number>>,
    options: { cause: unknown },
  ) {
    super(
      `purging ${routeKey} failed after deleting ${JSON.stringify(deleted)}: ${String((options.cause as Error)?.message ?? options.cause)}`,
      options,
    );
  }
}

/**
 * What a purge leaves in the gateway containers' memory, said plainly. Example:
 * `memoryStatement(60, 0)` → "Purged from the shared cache table only. …: up to 60 s for these routes."
 */
export function memoryStatement(ttlSeconds: number, staleSeconds: number): string {
  const stale =
    staleSeconds > 0
      ? ` Past its TTL, for up to ${staleSeconds} s more (the routes' stale windows), a container may still answer from it while it refreshes it or while the upstream fails.`
      : "";
  return `Purged from the shared cache table only. A gateway container that already holds one of these entries in its memory keeps serving it until its TTL runs out: up to ${ttlSeconds} s for these routes.${stale} Keep TTLs short where a purge must take effect at once.`;
}

/**
 * Deletes from the table what a selection names, route by route (one query of index `byRoute` and
 * deletes 25 at a time, each); throws `CachePurgeError` when a table call fails.
 *
 * Example: `await purgeTable(table, compilePurgeSelector(gateway)({ tag: "product:42" }))`.
 */
export async function purgeTable(
  table: Pick<TableTier, "purge">,
  selection: Extract<Selection, { ok: true }>,
): Promise<PurgeReport> {
  const deleted: Record<string, number> = {};
  for (const { routeKey, params, where } of tierPurges(selection.purges)) {
    try {
      deleted[routeKey] = await table.purge(routeKey, params, where);
    } catch (cause) {
      throw new CachePurgeError(routeKey, { ...deleted }, { cause });
    }
  }
  return {
    deleted,
    total: Object.values(deleted).reduce((sum, count) => sum + count, 0),
    everything: selection.everything,
    memoryTtlSeconds: selection.maxTtlSeconds,
    memory:
      selection.purges.length === 0
        ? "No route of this gateway is cached: there was nothing to purge, in the table or in any container's memory."
        : memoryStatement(selection.maxTtlSeconds, selection.maxStaleSeconds),
  };
}
