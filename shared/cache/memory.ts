import { LRUCache } from "lru-cache";
import { type CacheEntry, type CacheHit, entryBytes, freshnessOf, type ParamsFilter } from "./entry.ts";

/**
 * The container tier (docs/caching.md, "Tiers"): an LRU bounded by bytes, made once per container.
 * A hit here costs no DynamoDB read and no upstream call. Entries leave when the bytes are needed
 * (least recently used first), when a read finds them expired, or on a purge.
 */

export interface MemoryTierOptions {
  /** Bytes the tier holds in all; 0 turns it off (every read misses, nothing is stored). */
  maxBytes: number;
  /** The largest entry kept, in bytes (as `entryBytes` counts them). */
  maxEntryBytes: number;
  /** Epoch milliseconds (tests move it). */
  now?: () => number;
}

/** Why an entry was not stored. */
type NotStored = "too-large" | "tier-off";

export interface MemoryTier {
  /** The entry under `id` if it is of any use now (an expired one is dropped and missed). */
  get(id: string): CacheHit | undefined;
  /** Stores `entry` under `id`, replacing any; says why when it does not. */
  set(id: string, entry: CacheEntry): { stored: true } | { stored: false; reason: NotStored };
  delete(id: string): boolean;
  /**
   * Drops every entry of `routeKey` whose parameters include all of `params` (and pass `where`, when
   * given); returns how many.
   */
  purge(routeKey: string, params?: Readonly<Record<string, string>>, where?: ParamsFilter): number;
  /** Drops every entry of `routeKey` stored before `at` (a purge made in another container); returns how many. */
  dropStoredBefore(routeKey: string, at: number): number;
  /** Entries and bytes held now. */
  readonly size: number;
  readonly bytes: number;
}

/** Example: `createMemoryTier({ maxBytes: 16 * 2 ** 20, maxEntryBytes: 2 ** 20 })`. */
export function createMemoryTier({ maxBytes, maxEntryBytes, now = Date.now }: MemoryTierOptions): MemoryTier {
  if (maxBytes === 0) return offTier;
  const lru = new LRUCache<string, CacheEntry>({
    maxSize: maxBytes,
    maxEntrySize: Math.min(maxEntryBytes, maxBytes),
    sizeCalculation: (entry, id) => entryBytes(id, entry),
  });
  return {
    get(id) {
      const entry = lru.get(id);
      if (!entry) return undefined;
      const { freshness, ageSeconds } = freshnessOf(entry, now());
      if (freshness === "expired") {
        lru.delete(id);
        return undefined;
      }
      return { entry, freshness, ageSeconds };
    },
    set(id, entry) {
      // Checked here so the caller learns it (and counts it). The older entry goes too: it is no
      // longer the upstream's latest answer.
      if (entryBytes(id, entry) > Math.min(maxEntryBytes, maxBytes)) {
        lru.delete(id);
        return { stored: false, reason: "too-large" };
      }
      lru.set(id, entry);
      return { stored: true };
    },
    delete: (id) => lru.delete(id),
    purge(routeKey, params = {}, where) {
      const wanted = Object.entries(params);
      const ids: string[] = [];
      for (const [id, entry] of lru.entries()) {
        if (
          entry.routeKey === routeKey &&
          wanted.every(([name, value]) => entry.params[name] === value) &&
          (where?.(entry.params) ?? true)
        )
          ids.push(id);
      }
      for (const id of ids) lru.delete(id);
      return ids.length;
    },
    dropStoredBefore(routeKey, at) {
      const ids: string[] = [];
      for (const [id, entry] of lru.entries())
        if (entry.routeKey === routeKey && entry.storedAt < at) ids.push(id);
      for (const id of ids) lru.delete(id);
      return ids.length;
    },
    get size() {
      return lru.size;
    },
    get bytes() {
      return lru.calculatedSize;
    },
  };
}

const offTier: MemoryTier = {
  get: () => undefined,
  set: () => ({ stored: false, reason: "tier-off" }),
  delete: () => false,
  purge: () => 0,
  dropStoredBefore: () => 0,
  size: 0,
  bytes: 0,
};
