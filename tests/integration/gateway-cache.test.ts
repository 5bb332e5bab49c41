import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, beforeEach, describe, it, mock } from "node:test";
import { gunzipSync } from "node:zlib";
import { createMemoryTier } from "#shared/cache/memory.ts";
import { createResponseCache } from "#shared/cache/response-cache.ts";
import { createTableTier } from "#shared/cache/table.ts";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpResult } from "#shared/http.ts";
import { createLimiter } from "#shared/quota/limiter.ts";
import { createMetering } from "#shared/quota/metering.ts";
import { startTestStore, type TestStore } from "../support/dynamo.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);

/** What the upstream received, per call. */
interface Received {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/**
 * The cache step in the real gateway chain: both tiers (the shared one in dynalite), a real upstream
 * on a free port, usage limits counted in the same dynalite. The clock of the cache is moved by hand.
 */
describe("gateway handler: response cache (both tiers, dynalite)", () => {
  let store: TestStore;
  let upstream: Server;
  let upstreamUrl: string;
  let received: Received[] = [];
  let version = 1;
  let down = false;
  let clock = T0;
  let run = 0;

  before(async () => {
    store = await startTestStore();
    upstream = createServer(async (request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      await new Promise((resolve) => request.on("end", resolve));
      received.push({
        method: request.method ?? "",
        url: request.url ?? "",
        headers: request.headers,
        body: Buffer.concat(chunks).toString(),
      });
      if (down) return void response.writeHead(503, { "content-type": "text/plain" }).end("down");
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (request.url?.startsWith("/cookie")) headers["set-cookie"] = "session=1";
      if (request.url?.startsWith("/reject")) return void response.writeHead(409, headers).end("{}");
      const who = request.headers["x-gatehouse-principal"] ?? "nobody";
      response
        .writeHead(200, headers)
        .end(
          request.method === "HEAD"
            ? undefined
            : JSON.stringify({ version, who, url: request.url, text: "lorem ipsum ".repeat(200) }),
        );
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    await store?.stop();
  });
  beforeEach(() => {
    received = [];
    version = 1;
    down = false;
    clock = T0;
    run++;
  });

  const config = (): GatewayConfigInput => ({
    auth: {},
    upstreams: { svc: { targets: [{ url: upstreamUrl }], retries: 0 } },
    limits: {
      plans: {
        small: { quota: { limit: 3, period: "day" } },
        default: { quota: { limit: 1_000, period: "day" } },
      },
    },
    routes: {
      // The run number keeps each test's entries apart in the one table.
      "GET /things/{id}": {
        auth: "public",
        proxy: {
          upstream: "svc",
          path: "/things/{id}",
          versions: { "2": { upstream: "svc", path: "/v2/things/{id}" } },
        },
        cache: {
          ttlSeconds: 60,
          key: { query: ["page", "run"], headers: ["accept-language"] },
          staleWhileRevalidateSeconds: 30,
          staleIfErrorSeconds: 600,
        },
      },
      "GET /mine": {
        auth: { apiKey: {} },
        proxy: { upstream: "svc", path: "/mine" },
        cache: { ttlSeconds: 60, key: { query: ["run"] } },
        limit: {},
      },
      "GET /shared": {
        auth: { apiKey: {} },
        proxy: { upstream: "svc", path: "/shared", forwardAuthorization: true },
        cache: { scope: "public", sameForEveryCaller: true, key: { query: ["run"] } },
      },
      "POST /things/{id}": {
        auth: "public",
        proxy: { upstream: "svc", path: "/things/{id}" },
        cache: { invalidates: ["GET /things/{id}"] },
      },
      "DELETE /things/{id}": {
        auth: "public",
        proxy: { upstream: "svc", path: "/reject/{id}" },
        cache: { invalidates: ["GET /things/{id}"] },
      },
      "GET /both/{id}": {
        auth: "public",
        aggregate: {
          calls: { a: { upstream: "svc", path: "/a/{id}" }, b: { upstream: "svc", path: "/b/{id}" } },
        },
        cache: { key: { query: ["run"] } },
      },
      "GET /partial/{id}": {
        auth: "public",
        aggregate: {
          calls: { a: { upstream: "svc", path: "/a/{id}" }, b: { upstream: "svc", path: "/reject/{id}" } },
          onFailure: "partial",
        },
        cache: { key: { query: ["run"] } },
      },
      "GET /cookie": {
        auth: "public",
        proxy: { upstream: "svc", path: "/cookie" },
        cache: { key: { query: ["run"] } },
      },
      "GET /plain": { auth: "public", proxy: { upstream: "svc", path: "/plain" } },
    },
  });

  /** A gateway function as one container has it: its own container tier, the shared table. */
  const container = (input = config(), maxEntryBytes = 65_536) => {
    const tableName = store.tables.CacheTable as string;
    const usage = store.tables.UsageTable as string;
    const now = () => clock;
    const handler = createGatewayHandler(
      loadGateway(
        defineGateway(() => input),
        "test",
      ),
      {
        limiter: createLimiter({ client: store.client, tableName: usage }),
        metering: createMetering({ client: store.client, tableName: usage }),
        cache: createResponseCache({
          memory: createMemoryTier({ maxBytes: 1_048_576, maxEntryBytes, now }),
          table: createTableTier({ client: store.client, tableName, now }),
          now,
        }),
      },
    );
    return (
      routeKey: string,
      {
        method = "GET",
        query = "",
        headers = {},
        id,
        keyId,
        scopes = "",
        body,
      }: {
        body?: string;
        method?: string;
        query?: string;
        headers?: Record<string, string>;
        id?: string;
        keyId?: string;
        scopes?: string;
      } = {},
    ) => {
      const path = (routeKey.split(" ")[1] as string).replace("{id}", id ?? "");
      const event = httpEvent({
        method,
        routeKey,
        path,
        headers,
        query: query ? `${query}&run=${run}` : `run=${run}`,
        ...(id ? { pathParameters: { id } } : {}),
        ...(body ? { body, headers: { ...headers, "content-type": "application/json" } } : {}),
      });
      if (keyId) {
        (event.requestContext as unknown as { authorizer: unknown }).authorizer = {
          lambda: { principal: `key:${keyId}`, authType: "apiKey", plan: "small", scopes, keyId },
        };
      }
      return handler(event, lambdaContext("gatehouse-test-gateway", 28_000)) as Promise<HttpResult>;
    };
  };
  const data = (result: HttpResult) => JSON.parse(String(result.body)) as Record<string, unknown>;

  it("misses, then hits from the container tier; another container hits from the table", async () => {
    const call = container();
    const first = await call("GET /things/{id}", { id: "1" });
    assert.equal(first.statusCode, 200);
    assert.equal(first.headers["x-cache"], "miss");
    clock += 5_000;
    const second = await call("GET /things/{id}", { id: "1" });
    assert.equal(second.headers["x-cache"], "hit");
    assert.equal(second.headers.age, "5");
    assert.deepEqual(data(second), data(first));
    const other = await container()("GET /things/{id}", { id: "1" });
    assert.equal(other.headers["x-cache"], "hit");
    assert.equal(received.length, 1, "one upstream call for the three requests");
    const elsewhere = await call("GET /things/{id}", { id: "2" });
    assert.equal(elsewhere.headers["x-cache"], "miss", "another path parameter is another entry");
  });

  it("keys only the named query parameters: an unnamed one shares the entry, a named one does not", async () => {
    const call = container();
    await call("GET /things/{id}", { id: "1", query: "page=2" });
    const unnamed = await call("GET /things/{id}", { id: "1", query: "page=2&utm=x" });
    assert.equal(unnamed.headers["x-cache"], "hit");
    const named = await call("GET /things/{id}", { id: "1", query: "page=3" });
    assert.equal(named.headers["x-cache"], "miss");
    assert.equal(received.length, 2);
  });

  it("keys the version the header asks for: each version is an entry of its own", async () => {
    const call = container();
    await call("GET /things/{id}", { id: "1" });
    const v2 = await call("GET /things/{id}", { id: "1", headers: { "x-api-version": "2" } });
    assert.equal(v2.headers["x-cache"], "miss");
    assert.match(String(data(v2).url), /^\/v2\/things\/1/);
    const again = await call("GET /things/{id}", { id: "1", headers: { "x-api-version": "2" } });
    assert.equal(again.headers["x-cache"], "hit");
    assert.match(String(data(again).url), /^\/v2\/things\/1/);
  });

  it("answers 304 from the cache when If-None-Match matches the entry's tag", async () => {
    const call = container();
    const miss = await call("GET /things/{id}", { id: "1" });
    const etag = String(miss.headers.etag ?? "");
    assert.match(etag, /^W\/"/, "the stored answer's tag, made from the body, already on the miss");
    const hit = await call("GET /things/{id}", { id: "1" });
    assert.equal(hit.headers.etag, etag);
    const notModified = await call("GET /things/{id}", { id: "1", headers: { "if-none-match": etag } });
    assert.equal(notModified.statusCode, 304);
    assert.equal(notModified.body, "");
    assert.equal(notModified.headers["x-cache"], "hit");
    assert.equal(notModified.headers.etag, etag);
    const otherTag = await call("GET /things/{id}", { id: "1", headers: { "if-none-match": '"nope"' } });
    assert.equal(otherTag.statusCode, 200);
    assert.equal(received.length, 1);
  });

  it("answers a HEAD from the GET entry without a body; a HEAD miss stores nothing", async () => {
    const call = container();
    const headMiss = await call("GET /things/{id}", { id: "1", method: "HEAD" });
    assert.equal(headMiss.headers["x-cache"], "miss");
    const get = await call("GET /things/{id}", { id: "1" });
    assert.equal(get.headers["x-cache"], "miss", "the HEAD's answer was not stored");
    const head = await call("GET /things/{id}", { id: "1", method: "HEAD" });
    assert.equal(head.headers["x-cache"], "hit");
    assert.equal(head.body, "");
    assert.equal(head.headers["content-type"], "application/json");
    assert.equal(received.length, 2);
  });

  it("serves the entry in each client's coding: gzip for one that accepts it, identity for one that does not", async () => {
    const call = container();
    const plain = await call("GET /things/{id}", { id: "1" });
    const gzip = await call("GET /things/{id}", { id: "1", headers: { "accept-encoding": "gzip" } });
    assert.equal(gzip.headers["x-cache"], "hit");
    assert.equal(gzip.headers["content-encoding"], "gzip");
    assert.deepEqual(
      JSON.parse(gunzipSync(Buffer.from(String(gzip.body), "base64")).toString()),
      data(plain),
    );
    const again = await call("GET /things/{id}", { id: "1" });
    assert.equal(again.headers["content-encoding"], undefined);
    assert.deepEqual(data(again), data(plain));
  });

  it("serves the last good answer as stale while the upstream is down, inside staleIfErrorSeconds", async () => {
    const call = container();
    await call("GET /things/{id}", { id: "1" });
    down = true;
    clock += 60_000 + 30_000 + 1_000; // past the TTL and the revalidation window
    const stale = await call("GET /things/{id}", { id: "1" });
    assert.equal(stale.statusCode, 200);
    assert.equal(stale.headers["x-cache"], "stale");
    assert.equal(stale.headers.age, "91");
    assert.equal(data(stale).version, 1);
    clock += 600_000;
    const gone = await call("GET /things/{id}", { id: "1" });
    assert.equal(gone.statusCode, 503, "past the window, the upstream's answer as it is");
    assert.equal(gone.headers["x-cache"], "miss");
  });

  it("serves stale inside staleWhileRevalidateSeconds and has refreshed the entry when the invocation ends", async () => {
    const call = container();
    await call("GET /things/{id}", { id: "1" });
    version = 2;
    clock += 61_000;
    const stale = await call("GET /things/{id}", { id: "1" });
    assert.equal(stale.headers["x-cache"], "stale");
    assert.equal(data(stale).version, 1);
    assert.equal(received.length, 2, "the refresh was made before the invocation returned");
    const fresh = await call("GET /things/{id}", { id: "1" });
    assert.equal(fresh.headers["x-cache"], "hit");
    assert.equal(data(fresh).version, 2);
  });

  it("honours Cache-Control: max-age=0 only from a caller with the cache:invalidate scope", async () => {
    const call = container();
    await call("GET /mine", { keyId: `a${run}` });
    version = 2;
    const ignored = await call("GET /mine", { keyId: `a${run}`, headers: { "cache-control": "max-age=0" } });
    assert.equal(ignored.headers["x-cache"], "hit");
    assert.equal(data(ignored).version, 1);
    const admin = `a${run}`;
    const honoured = await call("GET /mine", {
      keyId: admin,
      scopes: "cache:invalidate",
      headers: { "cache-control": "no-cache" },
    });
    assert.equal(honoured.headers["x-cache"], "miss");
    assert.equal(data(honoured).version, 2);
    assert.equal(received.length, 2);
  });

  it("keeps principals apart, and a hit still counts against the caller's quota", async () => {
    const call = container();
    const a = await call("GET /mine", { keyId: `qa${run}` });
    const b = await call("GET /mine", { keyId: `qb${run}` });
    assert.equal(b.headers["x-cache"], "miss", "B never gets A's entry");
    assert.notEqual(data(a).who, data(b).who);
    const hits = [
      await call("GET /mine", { keyId: `qa${run}` }),
      await call("GET /mine", { keyId: `qa${run}` }),
    ];
    assert.deepEqual(
      hits.map((hit) => [hit.headers["x-cache"], hit.headers["ratelimit-remaining"]]),
      [
        ["hit", "1"],
        ["hit", "0"],
      ],
    );
    const refused = await call("GET /mine", { keyId: `qa${run}` });
    assert.equal(refused.statusCode, 429, "the quota of 3 is used up by one miss and two hits");
    assert.equal(refused.headers["x-cache"], undefined, "refused before the cache step");
    assert.equal(received.length, 2);
  });

  it("sends a miss only the keyed query, canonical, and the keyed headers: poisoning inputs never reach the upstream", async () => {
    const call = container();
    const miss = await call("GET /things/{id}", {
      id: "1",
      query: "utm=x&page=%7e&page=b+c&callback=evil",
      headers: {
        "accept-language": " fr ",
        "x-forwarded-host": "evil.example",
        "x-original-url": "/admin",
        "x-rewrite-url": "/admin",
        "x-custom": "unkeyed",
        authorization: "Bearer stolen",
      },
    });
    assert.equal(miss.headers["x-cache"], "miss");
    assert.match(
      String(miss.headers.vary),
      /accept-language/,
      "downstream caches learn what the answer depends on",
    );
    const sent = received[0] as Received;
    assert.equal(sent.url, `/things/1?page=~&page=b%20c&run=${run}`);
    assert.equal(sent.headers["accept-language"], "fr");
    assert.equal(sent.headers["x-forwarded-host"], "api.example.com", "rebuilt from the gateway's own view");
    for (const name of ["x-original-url", "x-rewrite-url", "x-custom", "authorization"])
      assert.equal(sent.headers[name], undefined, `${name} is not sent`);
    const otherCasing = await call("GET /things/{id}", {
      id: "1",
      query: "page=~&page=b%20c&X-Original-URL=/admin",
      headers: { "Accept-Language": "fr", "X-Original-URL": "/admin" },
    });
    assert.equal(
      otherCasing.headers["x-cache"],
      "hit",
      "the same keyed inputs in another spelling: the same entry",
    );
    const otherLanguage = await call("GET /things/{id}", {
      id: "1",
      query: "page=~&page=b%20c",
      headers: { "accept-language": "de" },
    });
    assert.equal(otherLanguage.headers["x-cache"], "miss", "a keyed header is part of the key");
    const swapped = await call("GET /things/{id}", {
      id: "1",
      query: "page=b%20c&page=~",
      headers: { "accept-language": "fr" },
    });
    assert.equal(
      swapped.headers["x-cache"],
      "miss",
      "repeated parameters in another order are another entry",
    );
    assert.equal(received.length, 3);
  });

  it("sends a cached route's miss no request body: a body is not keyed", async () => {
    const call = container();
    const miss = await call("GET /things/{id}", { id: "1", body: '{"role":"admin"}' });
    assert.equal(miss.headers["x-cache"], "miss");
    assert.equal((received[0] as Received).body, "");
    const other = await call("GET /things/{id}", { id: "1", body: '{"role":"guest"}' });
    assert.equal(other.headers["x-cache"], "hit");
    assert.equal(received.length, 1);
  });

  it("caches an aggregate route's merged answer", async () => {
    const call = container();
    const miss = await call("GET /both/{id}", { id: "7" });
    assert.equal(miss.statusCode, 200);
    assert.equal(miss.headers["x-cache"], "miss");
    const hit = await call("GET /both/{id}", { id: "7" });
    assert.equal(hit.headers["x-cache"], "hit");
    assert.deepEqual(data(hit), data(miss));
    assert.equal(received.length, 2, "two calls for the miss, none for the hit");
  });

  it("counts CacheHit, CacheMiss, CacheStale and CacheBypass per request, by route, 0 or 1 each", async () => {
    const emf = captureEmf();
    try {
      const call = container();
      await call("GET /things/{id}", { id: "1" });
      await call("GET /things/{id}", { id: "1" });
      clock += 61_000;
      await call("GET /things/{id}", { id: "1" });
      await call("GET /things/{id}", { id: "1", query: "page=%zz" });
      await call("GET /plain");
      const counts = emf
        .filter((record) => "Requests" in record)
        .map((record) => [
          record.route,
          record.CacheHit,
          record.CacheMiss,
          record.CacheStale,
          record.CacheBypass,
        ]);
      assert.deepEqual(counts, [
        ["GET /things/{id}", 0, 1, 0, 0],
        ["GET /things/{id}", 1, 0, 0, 0],
        ["GET /things/{id}", 0, 0, 1, 0],
        ["GET /things/{id}", 0, 0, 0, 1],
        ["GET /plain", undefined, undefined, undefined, undefined],
      ]);
    } finally {
      mock.restoreAll();
    }
  });

  it("purges a cached route's entries of the same id after a write route's 2XX, from both tiers", async () => {
    const a = container();
    const b = container();
    await a("GET /things/{id}", { id: "1" });
    await a("GET /things/{id}", { id: "2" });
    assert.equal((await b("GET /things/{id}", { id: "1" })).headers["x-cache"], "hit", "b reads the table");
    const written = await a("POST /things/{id}", { method: "POST", id: "1" });
    assert.equal(written.statusCode, 200);
    assert.equal(
      (await a("GET /things/{id}", { id: "1" })).headers["x-cache"],
      "miss",
      "purged here and in the table",
    );
    assert.equal((await a("GET /things/{id}", { id: "2" })).headers["x-cache"], "hit", "another id is kept");
    assert.equal(
      (await b("GET /things/{id}", { id: "1" })).headers["x-cache"],
      "hit",
      "another container keeps its own copy until its TTL (docs/caching.md says so)",
    );
    const refused = await a("DELETE /things/{id}", { method: "DELETE", id: "2" });
    assert.equal(refused.statusCode, 409);
    assert.equal(
      (await a("GET /things/{id}", { id: "2" })).headers["x-cache"],
      "hit",
      "a refused write purges nothing",
    );
  });

  it("counts CacheTooLarge for an answer a tier would not keep; the other tier still serves it", async () => {
    const emf = captureEmf();
    try {
      const call = container(config(), 1_000); // the container tier keeps nothing this size
      const miss = await call("GET /things/{id}", { id: "1" });
      const hit = await call("GET /things/{id}", { id: "1" });
      assert.equal(hit.headers["x-cache"], "hit", "from the table");
      assert.equal(miss.headers["x-cache"], "miss");
      const counts = emf.filter((record) => "Requests" in record).map((record) => record.CacheTooLarge);
      assert.deepEqual(counts, [1, 0]);
    } finally {
      mock.restoreAll();
    }
  });

  it("serves an aggregate's partial merge but never stores it", async () => {
    const call = container();
    const partial = await call("GET /partial/{id}", { id: "7" });
    assert.equal(partial.statusCode, 200);
    assert.equal(partial.headers["x-gatehouse-complete"], "false");
    const again = await call("GET /partial/{id}", { id: "7" });
    assert.equal(again.headers["x-cache"], "miss", "the partial answer was not stored");
    assert.equal(received.length, 4);
  });

  it("answers X-Cache: bypass on every cached route of a stage that turns caching off", async () => {
    const input = config();
    input.cache = { enabled: false };
    const call = container(input);
    const first = await call("GET /things/{id}", { id: "1" });
    const second = await call("GET /things/{id}", { id: "1" });
    assert.deepEqual([first.headers["x-cache"], second.headers["x-cache"]], ["bypass", "bypass"]);
    assert.equal(received.length, 2);
  });

  it("fetches a public entry behind an authorizer without the caller's identity or Authorization", async () => {
    const call = container();
    const a = await call("GET /shared", { keyId: `pa${run}`, headers: { authorization: "Bearer a" } });
    const sent = received[0] as Received;
    assert.equal(sent.headers["x-gatehouse-principal"], undefined);
    assert.equal(sent.headers.authorization, undefined);
    const b = await call("GET /shared", { keyId: `pb${run}` });
    assert.equal(b.headers["x-cache"], "hit", "one entry for every caller");
    assert.equal(data(b).who, "nobody");
    assert.deepEqual(data(b), data(a));
    assert.equal(received.length, 1);
  });

  it("answers X-Cache: bypass for a request it cannot key, and never stores an answer with Set-Cookie", async () => {
    const call = container();
    const malformed = await call("GET /things/{id}", { id: "1", query: "page=%zz" });
    assert.equal(malformed.statusCode, 200);
    assert.equal(malformed.headers["x-cache"], "bypass");
    const cookie = await call("GET /cookie");
    assert.deepEqual(cookie.cookies, ["session=1"]);
    assert.equal(cookie.headers.etag, undefined, "an answer not stored gets no tag of the gateway's");
    const again = await call("GET /cookie");
    assert.equal(again.headers["x-cache"], "miss");
    const plain = await call("GET /plain");
    assert.equal(plain.headers["x-cache"], undefined, "a route without cache says nothing");
    assert.equal(received.length, 4);
  });
});
