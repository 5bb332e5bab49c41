import type { CachePolicy } from "../config/derive.ts";
import { type Coalescer, createCoalescer } from "./coalesce.ts";
import type { CacheEntry, CacheHit, ParamsFilter } from "./entry.ts";
import { type CacheStatus, entityTag, storeDecision } from "./http-semantics.ts";
import type { CacheKey } from "./key.ts";
import type { MemoryTier } from "./memory.ts";
import { createPurgeWatcher, type PurgeRecord } from "./purge-record.ts";
import type { TableTier } from "./table.ts";

/**
 * The response cache: the two tiers, coalescing and the HTTP rules put together for one request
 * (docs/caching.md). The chain step (not written yet) calls `serve` with the request's key and a
 * function that calls the upstream; it gets back the answer and how it was served. Made once per
 * container; nothing per request is kept here beyond the calls in flight.
 */

/** An answer as the cache stores and serves it: body bytes in the coding its headers name. */
export interface CacheableAnswer {
  status: number;
  headers: Readonly<Record<string, string>>;
  body: Buffer;
  cookies?: readonly string[] | undefined;
  /** Set by the gateway for an answer it knows is degraded (an aggregate's partial merge): never stored. */
  degraded?: boolean;
}

/** What happened, for metrics (`CacheHit`, `CacheMiss`, `CacheStale`, `CacheTooLarge`, …) and logs. */
export type CacheEvent =
  | { type: "hit"; tier: "memory" | "table" }
  | { type: "miss" | "stale" }
  | { type: "too-large"; tier: "memory" | "table" }
  | { type: "table-error"; error: unknown };

export interface ServeRequest {
  key: Extract<CacheKey, { cacheable: true }>;
  policy: CachePolicy;
  /** The headers the key holds (the answer may `Vary` on these). */
  keyedHeaders: readonly string[];
  /** The method of the request (a HEAD is served from the GET entry, but its miss is not stored). */
  method: string;
  /** Calls the upstream. A throw is an upstream failure (timeout, unreachable, open circuit). */
  fetch: () => Promise<CacheableAnswer>;
  /** Skip the stored entry and ask again (a client's `max-age=0` with the `cache:invalidate` scope). */
  revalidate?: boolean;
  /** This request's own listener, besides the container's (a coalesced waiter hears only its own lookup). */
  onEvent?: (event: CacheEvent) => void;
}

export interface Served {
  answer: CacheableAnswer;
  status: Exclude<CacheStatus, "bypass">;
  /** Seconds since the served entry was stored (0 for a fresh answer). */
  ageSeconds: number;
  /** The entity tag of the entry served or just stored (for `If-None-Match`); none for an answer not stored. */
  etag?: string;
  /** A stale-while-revalidate refresh still running: the chain awaits it before the invocation ends. */
  refresh?: Promise<void>;
}

export interface ResponseCacheOptions {
  memory: MemoryTier;
  /** The shared tier; without it only the container tier is used. */
  table?: TableTier | undefined;
  /**
   * Purges across containers (shared/cache/purge-record.ts): this cache records its own purges
   * there, and reads it at most every `checkMs` to drop its copies of routes purged elsewhere.
   */
  purges?: { record: PurgeRecord; checkMs: number } | undefined;
  now?: () => number;
  onEvent?: (event: CacheEvent) => void;
}

/** Example: `createResponseCache({ memory: createMemoryTier(config.cache.memory), table })`. */
export function createResponseCache({
  memory,
  table,
  purges,
  now = Date.now,
  onEvent = () => {},
}: ResponseCacheOptions) {
  const coalescer: Coalescer = createCoalescer();
  const watcher =
    purges &&
    createPurgeWatcher({
      record: purges.record,
      intervalMs: purges.checkMs,
      now,
      drop: (routeKey, at) => memory.dropStoredBefore(routeKey, at),
      onError: (error) => onEvent({ type: "table-error", error }),
    });
  /** An event to the container's listener and to the request's own (its per-route counts). */
  const emit = (request: ServeRequest, event: CacheEvent) => {
    onEvent(event);
    request.onEvent?.(event);
  };

  /** The entry in the container tier, else in the table (filling the container tier); table failures miss. */
  async function lookup(
    request: ServeRequest,
  ): Promise<(CacheHit & { tier: "memory" | "table" }) | undefined> {
    const id = request.key.id;
    // Purges made in other containers, at most once per interval (one read, shared by callers).
    await watcher?.sync();
    const local = memory.get(id);
    if (local) return { ...local, tier: "memory" };
    if (!table) return undefined;
    // A call for this key may have finished while the table was read (the read began before its
    // write): its answer is in this container's tier by now, and asking again would be a second call.
    const landed = () => {
      const late = memory.get(id);
      return late ? { ...late, tier: "memory" as const } : undefined;
    };
    try {
      const shared = await table.get(id);
      if (!shared) return landed();
      memory.set(id, shared.entry);
      return { ...shared, tier: "table" };
    } catch (error) {
      emit(request, { type: "table-error", error });
      return landed();
    }
  }

  /** Calls the upstream (coalesced) and stores what may be stored, in both tiers; a stored answer comes with its tag. */
  function fetchAndStore(request: ServeRequest): Promise<{ answer: CacheableAnswer; etag?: string }> {
    const { key, policy } = request;
    return coalescer
      .run<{ answer: CacheableAnswer; etag?: string }>(key.id, async () => {
        const answer = await request.fetch();
        const decision = answer.degraded
          ? ({ store: false } as const)
          : storeDecision({ ...answer, method: request.method }, policy, request.keyedHeaders);
        if (!decision.store) return { value: { answer }, shareable: false };
        const entry: CacheEntry = {
          routeKey: key.routeKey,
          params: key.params,
          status: answer.status,
          headers: answer.headers,
          body: answer.body,
          etag: entityTag(answer.headers, answer.body),
          storedAt: now(),
          ttlMs: decision.ttlMs,
          staleWhileRevalidateMs: policy.staleWhileRevalidateSeconds * 1_000,
          staleIfErrorMs: policy.staleIfErrorSeconds * 1_000,
        };
        const inMemory = memory.set(key.id, entry);
        if (!inMemory.stored && inMemory.reason === "too-large")
          emit(request, { type: "too-large", tier: "memory" });
        if (table) {
          try {
            const shared = await table.set(key.id, entry);
            if (!shared.stored) emit(request, { type: "too-large", tier: "table" });
          } catch (error) {
            emit(request, { type: "table-error", error });
          }
        }
        return { value: { answer, etag: entry.etag }, shareable: true };
      })
      .then(({ value }) => value);
  }

  const fromEntry = (hit: CacheHit, status: "hit" | "stale"): Served => ({
    answer: { status: hit.entry.status, headers: hit.entry.headers, body: hit.entry.body },
    status,
    ageSeconds: hit.ageSeconds,
    etag: hit.entry.etag,
  });

  return {
    /**
     * Drops the entries of `routeKey` whose parameters include all of `params` (canonical, as in the
     * key) and pass `where` (when given), from this container's tier and the shared table, and
     * records the purge so that other containers drop their copies of the route when they next read
     * the record (within `purges.checkMs`). A table that fails is reported (`table-error`) and
     * thrown: the caller decides.
     */
    async purge(
      routeKey: string,
      params: Readonly<Record<string, string>> = {},
      where?: ParamsFilter,
    ): Promise<number> {
      const dropped = memory.purge(routeKey, params, where);
      if (!table) return dropped;
      try {
        const deleted = await table.purge(routeKey, params, where);
        // After the deletes: a copy another container stored before now is dropped when it next reads.
        await purges?.record.record([routeKey], now());
        return dropped + deleted;
      } catch (error) {
        onEvent({ type: "table-error", error });
        throw error;
      }
    },

    /**
     * Answers one cacheable request: a fresh entry as `hit`; an entry inside its
     * stale-while-revalidate window as `stale`, with one refresh started; otherwise the upstream's
     * answer as `miss`, unless the upstream fails (throws, or answers 5XX) while an entry is inside
     * its stale-if-error window, which is then served as `stale`.
     */
    async serve(request: ServeRequest): Promise<Served> {
      // Read even when revalidating: the entry is still the fallback if the upstream fails.
      const hit = await lookup(request);
      if (hit && !request.revalidate) {
        if (hit.freshness === "fresh") {
          emit(request, { type: "hit", tier: hit.tier });
          return fromEntry(hit, "hit");
        }
        if (hit.freshness === "stale-while-revalidate") {
          emit(request, { type: "stale" });
          // A refresh that fails leaves the stale entry in place; the caller already has its answer.
          const refresh = fetchAndStore(request).then(
            () => undefined,
            () => undefined,
          );
          return { ...fromEntry(hit, "stale"), refresh };
        }
      }
      try {
        const { answer, etag } = await fetchAndStore(request);
        if (answer.status >= 500 && hit) {
          emit(request, { type: "stale" });
          return fromEntry(hit, "stale");
        }
        emit(request, { type: "miss" });
        return { answer, status: "miss", ageSeconds: 0, ...(etag ? { etag } : {}) };
      } catch (error) {
        if (!hit) throw error;
        emit(request, { type: "stale" });
        return fromEntry(hit, "stale");
      }
    },
  };
}

export type ResponseCache = ReturnType<typeof createResponseCache>;
