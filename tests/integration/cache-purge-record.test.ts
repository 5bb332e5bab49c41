import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createPurgeRecord, createPurgeWatcher, PURGE_RECORD_KEY } from "#shared/cache/purge-record.ts";
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
});
