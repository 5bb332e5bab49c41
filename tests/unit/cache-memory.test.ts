import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CacheEntry, entryBytes, freshnessOf, usableUntil } from "#shared/cache/entry.ts";
import { createMemoryTier } from "#shared/cache/memory.ts";

const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);

const entry = (overrides: Partial<CacheEntry> = {}): CacheEntry => ({
  routeKey: "GET /things/{id}",
  params: { id: "1" },
  status: 200,
  headers: { "content-type": "application/json", etag: '"v1"' },
  body: Buffer.from('{"id":1}'),
  etag: '"v1"',
  storedAt: T0,
  ttlMs: 60_000,
  staleWhileRevalidateMs: 10_000,
  staleIfErrorMs: 300_000,
  ...overrides,
});

/** A clock the test moves. */
function clock(start = T0) {
  let now = start;
  return {
    now: () => now,
    set(ms: number) {
      now = ms;
    },
  };
}

describe("cache entry freshness", () => {
  it("is fresh within the TTL, then stale-while-revalidate, then stale-if-error, then expired", () => {
    const e = entry();
    const at = (ms: number) => freshnessOf(e, T0 + ms);
    assert.deepEqual(at(0), { freshness: "fresh", ageSeconds: 0 });
    assert.deepEqual(at(59_999), { freshness: "fresh", ageSeconds: 59 });
    assert.deepEqual(at(60_000), { freshness: "stale-while-revalidate", ageSeconds: 60 });
    assert.deepEqual(at(69_999).freshness, "stale-while-revalidate");
    assert.deepEqual(at(70_000).freshness, "stale-if-error");
    assert.deepEqual(at(359_999).freshness, "stale-if-error");
    assert.deepEqual(at(360_000).freshness, "expired");
    assert.equal(usableUntil(e), T0 + 360_000);
  });

  it("reads a storedAt in the future (another container's clock) as age 0", () => {
    assert.deepEqual(freshnessOf(entry({ storedAt: T0 + 5_000 }), T0), { freshness: "fresh", ageSeconds: 0 });
  });

  it("with ttl 0 and a stale-if-error window, is never fresh but kept for errors", () => {
    const e = entry({ ttlMs: 0, staleWhileRevalidateMs: 0, staleIfErrorMs: 1_000 });
    assert.equal(freshnessOf(e, T0).freshness, "stale-if-error");
    assert.equal(freshnessOf(e, T0 + 1_000).freshness, "expired");
  });
});

describe("container tier", () => {
  it("returns a stored entry with its freshness and age, and drops it once expired", () => {
    const time = clock();
    const tier = createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 10_000, now: time.now });
    assert.deepEqual(tier.set("k1:a", entry()), { stored: true });
    assert.equal(tier.get("k1:a")?.freshness, "fresh");
    time.set(T0 + 65_000);
    assert.deepEqual(
      { ...tier.get("k1:a"), entry: undefined },
      { entry: undefined, freshness: "stale-while-revalidate", ageSeconds: 65 },
    );
    time.set(T0 + 360_000);
    assert.equal(tier.get("k1:a"), undefined);
    assert.equal(tier.size, 0, "the expired entry is gone, not only hidden");
  });

  it("holds at most maxBytes, dropping the least recently used first", () => {
    const body = Buffer.alloc(1_000);
    const one = entryBytes("k1:0", entry({ body }));
    const tier = createMemoryTier({ maxBytes: one * 3, maxEntryBytes: one, now: () => T0 });
    for (const id of ["k1:0", "k1:1", "k1:2"]) tier.set(id, entry({ body }));
    assert.equal(tier.size, 3);
    tier.get("k1:0"); // now the most recently used
    tier.set("k1:3", entry({ body }));
    assert.ok(tier.bytes <= one * 3, `${tier.bytes} bytes held`);
    assert.deepEqual(
      ["k1:0", "k1:1", "k1:2", "k1:3"].map((id) => tier.get(id) !== undefined),
      [true, false, true, true],
    );
  });

  it("refuses an entry over maxEntryBytes, says so, and drops the older entry it would replace", () => {
    const tier = createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 2_000, now: () => T0 });
    tier.set("k1:a", entry());
    assert.deepEqual(tier.set("k1:a", entry({ body: Buffer.alloc(5_000) })), {
      stored: false,
      reason: "too-large",
    });
    assert.equal(tier.get("k1:a"), undefined);
  });

  it("stores nothing when maxBytes is 0", () => {
    const tier = createMemoryTier({ maxBytes: 0, maxEntryBytes: 1_000 });
    assert.deepEqual(tier.set("k1:a", entry()), { stored: false, reason: "tier-off" });
    assert.equal(tier.get("k1:a"), undefined);
  });

  it("purges a route's entries, all of them or those with the given parameters", () => {
    const tier = createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 10_000, now: () => T0 });
    tier.set("k1:a", entry({ params: { id: "1" } }));
    tier.set("k1:b", entry({ params: { id: "2" } }));
    tier.set("k1:c", entry({ params: { id: "1" } }));
    tier.set("k1:d", entry({ routeKey: "GET /other", params: {} }));
    assert.equal(tier.purge("GET /things/{id}", { id: "1" }), 2);
    assert.deepEqual(
      ["k1:a", "k1:b", "k1:c", "k1:d"].map((id) => tier.get(id) !== undefined),
      [false, true, false, true],
    );
    assert.equal(tier.purge("GET /things/{id}"), 1);
    assert.equal(tier.size, 1);
  });

  it("purges only the entries whose parameters pass the filter, besides those it names", () => {
    const tier = createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 10_000, now: () => T0 });
    tier.set("k1:a", entry({ params: { id: "10" } }));
    tier.set("k1:b", entry({ params: { id: "20" } }));
    tier.set("k1:c", entry({ params: { id: "11" } }));
    tier.set("k1:d", entry({ routeKey: "GET /other", params: { id: "12" } }));
    const startsWith1 = (params: Readonly<Record<string, string>>) => params.id?.startsWith("1") ?? false;
    assert.equal(tier.purge("GET /things/{id}", {}, startsWith1), 2);
    assert.deepEqual(
      ["k1:a", "k1:b", "k1:c", "k1:d"].map((id) => tier.get(id) !== undefined),
      [false, true, false, true],
    );
    assert.equal(
      tier.purge("GET /things/{id}", { id: "20" }, () => false),
      0,
      "both must hold",
    );
    assert.equal(tier.size, 2);
  });
});
