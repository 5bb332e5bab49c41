import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import type { CacheEntry } from "#shared/cache/entry.ts";
import { compileCacheKey } from "#shared/cache/key.ts";
import { createMemoryTier } from "#shared/cache/memory.ts";
import { createResponseCache } from "#shared/cache/response-cache.ts";
import { createTableTier, MAX_ITEM_BYTES } from "#shared/cache/table.ts";
import { DEFAULT_CACHE_STATUSES } from "#shared/config/cache.ts";
import { faultyClient, getItem, startTestStore, type TestStore } from "../support/dynamo.ts";

const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);

const entry = (overrides: Partial<CacheEntry> = {}): CacheEntry => ({
  routeKey: "GET /things/{id}",
  params: { id: "1" },
  status: 200,
  headers: { "content-type": "application/json", etag: '"v1"' },
  body: Buffer.from(JSON.stringify({ id: 1, text: "lorem ipsum ".repeat(200) })),
  etag: '"v1"',
  storedAt: T0,
  ttlMs: 60_000,
  staleWhileRevalidateMs: 10_000,
  staleIfErrorMs: 300_000,
  ...overrides,
});

/** The cache table's shared tier against a real dynalite with the tables of serverless.yml. */
describe("cache table tier (dynalite)", () => {
  let store: TestStore;
  let tableName: string;
  let ids = 0;
  const id = () => `k1:test-${process.pid}-${++ids}`;
  before(async () => {
    store = await startTestStore();
    tableName = store.tables.CacheTable as string;
  });
  after(async () => {
    await store?.stop();
  });

  /** A tier whose client counts the commands it sends, by the SDK's command name. */
  function countingTier(now = () => T0) {
    const sent: string[] = [];
    const client = faultyClient(store.endpoint, ({ commandName }) => {
      sent.push(commandName);
    });
    return { tier: createTableTier({ client, tableName, now }), sent };
  }

  it("returns a stored entry as it was given, with one read", async () => {
    const { tier, sent } = countingTier(() => T0 + 5_000);
    const key = id();
    const stored = entry();
    assert.equal((await tier.set(key, stored)).stored, true);
    sent.length = 0;
    const hit = await tier.get(key);
    assert.deepEqual(sent, ["GetItemCommand"]);
    assert.equal(hit?.freshness, "fresh");
    assert.equal(hit?.ageSeconds, 5);
    assert.deepEqual({ ...hit?.entry, body: undefined }, { ...stored, body: undefined });
    assert.ok(hit?.entry.body.equals(stored.body));
  });

  it("gzips a body that is not content-coded, and keeps a coded one as it came", async () => {
    const { tier } = countingTier();
    const plain = id();
    await tier.set(plain, entry());
    const plainItem = await getItem(store.client, tableName, { pk: plain });
    assert.equal(plainItem?.bodyCoding, "gzip");
    assert.ok(
      ((plainItem?.body as Uint8Array | undefined)?.byteLength ?? Infinity) < entry().body.byteLength / 4,
    );

    const coded = id();
    const gzipped = gzipSync(entry().body);
    await tier.set(coded, entry({ body: gzipped, headers: { "content-encoding": "gzip" } }));
    const codedItem = await getItem(store.client, tableName, { pk: coded });
    assert.equal(codedItem?.bodyCoding, "none");
    assert.ok(Buffer.from(codedItem?.body as Uint8Array).equals(gzipped));
    assert.ok((await tier.get(coded))?.entry.body.equals(gzipped));
  });

  it("sets expiresAt to the end of the last stale window, and misses an expired item still in the table", async () => {
    let now = T0;
    const { tier } = countingTier(() => now);
    const key = id();
    await tier.set(key, entry());
    const item = await getItem(store.client, tableName, { pk: key });
    assert.equal(item?.expiresAt, (T0 + 360_000) / 1_000);
    now = T0 + 359_999;
    assert.equal((await tier.get(key))?.freshness, "stale-if-error");
    now = T0 + 360_000;
    assert.equal(await tier.get(key), undefined);
    assert.ok(await getItem(store.client, tableName, { pk: key }), "dynalite has no TTL: the read decided");
  });

  it("does not store an answer too large for an item, says so, and drops the older entry", async () => {
    const { tier } = countingTier();
    const key = id();
    await tier.set(key, entry());
    const incompressible = randomBytes(MAX_ITEM_BYTES);
    const refused = await tier.set(key, entry({ body: incompressible }));
    assert.equal(refused.stored, false);
    assert.ok(refused.bytes > MAX_ITEM_BYTES);
    assert.equal(await getItem(store.client, tableName, { pk: key }), undefined);

    const fits = await tier.set(key, entry({ body: randomBytes(MAX_ITEM_BYTES - 4_096) }));
    assert.equal(fits.stored, true, "an item near the limit is still stored (the estimate is not far off)");
  });

  it("purges a route's entries, all of them or those with the given parameters", async () => {
    const { tier } = countingTier();
    const route = `GET /purge-${process.pid}/{id}`;
    const keys = [id(), id(), id()];
    await tier.set(keys[0] as string, entry({ routeKey: route, params: { id: "1" } }));
    await tier.set(keys[1] as string, entry({ routeKey: route, params: { id: "2" } }));
    await tier.set(keys[2] as string, entry({ routeKey: route, params: { id: "1" } }));
    assert.equal(await tier.purge(route, { id: "1" }), 2);
    const left = await Promise.all(keys.map((key) => tier.get(key)));
    assert.deepEqual(
      left.map((hit) => hit !== undefined),
      [false, true, false],
    );
    assert.equal(await tier.purge(route), 1);
    assert.equal(await tier.get(keys[1] as string), undefined);
  });

  it("purges only the entries whose parameters pass the filter, over more than one batch of 25", async () => {
    const { tier, sent } = countingTier();
    const route = `GET /filtered-${process.pid}/{id}`;
    const keys = Array.from({ length: 60 }, () => id());
    for (const [index, key] of keys.entries())
      await tier.set(key, entry({ routeKey: route, params: { id: String(index) } }));
    sent.length = 0;
    // Even ids: 30 entries, a batch of 25 and one of 5.
    const even = (params: Readonly<Record<string, string>>) => Number(params.id) % 2 === 0;
    assert.equal(await tier.purge(route, {}, even), 30);
    assert.deepEqual(
      sent.filter((name) => name === "BatchWriteItemCommand").length,
      2,
      "30 deletes are two batches",
    );
    const left = await Promise.all(keys.map((key) => tier.get(key)));
    assert.deepEqual(
      left.map((hit) => hit !== undefined),
      keys.map((_, index) => index % 2 === 1),
    );
  });

  it("through the response cache: a shared hit costs one read and fills the container tier (then none)", async () => {
    const { tier, sent } = countingTier();
    const memory = () => createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 100_000, now: () => T0 });
    const keyOf = compileCacheKey({
      routeKey: `GET /shared-${process.pid}`,
      query: [],
      headers: [],
      scope: "public",
    });
    const key = keyOf({ method: "GET", headers: {}, identity: undefined });
    assert.ok(key.cacheable);
    const request = (
      fetch: () =>
        | Promise<never>
        | Promise<{ status: number; headers: Record<string, string>; body: Buffer }>,
    ) => ({
      key,
      policy: {
        ttlSeconds: 60,
        statuses: DEFAULT_CACHE_STATUSES,
        respectUpstreamCacheControl: false,
        staleWhileRevalidateSeconds: 0,
        staleIfErrorSeconds: 0,
        scope: "public" as const,
        key: { query: [], headers: [] },
      },
      keyedHeaders: [],
      method: "GET",
      fetch,
    });
    // Container A misses and stores in both tiers.
    const containerA = createResponseCache({ memory: memory(), table: tier, now: () => T0 });
    const answer = { status: 200, headers: { "content-type": "text/plain" }, body: Buffer.from("shared") };
    assert.equal((await containerA.serve(request(async () => answer))).status, "miss");
    // Container B (its own memory) hits the table once, then its memory.
    const containerB = createResponseCache({ memory: memory(), table: tier, now: () => T0 });
    const unreachable = () => Promise.reject(new Error("the upstream must not be called"));
    sent.length = 0;
    const first = await containerB.serve(request(unreachable));
    assert.deepEqual([first.status, first.answer.body.toString()], ["hit", "shared"]);
    assert.deepEqual(sent, ["GetItemCommand"]);
    sent.length = 0;
    assert.equal((await containerB.serve(request(unreachable))).status, "hit");
    assert.deepEqual(sent, [], "a container hit costs no DynamoDB read");
  });
});
