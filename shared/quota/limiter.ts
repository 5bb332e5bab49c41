import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { NativeAttributeValue } from "@aws-sdk/util-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { LRUCache } from "lru-cache";
import { isConditionFailure } from "../clients/dynamodb.ts";
import { type QuotaPeriod, quotaWindow, rateWindow, secondsFrom } from "./windows.ts";

/**
 * Exact rate limits and quotas in DynamoDB, with no read before the write and no transaction (so it
 * runs on dynalite as on DynamoDB).
 *
 * A subject's counters for one quota window are one item: `used` (quota units), and `rw`/`rc` (the
 * current rate window's index and units). One conditional `UpdateItem` admits a request: its
 * condition holds only if the quota and the rate window both have room for the request's cost, and
 * DynamoDB applies it atomically, so with R units left and N > R requests at once exactly R are
 * admitted. A new quota window is a new item (its id is in the key); a new rate window is the
 * other form of the update (`SET rw, rc` instead of `ADD rc`). The form is predicted from the last
 * window this container saw, so an admitted request costs one write, and a rate-window rollover
 * this container did not see coming costs a failed write and a read more.
 *
 * A refused request costs the failed write and one consistent read, which says whether the quota or
 * the rate refused it. Items carry `expiresAt` (DynamoDB TTL deletes them eventually); a window's
 * id is part of every key and condition, so a stale item is never counted in.
 */

export interface PlanLimits {
  name: string;
  rate?: { perSecond: number; burst: number } | undefined;
  quota?: { limit: number; period: QuotaPeriod } | undefined;
  shards: number;
}

export interface LimitDecision {
  admitted: boolean;
  /** Why it was refused. */
  reason?: "rate" | "quota";
  /** For `RateLimit-*`: the limit closest to running out, its remaining units and seconds to reset. */
  limit: number;
  remaining: number;
  resetSeconds: number;
  /** When a refused request may be retried. */
  retryAfterSeconds?: number;
}

export interface LimiterOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  now?: () => number;
  random?: () => number;
}

interface CounterItem {
  used?: number;
  rw?: number;
  rc?: number;
}

/**
 * The usage table gave no answer because it is unreachable or failing (a network error, a 5XX, a
 * refused connection): the caller's fault policy (`limits.onStoreFailure`) decides.
 */
export class LimiterUnavailableError extends Error {
  override readonly name = "LimiterUnavailableError";
}

/**
 * The check's time budget ran out: the table is slow, not down. Nothing is admitted uncounted on
 * this path (the caller answers 503).
 */
export class LimiterTimeoutError extends Error {
  override readonly name = "LimiterTimeoutError";
}

/**
 * DynamoDB throttled the subject's own counter item (past the per-item throughput, or the table's or
 * account's), or the item stayed contended: the subject is sending faster than any plan allows, so
 * this is a refusal (429), never a store failure.
 */
export class LimiterThrottledError extends Error {
  override readonly name = "LimiterThrottledError";
}

/** The error names DynamoDB uses for throttling (item, partition, table or account). */
const THROTTLING = new Set([
  "ThrottlingException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
]);

/**
 * What a store error means for a limit check: a condition failure is passed on as it is; our own
 * budget running out is slowness; throttling is a refusal; anything else is the store failing.
 */
function classifyStoreError(error: unknown, signal: AbortSignal | undefined): Error {
  if (isConditionFailure(error)) return error as Error;
  const name = (error as Error)?.name;
  const message = (error as Error)?.message ?? String(error);
  if (signal?.aborted)
    return new LimiterTimeoutError(`usage table: no answer within the check's budget`, { cause: error });
  if (THROTTLING.has(name)) return new LimiterThrottledError(`usage table: ${name}`, { cause: error });
  return new LimiterUnavailableError(`usage table: ${message}`, { cause: error });
}

const ATTEMPTS = 4;

export function createLimiter({ client, tableName, now = Date.now, random = Math.random }: LimiterOptions) {
  /** The last rate window seen per counter item: predicts the form of the next update. */
  const lastWindow = new LRUCache<string, number>({ max: 10_000 });
  /**
   * Refusals this container has seen confirmed, per counter item: within a window the counts only
   * grow, so a request costing more than the units left then is refused again without a call (a
   * caller hammering past its limit costs the table nothing). Exact: it never admits.
   */
  const refused = new LRUCache<
    string,
    { reason: "rate" | "quota"; window: number; left: number; limit: number; endMs: number }
  >({
    max: 10_000,
  });
  const stats = { writes: 0, reads: 0, localRefusals: 0 };

  /** Store errors become the limiter's own (see `classifyStoreError`); a failed condition is passed on. */
  const guard = async <T>(call: Promise<T>, signal: AbortSignal | undefined): Promise<T> => {
    try {
      return await call;
    } catch (error) {
      throw classifyStoreError(error, signal);
    }
  };
  const options = (signal?: AbortSignal) => (signal ? { abortSignal: signal } : undefined);

  /** One shard's check. */
  async function checkShard(
    pk: string,
    plan: PlanLimits,
    quota: { limit: number; period: QuotaPeriod } | undefined,
    burst: number | undefined,
    cost: number,
    signal: AbortSignal | undefined,
  ): Promise<LimitDecision> {
    const nowMs = now();
    const qWindow = quota ? quotaWindow(quota.period, nowMs) : undefined;
    const windowMs = plan.rate ? (plan.rate.burst / plan.rate.perSecond) * 1000 : 0;
    const current = plan.rate ? rateWindow(windowMs, nowMs).index : 0;
    const sk = qWindow?.id ?? "rate";
    const key = { pk, sk };
    const hintKey = `${pk}|${sk}`;
    // Quota items live a day past their window; rate-only items a day past their last use.
    const expiresAt = Math.ceil(((qWindow?.endMs ?? nowMs) + 86_400_000) / 1000);
    let rw = current;
    let sameWindow = lastWindow.get(hintKey) === current;
    const known = refused.get(hintKey);
    if (
      known &&
      cost > known.left &&
      nowMs < known.endMs &&
      (known.reason === "quota" || known.window >= current)
    ) {
      stats.localRefusals++;
      const reset = secondsFrom(known.endMs - nowMs);
      return {
        admitted: false,
        reason: known.reason,
        limit: known.limit,
        remaining: known.left,
        resetSeconds: reset,
        retryAfterSeconds: reset,
      };
    }

    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      let returned: Record<string, NativeAttributeValue> | undefined;
      const names: Record<string, string> = { "#e": "expiresAt" };
      const values: Record<string, unknown> = { ":e": expiresAt };
      const conditions: string[] = [];
      const sets = ["#e = :e"];
      const adds: string[] = [];
      if (quota) {
        names["#u"] = "used";
        values[":c"] = cost;
        values[":qmax"] = quota.limit - cost;
        conditions.push("(attribute_not_exists(#u) OR #u <= :qmax)");
        adds.push("#u :c");
      }
      if (burst !== undefined) {
        Object.assign(names, { "#rw": "rw", "#rc": "rc" });
        values[":c"] = cost;
        values[":rw"] = rw;
        if (sameWindow) {
          values[":rmax"] = burst - cost;
          conditions.push("#rw = :rw AND #rc <= :rmax");
          adds.push("#rc :c");
        } else {
          conditions.push("(attribute_not_exists(#rw) OR #rw < :rw)");
          sets.push("#rw = :rw", "#rc = :c");
        }
      }
      try {
        stats.writes++;
        const { Attributes = {} } = await guard(
          client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: key,
              UpdateExpression: `SET ${sets.join(", ")}${adds.length > 0 ? ` ADD ${adds.join(", ")}` : ""}`,
              ...(conditions.length > 0 ? { ConditionExpression: conditions.join(" AND ") } : {}),
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: values,
              ReturnValues: "ALL_NEW",
              // DynamoDB then hands back the item with the refusal, saving the read below (dynalite
              // does not, so the read stays as the fallback).
              ReturnValuesOnConditionCheckFailure: "ALL_OLD",
            }),
            options(signal),
          ),
          signal,
        );
        lastWindow.set(hintKey, rw);
        return admitted(Attributes as CounterItem, quota, qWindow?.endMs, burst, (rw + 1) * windowMs, nowMs);
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        returned = (error as { Item?: Record<string, NativeAttributeValue> }).Item;
      }
      // The condition failed: the item as it was tells why; without it, one consistent read.
      let Item: CounterItem;
      if (returned) {
        Item = unmarshall(returned as Record<string, AttributeValue>) as CounterItem;
      } else {
        stats.reads++;
        const read = (await guard(
          client.send(
            new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true }),
            options(signal),
          ),
          signal,
        )) as { Item?: CounterItem };
        Item = read.Item ?? {};
      }
      if (quota && qWindow && (Item.used ?? 0) + cost > quota.limit) {
        const reset = secondsFrom(qWindow.endMs - nowMs);
        const left = Math.max(0, quota.limit - (Item.used ?? 0));
        refused.set(hintKey, {
          reason: "quota",
          window: current,
          left,
          limit: quota.limit,
          endMs: qWindow.endMs,
        });
        return {
          admitted: false,
          reason: "quota",
          limit: quota.limit,
          remaining: Math.max(0, quota.limit - (Item.used ?? 0)),
          resetSeconds: reset,
          retryAfterSeconds: reset,
        };
      }
      const seen = Item.rw;
      if (burst !== undefined && seen !== undefined && seen >= current && (Item.rc ?? 0) + cost > burst) {
        const reset = secondsFrom((seen + 1) * windowMs - nowMs);
        refused.set(hintKey, {
          reason: "rate",
          window: seen,
          left: Math.max(0, burst - (Item.rc ?? 0)),
          limit: burst,
          endMs: (seen + 1) * windowMs,
        });
        return {
          admitted: false,
          reason: "rate",
          limit: burst,
          remaining: Math.max(0, burst - (Item.rc ?? 0)),
          resetSeconds: reset,
          retryAfterSeconds: reset,
        };
      }
      // The other form of the update was the right one (a rollover, or another container ahead of
      // this one's clock): count in the window the item is in, if that is not behind ours.
      sameWindow = seen !== undefined && seen >= current;
      rw = sameWindow ? (seen as number) : current;
      lastWindow.set(hintKey, rw);
    }
    throw new LimiterThrottledError(`usage counter ${pk} stayed contended for ${ATTEMPTS} attempts`);
  }

  return {
    /** DynamoDB writes and reads made so far (the bench counts them; nothing is assumed). */
    stats,

    /**
     * Adds `units` to `subject`'s quota counter for the window `windowId` with no condition: units
     * admitted while the table was unreachable (degraded mode), counted once it answers again, so
     * the quota still sees them. Sharded plans book them on shard 0.
     */
    async addUsage(subject: string, plan: PlanLimits, windowId: string, units: number, signal?: AbortSignal) {
      if (!plan.quota || units <= 0) return;
      const pk = plan.shards <= 1 ? `limit#${subject}` : `limit#${subject}#s0`;
      const nowMs = now();
      stats.writes++;
      await guard(
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { pk, sk: windowId },
            UpdateExpression: "SET #e = if_not_exists(#e, :e) ADD #u :n",
            ExpressionAttributeNames: { "#e": "expiresAt", "#u": "used" },
            ExpressionAttributeValues: { ":e": Math.ceil((nowMs + 32 * 86_400_000) / 1000), ":n": units },
          }),
          options(signal),
        ),
        signal,
      );
    },

    /**
     * Where `subject` stands in its current quota window (every shard summed). An item past its
     * `expiresAt` that TTL has not deleted yet counts as empty.
     */
    async quotaStatus(subject: string, plan: PlanLimits) {
      if (!plan.quota) return undefined;
      const nowMs = now();
      const window = quotaWindow(plan.quota.period, nowMs);
      const pks =
        plan.shards <= 1
          ? [`limit#${subject}`]
          : Array.from({ length: plan.shards }, (_, i) => `limit#${subject}#s${i}`);
      let used = 0;
      for (const pk of pks) {
        const { Item } = (await guard(
          client.send(
            new GetCommand({ TableName: tableName, Key: { pk, sk: window.id }, ConsistentRead: true }),
          ),
          undefined,
        )) as { Item?: CounterItem & { expiresAt?: number } };
        if (Item && (Item.expiresAt ?? Number.POSITIVE_INFINITY) * 1000 > nowMs) used += Item.used ?? 0;
      }
      return {
        limit: plan.quota.limit,
        period: plan.quota.period,
        used,
        remaining: Math.max(0, plan.quota.limit - used),
        resetsAt: new Date(window.endMs).toISOString(),
      };
    },

    /**
     * Counts `cost` units for `subject` against `plan`; resolves with the decision. Throws
     * `LimiterThrottledError` (a refusal), `LimiterTimeoutError` when `signal` aborts first (slow), or
     * `LimiterUnavailableError` when the table cannot answer (the caller's fault policy decides).
     */
    async check(
      subject: string,
      plan: PlanLimits,
      cost: number,
      signal?: AbortSignal,
    ): Promise<LimitDecision> {
      if (plan.shards <= 1) {
        return checkShard(`limit#${subject}`, plan, plan.quota, plan.rate?.burst, cost, signal);
      }
      // A hot subject's counters are spread over shards, each with its share of the limits. A
      // refused shard gets one other shard's second opinion.
      const first = Math.floor(random() * plan.shards);
      let decision: LimitDecision | undefined;
      for (const shard of [first, (first + 1) % plan.shards]) {
        const quota = plan.quota && { ...plan.quota, limit: share(plan.quota.limit, plan.shards, shard) };
        const burst = plan.rate && share(plan.rate.burst, plan.shards, shard);
        decision = await checkShard(`limit#${subject}#s${shard}`, plan, quota, burst, cost, signal);
        if (decision.admitted) break;
      }
      // The headers speak for the plan, estimated from the shard that answered.
      const answer = decision as LimitDecision;
      return {
        ...answer,
        limit:
          answer.reason === "rate" || (!plan.quota && plan.rate)
            ? (plan.rate?.burst ?? 0)
            : (plan.quota?.limit ?? 0),
        remaining: answer.remaining * plan.shards,
      };
    },
  };
}

export type Limiter = ReturnType<typeof createLimiter>;

/** Shard `index`'s share of `total` units: equal parts, the remainder to the first shards. */
export function share(total: number, shards: number, index: number): number {
  return Math.floor(total / shards) + (index < total % shards ? 1 : 0);
}

function admitted(
  item: CounterItem,
  quota: { limit: number } | undefined,
  quotaEndMs: number | undefined,
  burst: number | undefined,
  rateEndMs: number,
  nowMs: number,
): LimitDecision {
  const quotaLeft = quota ? Math.max(0, quota.limit - (item.used ?? 0)) : Number.POSITIVE_INFINITY;
  const rateLeft = burst !== undefined ? Math.max(0, burst - (item.rc ?? 0)) : Number.POSITIVE_INFINITY;
  // The headers describe the limit closest to running out.
  if (quota && quotaLeft <= rateLeft) {
    return {
      admitted: true,
      limit: quota.limit,
      remaining: quotaLeft,
      resetSeconds: secondsFrom((quotaEndMs ?? nowMs) - nowMs),
    };
  }
  return {
    admitted: true,
    limit: burst ?? 0,
    remaining: rateLeft,
    resetSeconds: secondsFrom(rateEndMs - nowMs),
  };
}
