import type { PurgeRecord } from "./purge-record.ts";
import { type Selection, tierPurges } from "./purge-selector.ts";
import type { TableTier } from "./table.ts";

/**
 * Runs a selection against the shared tier (docs/caching.md, "Purging"): what `DELETE /admin/cache`
 * and `npm run cache -- purge` share. The table's items are deleted, and the purge is recorded
 * (shared/cache/purge-record.ts) so that every gateway container drops its in-memory copies of the
 * purged routes when it next reads the record, at most `cache.memory.purgeCheckSeconds` later.
 */

/** What a purge did, as the endpoint answers it and the CLI prints it. */
export interface PurgeReport {
  /** Table items deleted, per route key (0 for a selected route with nothing stored). */
  deleted: Record<string, number>;
  total: number;
  /** The prefix `/`: every cached route was purged whole. */
  everything: boolean;
  /** The most seconds a gateway container may still serve a purged entry from its memory. */
  memoryLagSeconds: number;
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
 * `memoryStatement(5)` → "Deleted from the shared cache table. Every gateway container drops …within 5 s…"
 */
function memoryStatement(lagSeconds: number): string {
  return `Deleted from the shared cache table. Every gateway container drops its in-memory copies of these routes the next time it reads the purge record, within ${lagSeconds} s (cache.memory.purgeCheckSeconds); until then a container may still answer from one.`;
}

/**
 * Deletes from the table what a selection names, route by route (one query of index `byRoute` and
 * deletes 25 at a time, each); throws `CachePurgeError` when a table call fails.
 *
 * Example: `await purgeTable(table, compilePurgeSelector(gateway)({ tag: "product:42" }))`.
 */
export async function purgeTable(
  table: Pick<TableTier, "purge">,
  record: Pick<PurgeRecord, "record">,
  selection: Extract<Selection, { ok: true }>,
  { lagSeconds, now = Date.now }: { lagSeconds: number; now?: () => number },
): Promise<PurgeReport> {
  const deleted: Record<string, number> = {};
  for (const { routeKey, params, where } of tierPurges(selection.purges)) {
    try {
      deleted[routeKey] = await table.purge(routeKey, params, where);
    } catch (cause) {
      throw new CachePurgeError(routeKey, { ...deleted }, { cause });
    }
  }
  const routes = Object.keys(deleted);
  try {
    // After the deletes: a copy a container stored before now is dropped when it next reads.
    await record.record(routes, now());
  } catch (cause) {
    throw new CachePurgeError("the purge record", { ...deleted }, { cause });
  }
  return {
    deleted,
    total: Object.values(deleted).reduce((sum, count) => sum + count, 0),
    everything: selection.everything,
    memoryLagSeconds: selection.purges.length === 0 ? 0 : lagSeconds,
    memory:
      selection.purges.length === 0
        ? "No route of this gateway is cached: there was nothing to purge, in the table or in any container's memory."
        : memoryStatement(lagSeconds),
  };
}
