import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpResult } from "#shared/http.ts";
import { createLimiter } from "#shared/quota/limiter.ts";
import { createMetering } from "#shared/quota/metering.ts";
import {
  connectionRefused,
  faultyClient,
  sleep,
  startTestStore,
  type TestStore,
  throttlingError,
  unreachableClient,
} from "../support/dynamo.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

/** Usage limits in the real gateway chain, counted in a real dynalite, in front of a real upstream. */
describe("gateway handler: usage plans (429s, RateLimit headers, metering, faults)", () => {
  let store: TestStore;
  let table: string;
  let upstream: Server;
  let upstreamUrl: string;
  let upstreamCalls = 0;
  let emf: Record<string, unknown>[] = [];

  before(async () => {
    store = await startTestStore();
    table = store.tables.UsageTable as string;
    upstream = createServer((request, response) => {
      upstreamCalls++;
      const status = request.url?.startsWith("/fail") ? 500 : 200;
      response
        .writeHead(status, { "content-type": "application/json" })
        .end(JSON.stringify({ ok: status < 400 }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    emf = captureEmf();
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    await store?.stop();
  });

  const config = (overrides: Partial<GatewayConfigInput["limits"] & object> = {}): GatewayConfigInput => ({
    auth: {},
    upstreams: { svc: { targets: [{ url: upstreamUrl }], retries: 0 } },
    limits: {
      plans: {
        small: {
          rate: { perSecond: 1, burst: 3 },
          quota: { limit: 5, period: "day" },
          routes: ["GET /a", "GET /fail"],
        },
        default: { quota: { limit: 1_000, period: "day" } },
        anonymous: { rate: { perSecond: 1, burst: 2 } },
      },
      ...overrides,
    },
    routes: {
      "GET /a": { auth: { apiKey: {} }, proxy: { upstream: "svc", path: "/a" }, limit: {} },
      "GET /b": { auth: { apiKey: {} }, proxy: { upstream: "svc", path: "/b" }, limit: { cost: 2 } },
      "GET /fail": { auth: { apiKey: {} }, proxy: { upstream: "svc", path: "/fail" }, limit: {} },
      "GET /open": { auth: "public", proxy: { upstream: "svc", path: "/open" }, limit: {} },
      "GET /free": { auth: "public", proxy: { upstream: "svc", path: "/free" } },
    },
  });
  let keys = 0;
  /**
   * `budgetMs`: a limit-check budget past the config's 20 s ceiling (set on the loaded config, with an
   * invocation long enough to hold it), for tests about counting whose contended checks take however
   * long the machine makes them.
   */
  const build = (input: GatewayConfigInput, client = store.client, now?: () => number, budgetMs?: number) => {
    const gateway = loadGateway(
      defineGateway(() => input),
      "test",
    );
    if (budgetMs !== undefined && gateway.limits) gateway.limits.timeoutMs = budgetMs;
    const remainingMs = budgetMs === undefined ? 28_000 : budgetMs + 30_000;
    const handler = createGatewayHandler(gateway, {
      limiter: createLimiter({ client, tableName: table, ...(now ? { now } : {}) }),
      metering: createMetering({ client, tableName: table }),
      ...(now ? { now } : {}),
    });
    return (routeKey: string, { keyId, plan, ip }: { keyId?: string; plan?: string; ip?: string } = {}) => {
      const event = httpEvent({
        method: "GET",
        routeKey,
        path: routeKey.split(" ")[1] as string,
        sourceIp: ip,
      });
      if (keyId) {
        (event.requestContext as unknown as { authorizer: unknown }).authorizer = {
          lambda: {
            principal: `key:${keyId}-owner`,
            authType: "apiKey",
            plan: plan ?? "small",
            scopes: "",
            keyId,
          },
        };
      }
      return handler(event, lambdaContext("gatehouse-test-gateway", remainingMs)) as Promise<HttpResult>;
    };
  };
  const newKey = () => `k${process.pid}x${++keys}`;
  /** Units the store's quota counter holds for a key this day (a 5-a-day plan). */
  const quotaUsed = async (keyId: string) =>
    (
      await createLimiter({ client: store.client, tableName: table }).quotaStatus(`key:${keyId}`, {
        name: "small",
        quota: { limit: 5, period: "day" },
        shards: 1,
      })
    )?.used;
  const problem = (result: HttpResult) => JSON.parse(String(result.body)) as Record<string, unknown>;

  it("admits within the plan with RateLimit headers; the burst's end is a 429 rate-limited with Retry-After", async () => {
    // A stopped clock: at 1 request/s the bucket would refill between calls on a slow machine.
    const stopped = Date.now();
    const call = build(config(), store.client, () => stopped);
    const keyId = newKey();
    const first = await call("GET /a", { keyId });
    assert.equal(first.statusCode, 200);
    assert.deepEqual(
      [first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]],
      ["3", "2"],
      "the rate window (3) is tighter than the quota (5)",
    );
    assert.ok(Number(first.headers["ratelimit-reset"]) >= 1);
    await call("GET /a", { keyId });
    await call("GET /a", { keyId });
    const calls = upstreamCalls;
    emf.length = 0;
    const began = performance.now();
    const limited = await call("GET /a", { keyId });
    const took = performance.now() - began;
    assert.equal(limited.statusCode, 429);
    const record = emf.find((r) => r.route === "GET /a" && r.Status4XX === 1);
    assert.ok(
      typeof record?.Latency === "number" && record.Latency >= 0 && record.Latency <= took,
      `a refused request is timed from the start of the chain: ${JSON.stringify(record)}`,
    );
    assert.equal(record?.Status429, 1, "a limit's refusal is counted as a 429 too");
    assert.equal(limited.headers["content-type"], "application/problem+json");
    assert.equal(problem(limited).type, "urn:gatehouse:problem:rate-limited");
    assert.equal(problem(limited).limit, "rate");
    assert.ok(Number(limited.headers["retry-after"]) >= 1);
    assert.equal(limited.headers["ratelimit-remaining"], "0");
    assert.equal(upstreamCalls, calls, "a refused request never reaches the upstream");
  });

  it("answers quota-exceeded once the day's quota is used, until the next UTC day", async () => {
    let nowMs = Date.UTC(2026, 10, 21, 12);
    const call = build(config(), store.client, () => nowMs);
    const keyId = newKey();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      nowMs += 1_500; // slower than the rate, so only the quota binds
      statuses.push((await call("GET /a", { keyId })).statusCode ?? 0);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    const refused = await call("GET /a", { keyId });
    assert.equal(problem(refused).type, "urn:gatehouse:problem:quota-exceeded");
    assert.equal(refused.headers["retry-after"], String(Math.ceil((Date.UTC(2026, 10, 22) - nowMs) / 1000)));
    nowMs = Date.UTC(2026, 10, 22, 0, 0, 1);
    assert.equal((await call("GET /a", { keyId })).statusCode, 200, "a new day, a new quota");
  });

  it("refuses a route the plan does not include with 403, and counts route costs", async () => {
    const call = build(config());
    const denied = await call("GET /b", { keyId: newKey() });
    assert.equal(denied.statusCode, 403);
    const keyId = newKey();
    const costly = await call("GET /b", { keyId, plan: "unlisted-plan" }); // → the default plan
    assert.equal(costly.statusCode, 200);
    assert.equal(costly.headers["ratelimit-remaining"], "998", "cost 2 of the default plan's 1,000");
  });

  it("counts anonymous callers by IP on public limited routes, and leaves unlimited routes alone", async () => {
    // A stopped clock: at 1 request/s a loaded machine can let a token refill between the calls.
    const stopped = Date.now();
    const call = build(config(), store.client, () => stopped);
    const ip = `198.51.100.${keys++ % 250}`;
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call("GET /open", { ip })).statusCode);
    assert.deepEqual(statuses, [200, 200, 429]);
    assert.equal(
      (await call("GET /open", { ip: "198.51.100.251" })).statusCode,
      200,
      "another IP, its own count",
    );
    const free = await call("GET /free", { ip });
    assert.equal(free.statusCode, 200);
    assert.equal(free.headers["ratelimit-limit"], undefined);
  });

  it("meters admitted requests with their status, and refusals apart, per subject, route and day", async () => {
    // The limiter's clock stands still at the start of a 3-second rate window, so the four calls
    // cannot straddle a window boundary (which would admit the fourth).
    const windowStart = Math.floor(Date.now() / 3_000) * 3_000;
    const call = build(config(), store.client, () => windowStart);
    const keyId = newKey();
    await call("GET /a", { keyId });
    await call("GET /fail", { keyId });
    await call("GET /a", { keyId });
    await call("GET /a", { keyId }); // rate-limited
    const metering = createMetering({ client: store.client, tableName: table });
    const today = new Date().toISOString().slice(0, 10);
    const records = await metering.forSubject(`key:${keyId}`, today, today);
    const byRoute = Object.fromEntries(records.map((r) => [r.route, r]));
    assert.deepEqual(
      [byRoute["GET /a"]?.requests, byRoute["GET /a"]?.units, byRoute["GET /a"]?.limited],
      [2, 2, 1],
    );
    assert.deepEqual([byRoute["GET /fail"]?.requests, byRoute["GET /fail"]?.status5xx], [1, 1]);
    const everyone = await metering.forRange(today, today);
    assert.ok(everyone.some((r) => r.subject === `key:${keyId}` && r.route === "GET /a"));
  });

  it("looks plans up as declared entries only: a key whose plan is constructor gets the default plan", async () => {
    const call = build(config());
    for (const plan of ["constructor", "__proto__", "toString", "hasOwnProperty"]) {
      const result = await call("GET /b", { keyId: newKey(), plan });
      assert.equal(result.statusCode, 200, plan);
      assert.equal(result.headers["ratelimit-limit"], "1000", `${plan} is counted on the default plan`);
    }
  });

  it("admits exactly the quota when 200 requests of one key arrive at once", async () => {
    // This test is about counting under contention, not about a slow table (the 503 tests below).
    // The 200 checks queue on one item in one dynalite, so the last one waits for all the others:
    // 12.8 s on the loaded CI machine, 15.3 s here beside two busy loops, near the config's 20 s
    // ceiling. Any fixed budget is some machine's 503, so the budget is past the test's own timeout.
    const call = build(
      config({ plans: { small: { quota: { limit: 5, period: "day" } }, default: {}, anonymous: {} } }),
      store.client,
      undefined,
      600_000,
    );
    const keyId = newKey();
    const calls = upstreamCalls;
    const results = await Promise.all(Array.from({ length: 200 }, () => call("GET /a", { keyId })));
    const statuses = results.map((r) => r.statusCode);
    assert.equal(statuses.filter((s) => s === 200).length, 5);
    assert.equal(statuses.filter((s) => s === 429).length, 195);
    assert.equal(upstreamCalls - calls, 5, "only admitted requests reach the upstream");
    for (const result of results)
      assert.ok(result.headers["ratelimit-limit"], "every answer carries RateLimit-*");
  });

  it("counts exactly on a slow store (+50 ms per call): 40 at once on a quota of 5 admit 5", async () => {
    const slow = faultyClient(store.endpoint, () => sleep(50));
    // As above: the 40 checks queue on one item, and the last waits for the others (3.7 s of the
    // default 10 s beside two busy loops); the subject is exact counting, so no budget can end it.
    const call = build(
      config({ plans: { small: { quota: { limit: 5, period: "day" } }, default: {}, anonymous: {} } }),
      slow,
      undefined,
      600_000,
    );
    const keyId = newKey();
    emf.length = 0;
    const results = await Promise.all(Array.from({ length: 40 }, () => call("GET /a", { keyId })));
    assert.equal(results.filter((r) => r.statusCode === 200).length, 5);
    assert.equal(results.filter((r) => r.statusCode === 429).length, 35);
    assert.ok(!emf.some((r) => r.LimiterDegradedAdmission || r.LimiterTimeout), "slowness is not failure");
    assert.equal(await quotaUsed(keyId), 5);
  });

  it("refuses with 503 and Retry-After, never admits uncounted, when the store is slower than the budget", async () => {
    const slow = faultyClient(store.endpoint, () => sleep(400));
    const call = build(config({ timeoutMs: 100 }), slow);
    const calls = upstreamCalls;
    emf.length = 0;
    const result = await call("GET /a", { keyId: newKey() });
    assert.equal(result.statusCode, 503);
    assert.equal(result.headers["retry-after"], "1");
    assert.equal(problem(result).type, "urn:gatehouse:problem:service-unavailable");
    assert.equal(upstreamCalls, calls, "nothing reaches the upstream");
    assert.ok(
      emf.some((r) => r.LimiterTimeout === 1),
      JSON.stringify(emf),
    );
    assert.ok(!emf.some((r) => r.LimiterDegradedAdmission), "a slow store is not a down store");
  });

  it("refuses with 429 rate-limited when DynamoDB throttles the caller's own counter item", async () => {
    const throttled = await throttlingError();
    const keyId = newKey();
    const client = faultyClient(store.endpoint, ({ commandName, input }) => {
      const pk = (input.Key as { pk?: string } | undefined)?.pk ?? "";
      if (commandName === "UpdateItemCommand" && pk === `limit#key:${keyId}`) throw throttled;
    });
    const call = build(config(), client);
    const calls = upstreamCalls;
    emf.length = 0;
    const result = await call("GET /a", { keyId });
    assert.equal(result.statusCode, 429);
    assert.equal(problem(result).type, "urn:gatehouse:problem:rate-limited");
    assert.equal(result.headers["retry-after"], "1");
    assert.equal(upstreamCalls, calls);
    assert.ok(
      emf.some((r) => r.LimiterThrottled === 1),
      JSON.stringify(emf),
    );
    assert.equal((await call("GET /a", { keyId: newKey() })).statusCode, 200, "another key is not throttled");
  });

  it("when the store is down (open), counts in memory at the plan's own limits, with headers and a metric", async () => {
    let down = true;
    const client = faultyClient(store.endpoint, () => {
      if (down) throw connectionRefused();
    });
    const windowStart = Math.floor(Date.now() / 3_000) * 3_000;
    const call = build(config(), client, () => windowStart);
    const keyId = newKey();
    emf.length = 0;
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push(await call("GET /a", { keyId }));
    assert.deepEqual(
      statuses.map((r) => r.statusCode),
      [200, 200, 200, 429, 429],
      "the plan's burst of 3 per window, per container",
    );
    assert.deepEqual(
      statuses.map((r) => r.headers["ratelimit-remaining"]),
      ["2", "1", "0", "0", "0"],
    );
    assert.equal(emf.filter((r) => r.LimiterDegradedAdmission === 1).length, 3, JSON.stringify(emf));

    // The store is back; a new handler is a new container, which admitted nothing in memory: the
    // next request is counted there, alone.
    down = false;
    const next = await build(config(), client, () => windowStart + 3_000)("GET /a", { keyId });
    assert.equal(next.statusCode, 200);
    assert.equal(await quotaUsed(keyId), 1, "a new handler is a new container: it owes nothing");
  });

  it("books a container's degraded admissions into the quota counter once the store answers again", async () => {
    let down = true;
    const client = faultyClient(store.endpoint, () => {
      if (down) throw connectionRefused();
    });
    let nowMs = Math.floor(Date.now() / 3_000) * 3_000;
    const call = build(config(), client, () => nowMs);
    const keyId = newKey();
    for (let i = 0; i < 3; i++) assert.equal((await call("GET /a", { keyId })).statusCode, 200);
    down = false;
    nowMs += 3_000;
    const next = await call("GET /a", { keyId });
    assert.equal(next.statusCode, 200);
    assert.equal(await quotaUsed(keyId), 4, "3 admitted in memory + 1 counted");
    const today = new Date().toISOString().slice(0, 10);
    const metered = await createMetering({ client: store.client, tableName: table }).forSubject(
      `key:${keyId}`,
      today,
      today,
    );
    assert.equal(
      metered.find((r) => r.route === "GET /a")?.requests,
      4,
      "the ledger agrees: failed metering writes were kept",
    );
  });

  it("fails closed when configured: 503 with Retry-After, and nothing reaches the upstream", async () => {
    const call = build(config({ onStoreFailure: "closed" }), unreachableClient());
    const calls = upstreamCalls;
    const result = await call("GET /a", { keyId: newKey() });
    assert.equal(result.statusCode, 503);
    assert.equal(result.headers["retry-after"], "1");
    assert.equal(result.headers["content-type"], "application/problem+json");
    assert.equal(upstreamCalls, calls);
  });
});
