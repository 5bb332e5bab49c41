import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";
import { compileGateway } from "#shared/gateway/compile.ts";
import type { UpstreamClient } from "#shared/upstream/http-client.ts";

// Clients that are never called: compiling sends nothing.
const unused = (async () => {
  throw new Error("compiling must not call an upstream");
}) as unknown as UpstreamClient;
const clients = new Map([
  ["svc", unused],
  ["other", unused],
]);

const input = (): GatewayConfigInput => ({
  auth: {},
  upstreams: {
    svc: { targets: [{ url: "http://127.0.0.1:9" }], timeoutMs: 1_000, retries: 1 },
    other: { targets: [{ url: "http://127.0.0.1:9" }], timeoutMs: 2_000, retries: 0 },
  },
  limits: { plans: { default: { quota: { limit: 10, period: "day" } }, anonymous: {} } },
  routes: {
    "GET /health": { auth: "public", handler: "health" },
    "GET /things/{id}": {
      auth: "public",
      proxy: {
        upstream: "svc",
        path: "/things/{id}",
        versions: { "2": { upstream: "other", path: "/v2/things/{id}" } },
      },
      limit: { cost: 2 },
      cors: { origins: ["https://app.example.com"] },
      deprecated: { since: "2026-10-01T00:00:00Z" },
    },
    "ANY /echo/{rest+}": { auth: "public", proxy: { upstream: "svc", path: "/{rest+}" } },
    "GET /both": {
      auth: "public",
      aggregate: { calls: { a: { upstream: "svc", path: "/a" }, b: { upstream: "other", path: "/b" } } },
    },
  },
});

const compile = (config = input()) =>
  compileGateway(
    loadGateway(
      defineGateway(() => config),
      "test",
    ),
    { clients },
  );

describe("compileGateway: the config as a route table", () => {
  it("holds the proxy and aggregate routes, each with its plan, and leaves system routes out", () => {
    const table = compile();
    assert.deepEqual([...table.routes.keys()], ["GET /things/{id}", "ANY /echo/{rest+}", "GET /both"]);
    const things = table.routes.get("GET /things/{id}");
    assert.equal(things?.plan.kind, "proxy");
    if (things?.plan.kind !== "proxy") return;
    assert.deepEqual([...things.plan.versions.keys()], ["2"]);
    assert.equal(things.plan.versions.get("2")?.upstream, "other");
    assert.deepEqual(things.plan.varies, [table.versionHeader]);
    const both = table.routes.get("GET /both");
    assert.equal(both?.plan.kind, "aggregate");
    if (both?.plan.kind !== "aggregate") return;
    assert.deepEqual(
      both.plan.calls.map((call) => [call.name, call.upstream]),
      [
        ["a", "svc"],
        ["b", "other"],
      ],
    );
  });

  it("carries each route's limit, CORS, deprecation and the time its upstream attempts may take", () => {
    const things = compile().routes.get("GET /things/{id}");
    assert.equal(things?.limit?.cost, 2);
    assert.deepEqual(things?.cors?.rules.origins, ["https://app.example.com"]);
    assert.deepEqual(things?.cors?.methods, ["GET"]);
    assert.equal(things?.deprecated?.since, "2026-10-01T00:00:00Z");
    // The slowest of its upstreams (svc: 2 attempts of 1 s and one 500 ms backoff; other: 2 s), plus a second.
    assert.equal(things?.reserveMs, 2_500 + 1_000);
    const echo = compile().routes.get("ANY /echo/{rest+}");
    assert.equal(echo?.limit, undefined, "a route without a limit is not limited");
    assert.equal(echo?.cors, undefined);
  });

  it("matches API Gateway's route key as declared, exact first, and not a system route", () => {
    const table = compile();
    assert.equal(table.match("GET /things/{id}")?.key, "GET /things/{id}");
    assert.equal(table.match("ANY /echo/{rest+}")?.key, "ANY /echo/{rest+}");
    // serverless-offline reports the request's method and `{rest*}` where API Gateway says ANY and `{rest+}`.
    assert.equal(table.match("PUT /echo/{rest*}")?.key, "ANY /echo/{rest+}");
    assert.equal(table.match("GET /health"), undefined);
    assert.equal(table.match("$default"), undefined);
    assert.equal(table.route("GET", "/health").value, "GET /health");
  });

  it("compiles a cached route's policy and key, keying the headers its versions vary on", () => {
    const config = input();
    const things = config.routes["GET /things/{id}"];
    assert.ok(things && "proxy" in things);
    things.cache = { ttlSeconds: 30, key: { query: ["page"], headers: ["accept-language"] } };
    const table = compile(config);
    const cache = table.routes.get("GET /things/{id}")?.cache;
    assert.equal(cache?.policy.ttlSeconds, 30);
    assert.deepEqual(cache?.keyedHeaders, ["accept-language", "x-api-version"]);
    const key = cache?.keyOf({
      method: "GET",
      pathParameters: { id: "1" },
      rawQueryString: "page=2&utm=x",
      headers: { "x-api-version": "2", "x-forwarded-host": "evil.example" },
      identity: undefined,
    });
    assert.ok(key?.cacheable);
    assert.equal(key.query, "page=2");
    assert.deepEqual(key.headers, { "x-api-version": "2" });
    assert.equal(table.routes.get("GET /both")?.cache, undefined, "a route without cache is not cached");
  });

  it("compiles a write route's invalidations with the path parameters it shares with each cached route", () => {
    const config = input();
    const things = config.routes["GET /things/{id}"];
    const both = config.routes["GET /both"];
    assert.ok(things && "proxy" in things && both && "aggregate" in both);
    things.cache = { ttlSeconds: 30 };
    both.cache = { ttlSeconds: 30 };
    config.routes["PUT /things/{id}"] = {
      auth: "public",
      proxy: { upstream: "svc", path: "/things/{id}" },
      cache: { invalidates: ["GET /things/{id}", "GET /both"] },
    };
    assert.deepEqual(compile(config).routes.get("PUT /things/{id}")?.invalidates, [
      { routeKey: "GET /things/{id}", params: ["id"] },
      { routeKey: "GET /both", params: [] },
    ]);
    assert.deepEqual(compile(config).routes.get("GET /things/{id}")?.invalidates, []);
    config.cache = { enabled: false };
    assert.deepEqual(
      compile(config).routes.get("PUT /things/{id}")?.invalidates,
      [],
      "caching off: nothing to purge",
    );
  });

  it("names the route and the upstream when a client is missing", () => {
    assert.throws(
      () =>
        compileGateway(loadGateway(defineGateway(input), "test"), {
          clients: new Map([["svc", unused]]),
        }),
      /route GET \/things\/\{id\}: no upstream other/,
    );
  });
});
