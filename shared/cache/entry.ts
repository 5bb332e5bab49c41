/**
 * A cached answer and how usable it is at a moment (docs/caching.md, "Stale rules"). Both tiers
 * store the same entry; freshness is decided here, from the entry's own times, never by a tier's TTL.
 */

export interface CacheEntry {
  /** The route it answers (`GET /things/{id}`) and its canonical path parameters: for purges. */
  routeKey: string;
  params: Readonly<Record<string, string>>;
  status: number;
  /** The headers stored with it (lower-case names; no `Set-Cookie`, CORS or per-request headers). */
  headers: Readonly<Record<string, string>>;
  /** The body's bytes, in the coding `headers["content-encoding"]` names (none: identity). */
  body: Buffer;
  /** The upstream's `ETag`, else one made from the body: `If-None-Match` is answered from it. */
  etag: string;
  /** When it was stored, in epoch milliseconds. */
  storedAt: number;
  ttlMs: number;
  staleWhileRevalidateMs: number;
  staleIfErrorMs: number;
}

/**
 * Which of a route's entries a purge takes, besides the parameters it names: a test on an entry's
 * canonical path parameters (a purge by path prefix rebuilds the entry's path from them).
 */
export type ParamsFilter = (params: Readonly<Record<string, string>>) => boolean;

/**
 * - `fresh`: served as a hit.
 * - `stale-while-revalidate`: past its TTL, inside that window: served stale while one call refreshes it.
 * - `stale-if-error`: past its TTL and any revalidation window, inside this one: served only when the
 *   upstream fails.
 * - `expired`: of no use; a tier drops it.
 */
export type Freshness = "fresh" | "stale-while-revalidate" | "stale-if-error" | "expired";

/** An entry found in a tier, with how usable it is now (never `expired`: a tier misses those). */
export interface CacheHit {
  entry: CacheEntry;
  freshness: Exclude<Freshness, "expired">;
  ageSeconds: number;
}

/** How usable an entry is at `now`, and its age in whole seconds (the `Age` header). */
export function freshnessOf(entry: CacheEntry, now: number): { freshness: Freshness; ageSeconds: number } {
  // A clock that went back (another container's entry, in the shared tier) is age 0, not negative.
  const age = Math.max(0, now - entry.storedAt);
  const ageSeconds = Math.floor(age / 1_000);
  if (age < entry.ttlMs) return { freshness: "fresh", ageSeconds };
  if (age < entry.ttlMs + entry.staleWhileRevalidateMs)
    return { freshness: "stale-while-revalidate", ageSeconds };
  if (age < entry.ttlMs + entry.staleIfErrorMs) return { freshness: "stale-if-error", ageSeconds };
  return { freshness: "expired", ageSeconds };
}

/** The last moment an entry is of any use, in epoch milliseconds (the shared table's `expiresAt`). */
export function usableUntil(entry: CacheEntry): number {
  return entry.storedAt + entry.ttlMs + Math.max(entry.staleWhileRevalidateMs, entry.staleIfErrorMs);
}

/** Bytes an entry takes in memory, roughly: body, headers, route and parameters, plus a fixed overhead. */
export function entryBytes(id: string, entry: CacheEntry): number {
  let bytes = 256 + id.length * 2 + entry.body.byteLength + (entry.routeKey.length + entry.etag.length) * 2;
  for (const [name, value] of Object.entries(entry.headers)) bytes += (name.length + value.length) * 2;
  for (const [name, value] of Object.entries(entry.params)) bytes += (name.length + value.length) * 2;
  return bytes;
}
