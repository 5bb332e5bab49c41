import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createLimitPolicy } from "#shared/quota/limit-policy.ts";
import {
  createLimiter,
  LimiterTimeoutError,
  LimiterUnavailableError,
  type PlanLimits,
  share,
} from "#shared/quota/limiter.ts";
import { createMetering } from "#shared/quota/metering.ts";
import { checkWebSocketMessage } from "#shared/quota/ws-limits.ts";
import { getItem, startTestStore, type TestStore, unreachableClient } from "../support/dynamo.ts";

/** The limiter against a real dynalite: exactness under concurrency, windows, burst, costs, shards. */
describe("limiter (dynalite)", () => {
  let store: TestStore;
  let table: string;
  before(async () => {
    store = await startTestStore();
    table = store.tables.UsageTable as string;
  });
  after(async () => {
    await store?.stop();
  });

  const plan = (overrides: Partial<PlanLimits> = {}): PlanLimits => ({
    name: "test",
    quota: { limit: 1_000_000, period: "day" },
    shards: 1,
    ...overrides,
  });
  let subjects = 0;
  const subject = () => `key:test-${process.pid}-${++subjects}`;

  it("admits exactly R of N > R concurrent requests, and meters exactly what it admitted (20 rounds)", async () => {
    const limiter = createLimiter({ client: store.client, tableName: table });
    const metering = createMetering({ client: store.client, tableName: table });
    for (let round = 0; round < 20; round++) {
      const who = subject();
      const limits = plan({ quota: { limit: 150, period: "day" } });
      // 100 units used already, so 50 remain; then 200 requests at once.
      for (let i = 0; i < 100; i++) assert.ok((await limiter.check(who, limits, 1)).admitted);
      const decisions = await Promise.all(
        Array.from({ length: 200 }, async () => {
          const decision = await limiter.check(who, limits, 1);
          await metering.record({
            subject: who,
            route: "GET /x",
            cost: 1,
            status: 200,
            admitted: decision.admitted,
          });
          return decision;
        }),
      );
      const admitted = decisions.filter((d) => d.admitted).length;
      assert.equal(admitted, 50, `round ${round}: ${admitted} admitted`);
      assert.ok(
        decisions.filter((d) => !d.admitted).every((d) => d.reason === "quota" && d.retryAfterSeconds),
      );
      const today = new Date().toISOString().slice(0, 10);
      const [usage] = await metering.forSubject(who, today, today);
      assert.equal(usage?.requests, 50, "metered requests = admitted");
      assert.equal(usage?.limited, 150);
    }
  });

  it("counts cost weights, and refuses a request whose cost does not fit even when a cheaper one would", async () => {
    const limiter = createLimiter({ client: store.client, tableName: table });
    const who = subject();
    const limits = plan({ quota: { limit: 10, period: "day" } });
    assert.equal((await limiter.check(who, limits, 7)).remaining, 3);
    const big = await limiter.check(who, limits, 5);
    assert.deepEqual([big.admitted, big.reason, big.remaining], [false, "quota", 3]);
    const small = await limiter.check(who, limits, 3);
    assert.deepEqual([small.admitted, small.remaining], [true, 0]);
  });

  it("starts a new quota window from zero at the UTC day boundary, with no reset write", async () => {
    let nowMs = Date.UTC(2026, 10, 21, 23, 59, 59, 500);
    const limiter = createLimiter({ client: store.client, tableName: table, now: () => nowMs });
    const who = subject();
    const limits = plan({ quota: { limit: 2, period: "day" } });
    assert.ok((await limiter.check(who, limits, 1)).admitted);
    assert.ok((await limiter.check(who, limits, 1)).admitted);
    const refused = await limiter.check(who, limits, 1);
    assert.deepEqual([refused.admitted, refused.retryAfterSeconds], [false, 1]);
    nowMs += 1_000; // 2026-11-22T00:00:00.500Z
    const writesBefore = limiter.stats.writes;
    const next = await limiter.check(who, limits, 1);
    assert.deepEqual([next.admitted, next.remaining], [true, 1]);
    assert.equal(limiter.stats.writes - writesBefore, 1, "the new window cost one write");
    const item = await getItem(store.client, table, { pk: `limit#${who}`, sk: "day#2026-11-22" });
    assert.equal(item?.used, 1);
    assert.equal(item?.expiresAt, Date.UTC(2026, 10, 24) / 1000, "kept a day past its window");
  });

  it("allows the burst at once, then the rate; a rollover costs at most one more round trip", async () => {
    let nowMs = 1_800_000_000_000; // a window boundary for 2-second windows
    const limiter = createLimiter({ client: store.client, tableName: table, now: () => nowMs });
    const who = subject();
    const limits = plan({ quota: undefined, rate: { perSecond: 5, burst: 10 } }); // 10 per 2 s window
    const burst = await Promise.all(Array.from({ length: 25 }, () => limiter.check(who, limits, 1)));
    assert.equal(burst.filter((d) => d.admitted).length, 10, "exactly the burst");
    const refused = burst.find((d) => !d.admitted);
    assert.deepEqual(
      [refused?.reason, refused?.limit, refused?.remaining, refused?.retryAfterSeconds],
      ["rate", 10, 0, 2],
    );

    nowMs += 2_000; // the next window
    const { writes, reads } = { ...limiter.stats };
    assert.ok((await limiter.check(who, limits, 1)).admitted);
    assert.ok(
      limiter.stats.writes - writes <= 2 && limiter.stats.reads - reads <= 1,
      "rollover: one more at most",
    );
    const before = { ...limiter.stats };
    for (let i = 0; i < 5; i++) assert.ok((await limiter.check(who, limits, 1)).admitted);
    assert.deepEqual(
      [limiter.stats.writes - before.writes, limiter.stats.reads - before.reads],
      [5, 0],
      "within a window: one write per admitted request, no read",
    );
  });

  it("keeps rate and quota together: a refusal says which one, and an admitted request reports the tighter", async () => {
    const nowMs = 1_800_000_100_000;
    const limiter = createLimiter({ client: store.client, tableName: table, now: () => nowMs });
    const who = subject();
    const limits = plan({ quota: { limit: 3, period: "month" }, rate: { perSecond: 1, burst: 5 } });
    const first = await limiter.check(who, limits, 1);
    assert.deepEqual([first.limit, first.remaining], [3, 2], "the quota is closer to running out");
    await limiter.check(who, limits, 1);
    await limiter.check(who, limits, 1);
    const refused = await limiter.check(who, limits, 1);
    assert.equal(refused.reason, "quota");
  });

  it("sharded counters never admit more than the limit, and fill up when enough requests come", async () => {
    const limiter = createLimiter({ client: store.client, tableName: table });
    for (let round = 0; round < 5; round++) {
      const who = subject();
      const limits = plan({ quota: { limit: 40, period: "day" }, shards: 4 });
      const decisions = await Promise.all(Array.from({ length: 160 }, () => limiter.check(who, limits, 1)));
      const admitted = decisions.filter((d) => d.admitted).length;
      assert.ok(admitted <= 40, `round ${round}: ${admitted} admitted`);
      // A shard is tried, and another one when it is full: with 4× the requests every shard fills.
      assert.equal(admitted, 40, `round ${round}: ${admitted} admitted`);
      let total = 0;
      for (let shard = 0; shard < 4; shard++) {
        const item = await getItem(store.client, table, {
          pk: `limit#${who}#s${shard}`,
          sk: `day#${new Date().toISOString().slice(0, 10)}`,
        });
        assert.ok((item?.used ?? 0) <= share(40, 4, shard));
        total += item?.used ?? 0;
      }
      assert.equal(total, admitted);
    }
  });

  it("limits WebSocket messages per connection and per principal with the same counters", async () => {
    const nowMs = 1_800_000_200_000;
    const limiter = createLimiter({ client: store.client, tableName: table, now: () => nowMs });
    const limits = { perConnection: { perSecond: 1, burst: 3 }, perPrincipal: { perSecond: 1, burst: 4 } };
    const principal = `user-${process.pid}-${++subjects}`;
    const send = (connectionId: string) =>
      checkWebSocketMessage(
        createLimitPolicy({ limiter, onStoreFailure: "closed", what: "Message limits" }),
        limits,
        { connectionId, principal },
        10_000,
      );
    const first = [];
    for (let i = 0; i < 4; i++) first.push((await send("c1"))?.admitted);
    assert.deepEqual(first, [true, true, true, false], "the connection's burst of 3");
    // A second connection of the same principal: the principal's 4 are 3 spent already.
    const second = [];
    for (let i = 0; i < 2; i++) second.push(await send("c2"));
    assert.deepEqual(
      second.map((d) => [d?.admitted, d?.reason]),
      [
        [true, undefined],
        [false, "rate"],
      ],
    );
    assert.equal(second[1]?.limit, 4, "refused by the principal's limit");
  });

  it("throws LimiterUnavailableError when the table cannot be reached, LimiterTimeoutError when the budget runs out", async () => {
    const down: DynamoDBDocumentClient = unreachableClient();
    const limiter = createLimiter({ client: down, tableName: table });
    await assert.rejects(limiter.check(subject(), plan(), 1), LimiterUnavailableError);
    const slow = createLimiter({ client: store.client, tableName: table });
    await assert.rejects(slow.check(subject(), plan(), 1, AbortSignal.abort()), LimiterTimeoutError);
  });

  it("refuses again from memory, with no call, a subject whose refusal it has seen in this window", async () => {
    const limiter = createLimiter({ client: store.client, tableName: table });
    const who = subject();
    const small = { name: "small", quota: { limit: 2, period: "day" as const }, shards: 1 };
    for (let i = 0; i < 3; i++) await limiter.check(who, small, 1);
    const before = { ...limiter.stats };
    const again = await Promise.all(Array.from({ length: 50 }, () => limiter.check(who, small, 1)));
    assert.ok(again.every((decision) => !decision.admitted && decision.reason === "quota"));
    assert.deepEqual(
      [
        limiter.stats.writes - before.writes,
        limiter.stats.reads - before.reads,
        limiter.stats.localRefusals - before.localRefusals,
      ],
      [0, 0, 50],
    );
  });
});
