import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { compileCacheKey } from "#shared/cache/key.ts";
import { createMemoryTier } from "#shared/cache/memory.ts";
import { createPurgeRecord, createPurgeWatcher, PURGE_RECORD_KEY } from "#shared/cache/purge-record.ts";
import { createResponseCache, type ServeRequest } from "#shared/cache/response-cache.ts";
import { createTableTier } from "#shared/cache/table.ts";
import { DEFAULT_CACHE_STATUSES } from "#shared/config/cache.ts";
import type { CachePolicy } from "#shared/config/derive.ts";
import { faultyClient, getItem, startTestStore, type TestStore } from "../support/dynamo.ts";

/** The purge record that carries purges to other containers, against a real dynalite. */
describe("cache purge record (dynalite)", () => {
  let store: TestStore;
  let tableName: string;
  before(async () => {
    store = await startTestStore();
    tableName = store.tables.CacheTable as string;
  });
  after(async () => {
    await store?.stop();
  });

  /** A record on its own table item namespace; the client counts commands and can be made to fail. */
  function recordFor(fail: { next?: Error } = {}) {
    const sent: string[] = [];
    const client = faultyClient(store.endpoint, ({ commandName }) => {
      sent.push(commandName);
      const error = fail.next;
      fail.next = undefined;
      if (error) throw error;
    });
    return { record: createPurgeRecord({ client, tableName }), client, sent };
  }

  it("records when each route was purged, in one write, and reads them back in one read", async () => {
    const { record, sent } = recordFor();
    await record.record(["GET /a", "GET /b/{id}", "GET /a"], 1_000);
    assert.deepEqual(sent, ["UpdateItemCommand"]);
    sent.length = 0;
    const purges = await record.read();
    assert.deepEqual(sent, ["GetItemCommand"]);
    assert.equal(purges.get("GET /a"), 1_000);
    assert.equal(purges.get("GET /b/{id}"), 1_000);
  });

  it("never lets an earlier purge overwrite a later one, route by route", async () => {
    const { record, client } = recordFor();
    await record.record(["GET /late"], 5_000);
    await record.record(["GET /late", "GET /other"], 4_000);
    const purges = await record.read();
    assert.equal(purges.get("GET /late"), 5_000, "the later time stays");
    assert.equal(purges.get("GET /other"), 4_000, "the other route of the same purge is recorded");
    const item = await getItem(client, tableName, { pk: PURGE_RECORD_KEY });
    assert.equal(item?.route, undefined, "the record has no route: the byRoute index never lists it");
  });

  it("a watcher reads at most once per interval, and drops only routes purged since its last read", async () => {
    const { record, sent } = recordFor();
    let now = 10_000;
    const dropped: [string, number][] = [];
    const watcher = createPurgeWatcher({
      record,
      intervalMs: 5_000,
      now: () => now,
      drop: (route, at) => dropped.push([route, at]),
    });
    await record.record(["GET /watched"], 9_000);
    sent.length = 0;

    await watcher.sync();
    assert.deepEqual(sent, ["GetItemCommand"]);
    assert.ok(dropped.some(([route, at]) => route === "GET /watched" && at === 9_000));
    dropped.length = 0;

    now += 4_999;
    assert.equal(watcher.sync(), undefined, "inside the interval: no read");
    assert.deepEqual(sent, ["GetItemCommand"]);

    await record.record(["GET /watched"], now);
    sent.length = 0;
    now += 1;
    await Promise.all([watcher.sync(), watcher.sync()]);
    assert.deepEqual(sent, ["GetItemCommand"], "two callers at once share one read");
    assert.deepEqual(
      dropped.filter(([route]) => route === "GET /watched"),
      [["GET /watched", now - 1]],
      "only the newer purge, once",
    );
  });

  it("a watcher whose read fails reports it, keeps serving, and reads again after the interval", async () => {
    const fail: { next?: Error } = {};
    const { record, sent } = recordFor(fail);
    let now = 50_000;
    const errors: unknown[] = [];
    const dropped: string[] = [];
    const watcher = createPurgeWatcher({
      record,
      intervalMs: 1_000,
      now: () => now,
      drop: (route) => dropped.push(route),
      onError: (error) => errors.push(error),
    });
    await record.record(["GET /after-failure"], 49_000);
    sent.length = 0;
    fail.next = new Error("connection refused");
    await watcher.sync();
    assert.equal(errors.length, 1);
    assert.equal(dropped.includes("GET /after-failure"), false);
    assert.equal(watcher.sync(), undefined, "not again inside the interval");
    now += 1_000;
    await watcher.sync();
    assert.equal(dropped.includes("GET /after-failure"), true);
    assert.deepEqual(sent, ["GetItemCommand", "GetItemCommand"]);
  });
  it("a purge in one container reaches another's memory at its next read of the record, not before", async () => {
    // Two containers of one stage: each its own memory tier, one table, one record, one clock.
    let now = Date.UTC(2026, 10, 30, 12, 0, 0);
    const clock = () => now;
    const { record } = recordFor();
    const container = () =>
      createResponseCache({
        memory: createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 100_000, now: clock }),
        table: createTableTier({ client: store.client, tableName, now: clock }),
        purges: { record, checkMs: 5_000 },
        now: clock,
      });
    const [a, b] = [container(), container()];
    const routeKey = `GET /reach-${process.pid}/{id}`;
    const keyOf = compileCacheKey({ routeKey, query: [], headers: [], scope: "public" });
    const key = keyOf({ method: "GET", pathParameters: { id: "1" }, headers: {}, identity: undefined });
    assert.ok(key.cacheable);
    const policy: CachePolicy = {
      ttlSeconds: 300,
      statuses: DEFAULT_CACHE_STATUSES,
      respectUpstreamCacheControl: false,
      staleWhileRevalidateSeconds: 0,
      staleIfErrorSeconds: 0,
      scope: "public",
      key: { query: [], headers: [] },
    };
    let version = 1;
    let calls = 0;
    const serve = (cache: ReturnType<typeof container>) => {
      const request: ServeRequest = {
        key,
        policy,
        keyedHeaders: [],
        method: "GET",
        fetch: async () => {
          calls += 1;
          return { status: 200, headers: { "content-type": "text/plain" }, body: Buffer.from(`v${version}`) };
        },
      };
      return cache.serve(request);
    };

    // B holds v1 in memory (its first lookup also read the record).
    assert.equal((await serve(b)).status, "miss");
    now += 1_000;
    assert.deepEqual([(await serve(b)).status, calls], ["hit", 1]);

    // The upstream changes; A purges the route (its write route, or the admin purge).
    version = 2;
    now += 1_000;
    await a.purge(routeKey);
    // Inside B's interval (2 s since its last read): it still answers v1 from memory, as documented.
    const lagging = await serve(b);
    assert.deepEqual([lagging.status, lagging.answer.body.toString()], ["hit", "v1"]);

    // Past the interval: B reads the record, drops its copy, finds the table purged, asks again.
    now += 3_001;
    const fresh = await serve(b);
    assert.deepEqual([fresh.status, fresh.answer.body.toString(), calls], ["miss", "v2", 2]);
  });
});
