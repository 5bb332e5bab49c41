import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";

/**
 * How a purge reaches other containers (docs/caching.md, "Purging"). A purge deletes the shared
 * table's items at once, but every other container still holds its own copies in memory. So a purge
 * also records, per route, when it happened, in one item of the cache table; each container reads
 * that item at most once per `cache.memory.purgeCheckSeconds` (on a lookup, so an idle container reads
 * nothing) and drops its copies of a purged route stored before that moment. A container therefore
 * lags a purge made elsewhere by at most that interval, for one read per container per interval.
 *
 * The record keeps one time per route, not per key: a container drops all its copies of a route
 * that had any purge, and refills them from the table (one read each), which stays correct and
 * keeps the item small (one attribute per cached route).
 */

/** The record's key: never a cache key (those start with the key version, `k1:`). */
export const PURGE_RECORD_KEY = "purges";
const ATTRIBUTE_PREFIX = "purged:";

export interface PurgeRecord {
  /** Records that `routeKeys` were purged at `at` (epoch ms): one write. */
  record(routeKeys: readonly string[], at: number): Promise<void>;
  /** When each route was last purged (epoch ms): one read. */
  read(): Promise<ReadonlyMap<string, number>>;
}

/** Example: `createPurgeRecord({ client, tableName: "gatehouse-dev-cache" })`. */
export function createPurgeRecord({
  client,
  tableName,
}: {
  client: DynamoDBDocumentClient;
  tableName: string;
}): PurgeRecord {
  async function record(routeKeys: readonly string[], at: number): Promise<void> {
    const routes = [...new Set(routeKeys)];
    if (routes.length === 0) return;
    try {
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { pk: PURGE_RECORD_KEY },
          UpdateExpression: `SET ${routes.map((_, index) => `#r${index} = :at`).join(", ")}`,
          // A later purge is never overwritten by an earlier one whose write arrives last.
          ConditionExpression: routes
            .map((_, index) => `(attribute_not_exists(#r${index}) OR #r${index} < :at)`)
            .join(" AND "),
          ExpressionAttributeNames: Object.fromEntries(
            routes.map((route, index) => [`#r${index}`, `${ATTRIBUTE_PREFIX}${route}`]),
          ),
          ExpressionAttributeValues: { ":at": at },
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name !== "ConditionalCheckFailedException") throw error;
      // A newer purge of one of these routes is already recorded: record the others one by one.
      if (routes.length > 1) await Promise.all(routes.map((route) => record([route], at)));
    }
  }

  return {
    record,

    async read() {
      const { Item } = await client.send(
        new GetCommand({ TableName: tableName, Key: { pk: PURGE_RECORD_KEY } }),
      );
      const purges = new Map<string, number>();
      for (const [name, value] of Object.entries(Item ?? {})) {
        if (name.startsWith(ATTRIBUTE_PREFIX) && typeof value === "number")
          purges.set(name.slice(ATTRIBUTE_PREFIX.length), value);
      }
      return purges;
    },
  };
}

/**
 * Keeps a container's tier in step with purges made elsewhere: `sync()` reads the record when the
 * last read is older than `intervalMs` (one read in flight at a time; callers in between wait for
 * it) and calls `drop(route, at)` for each route purged since the last read. A failed read is
 * reported and retried after the interval; the tier keeps serving meanwhile.
 */
export function createPurgeWatcher({
  record,
  intervalMs,
  drop,
  now = Date.now,
  onError = () => {},
}: {
  record: Pick<PurgeRecord, "read">;
  intervalMs: number;
  drop: (routeKey: string, purgedAt: number) => void;
  now?: () => number;
  onError?: (error: unknown) => void;
}) {
  let checkedAt = Number.NEGATIVE_INFINITY;
  const seen = new Map<string, number>();
  let reading: Promise<void> | undefined;
  return {
    sync(): Promise<void> | undefined {
      if (reading) return reading;
      if (now() - checkedAt < intervalMs) return undefined;
      reading = record
        .read()
        .then(
          (purges) => {
            for (const [route, at] of purges) {
              if (at <= (seen.get(route) ?? Number.NEGATIVE_INFINITY)) continue;
              seen.set(route, at);
              drop(route, at);
            }
          },
          (error: unknown) => onError(error),
        )
        .finally(() => {
          checkedAt = now();
          reading = undefined;
        });
      return reading;
    },
  };
}
