import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_CACHE_STATUSES } from "#shared/config/cache.ts";
import { routeCachePolicy } from "#shared/config/derive.ts";
import {
  defineGateway,
  GatewayConfigError,
  type GatewayConfigInput,
  loadGateway,
  type RouteInput,
} from "#shared/config/gateway.ts";
import definition from "../../gateway.config.ts";

const JWT = { jwt: { scopes: [] as string[] } };
const proxy = { upstream: "things", path: "/things" };

/** A config with one upstream and the given routes. */
const withRoutes = (
  routes: Record<string, RouteInput>,
  cache?: GatewayConfigInput["cache"],
): GatewayConfigInput => ({
  auth: {
    issuers: [{ kind: "oidc", id: "idp", issuer: "https://idp.example.com", audience: ["api"] }],
  },
  upstreams: { things: { targets: [{ url: "https://things.internal" }] } },
  routes,
  ...(cache ? { cache } : {}),
});

const load = (config: GatewayConfigInput) =>
  loadGateway(
    defineGateway(() => config),
    "test",
  );

function problemsOf(config: GatewayConfigInput): string[] {
  try {
    load(config);
  } catch (error) {
    assert.ok(error instanceof GatewayConfigError);
    return error.problems;
  }
  assert.fail("the config was accepted");
}

describe("cache config", () => {
  it("leaves the project's own config valid for every stage, with its demo routes cached", () => {
    for (const stage of ["local", "test", "dev", "prod"]) {
      const config = loadGateway(definition, stage);
      const cached = Object.keys(config.routes).filter((key) => routeCachePolicy(config, key));
      assert.deepEqual(cached, ["GET /v1/orders", "GET /v1/prices", "GET /v1/prices/{id}"], stage);
    }
  });

  it("fills a route's policy from the stage defaults, field by field", () => {
    const config = load(
      withRoutes(
        {
          "GET /a": { auth: "public", proxy, cache: {} },
          "GET /b": { auth: JWT, proxy, cache: { ttlSeconds: 5, key: { query: ["q"] } } },
        },
        { defaults: { ttlSeconds: 300, staleIfErrorSeconds: 600 } },
      ),
    );
    assert.deepEqual(routeCachePolicy(config, "GET /a"), {
      ttlSeconds: 300,
      statuses: DEFAULT_CACHE_STATUSES,
      respectUpstreamCacheControl: false,
      staleWhileRevalidateSeconds: 0,
      staleIfErrorSeconds: 600,
      scope: "public",
      key: { query: [], headers: [] },
    });
    const b = routeCachePolicy(config, "GET /b");
    assert.equal(b?.ttlSeconds, 5);
    assert.equal(b?.staleIfErrorSeconds, 600);
    assert.equal(b?.scope, "principal", "behind an authorizer the default scope is the principal");
    assert.deepEqual(b?.key, { query: ["q"], headers: [] });
  });

  it("caches nothing for a route without cache, nor on a stage with enabled: false", () => {
    const routes = {
      "GET /a": { auth: "public", proxy, cache: {} },
      "GET /b": { auth: "public", proxy },
    } as const;
    const on = load(withRoutes(routes));
    assert.ok(routeCachePolicy(on, "GET /a"));
    assert.equal(routeCachePolicy(on, "GET /b"), undefined);
    const off = load(withRoutes(routes, { enabled: false }));
    assert.equal(routeCachePolicy(off, "GET /a"), undefined);
  });

  it("refuses ttlSeconds outside 0 to 3600 and statuses that describe the caller", () => {
    const problems = problemsOf(
      withRoutes({
        "GET /a": { auth: "public", proxy, cache: { ttlSeconds: 3601 } },
        "GET /b": { auth: "public", proxy, cache: { ttlSeconds: -1, statuses: [200, 429] } },
      }),
    );
    assert.ok(
      problems.some((p) => p.startsWith("routes.GET /a.cache.ttlSeconds: at most 3600 (0 to 3600)")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("routes.GET /b.cache.ttlSeconds: at least 0 (0 to 3600)")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /^routes\.GET \/b\.cache\.statuses\.1: a cacheable status is one of/.test(p)),
      problems.join("\n"),
    );
  });

  it("refuses cache on routes other than GET and HEAD, and says to declare a GET beside an ANY", () => {
    const problems = problemsOf(
      withRoutes({
        "ANY /things": { auth: JWT, proxy, cache: {} },
        "OPTIONS /x": { auth: "public", proxy, cache: {} },
        "POST /things": { auth: JWT, proxy, cache: { ttlSeconds: 60 } },
      }),
    );
    assert.deepEqual(problems, [
      'routes.ANY /things.cache: an ANY route also takes writes, and only GET and HEAD answers are cached; declare "GET /things" beside it with the cache',
      "routes.OPTIONS /x.cache: only GET and HEAD answers are cached; remove cache",
      "routes.POST /things.cache.ttlSeconds: a POST route is never cached (only GET and HEAD are); a write route's cache says only invalidates, so remove ttlSeconds",
      'routes.POST /things.cache: a POST route is never cached; say invalidates: ["GET /…"] to purge the routes it changes, or remove cache',
    ]);
  });

  it("refuses a handler route's cache", () => {
    const problems = problemsOf(
      withRoutes({ "GET /health": { auth: "public", handler: "health", cache: {} } as never }),
    );
    assert.ok(
      problems.some((p) =>
        p.startsWith("routes.GET /health.cache: a handler route's function makes its own answer"),
      ),
      problems.join("\n"),
    );
  });

  it('refuses scope "public" behind an authorizer unless the route says sameForEveryCaller', () => {
    const problems = problemsOf(
      withRoutes({ "GET /catalogue": { auth: JWT, proxy, cache: { scope: "public" } } }),
    );
    assert.deepEqual(problems, [
      'routes.GET /catalogue.cache.scope: "public" behind an authorizer gives every caller the first caller\'s answer; if the answer does not depend on who calls, add sameForEveryCaller: true, else use "tenant" or "principal"',
    ]);
    const config = load(
      withRoutes({
        "GET /catalogue": { auth: JWT, proxy, cache: { scope: "public", sameForEveryCaller: true } },
      }),
    );
    assert.equal(routeCachePolicy(config, "GET /catalogue")?.scope, "public");
  });

  it("refuses sameForEveryCaller where it means nothing, and identity scopes on a public route", () => {
    const problems = problemsOf(
      withRoutes({
        "GET /a": { auth: JWT, proxy, cache: { sameForEveryCaller: true } },
        "GET /b": { auth: "public", proxy, cache: { scope: "public", sameForEveryCaller: true } },
        "GET /c": { auth: "public", proxy, cache: { scope: "principal" } },
        "GET /d": { auth: "public", proxy, cache: { scope: "tenant" } },
      }),
    );
    assert.deepEqual(problems, [
      'routes.GET /a.cache.sameForEveryCaller: only means something with scope: "public"; remove it or say scope: "public"',
      "routes.GET /b.cache.sameForEveryCaller: a public route's entries are shared anyway; remove it",
      'routes.GET /c.cache.scope: a public route has no caller identity to keep entries apart by principal; use "public", or put the route behind auth',
      'routes.GET /d.cache.scope: a public route has no caller identity to keep entries apart by tenant; use "public", or put the route behind auth',
    ]);
  });

  it("refuses credentials and the gateway's identity headers as key headers", () => {
    const problems = problemsOf(
      withRoutes({
        "GET /a": {
          auth: JWT,
          proxy,
          cache: {
            key: { headers: ["accept-language", "authorization", "cookie", "x-gatehouse-principal"] },
          },
        },
      }),
    );
    assert.deepEqual(
      problems.map((p) => p.split(":")[0]),
      [
        "routes.GET /a.cache.key.headers.1",
        "routes.GET /a.cache.key.headers.2",
        "routes.GET /a.cache.key.headers.3",
      ],
    );
    assert.match(problems[0] ?? "", /say scope: "principal"/);
  });

  it("accepts a write route that invalidates cached routes, and names one that is not cached", () => {
    const config = load(
      withRoutes({
        "GET /things/{id}": { auth: JWT, proxy, cache: {} },
        "PUT /things/{id}": { auth: JWT, proxy, cache: { invalidates: ["GET /things/{id}"] } },
      }),
    );
    assert.equal(routeCachePolicy(config, "PUT /things/{id}"), undefined, "a write route has no policy");
    const problems = problemsOf(
      withRoutes({
        "GET /things/{id}": { auth: JWT, proxy, cache: {} },
        "GET /other": { auth: JWT, proxy },
        "DELETE /things/{id}": {
          auth: JWT,
          proxy,
          cache: { invalidates: ["GET /things/{id}", "GET /other", "GET /missing"] },
        },
      }),
    );
    assert.deepEqual(problems, [
      'routes.DELETE /things/{id}.cache.invalidates.1: "GET /other" is not a cached route; give it a cache or remove it from the list',
      'routes.DELETE /things/{id}.cache.invalidates.2: "GET /missing" is not a cached route; give it a cache or remove it from the list',
    ]);
  });

  it("refuses invalidates on a cached route and a cache that stores nothing", () => {
    const problems = problemsOf(
      withRoutes({
        "GET /a": { auth: "public", proxy, cache: { ttlSeconds: 60, invalidates: ["GET /b"] } },
        "GET /b": { auth: "public", proxy, cache: { ttlSeconds: 0 } },
        "GET /c": { auth: "public", proxy, cache: { ttlSeconds: 0, staleIfErrorSeconds: 300 } },
      }),
    );
    assert.deepEqual(problems, [
      "routes.GET /a.cache.invalidates: a GET route is cached, it invalidates nothing; move invalidates to the write route that changes this one",
      "routes.GET /b.cache.ttlSeconds: 0 with no staleIfErrorSeconds stores nothing; raise ttlSeconds, set staleIfErrorSeconds, or remove cache",
    ]);
  });

  it("refuses an unknown member of a route's cache and of the stage's, naming what it takes", () => {
    const problems = problemsOf(
      withRoutes(
        { "GET /a": { auth: "public", proxy, cache: { ttl: 60 } as never } },
        {
          memory: { maxBytes: 1024, size: 1 } as never,
        },
      ),
    );
    assert.ok(
      problems.some((p) => /^routes\.GET \/a\.cache\.ttl: cache has no member "ttl"; remove it/.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /^cache\.memory\.size: cache\.memory has no member "size"/.test(p)),
      problems.join("\n"),
    );
  });
});

describe("cache tags", () => {
  it('accepts tags whose {params} are the route\'s, such as ["products", "product:{id}"]', () => {
    const config = load(
      withRoutes({
        "GET /products/{id}": { auth: "public", proxy, cache: { tags: ["products", "product:{id}"] } },
        "GET /files/{owner}/{rest+}": {
          auth: "public",
          proxy,
          cache: { tags: ["owner:{owner}/{rest}", "file={rest}"] },
        },
      }),
    );
    const route = config.routes["GET /products/{id}"];
    assert.ok(route && "cache" in route);
    assert.deepEqual(route.cache?.tags, ["products", "product:{id}"]);
  });

  it("refuses a {param} the route lacks, naming the route's parameters and the fix", () => {
    const problems = problemsOf(
      withRoutes({
        "GET /products/{id}": { auth: "public", proxy, cache: { tags: ["product:{sku}"] } },
        "GET /products": { auth: "public", proxy, cache: { tags: ["list:{id}"] } },
      }),
    );
    assert.deepEqual(problems, [
      "routes.GET /products/{id}.cache.tags.0: {sku} is not a path parameter of the route (it has {id}); use one of those, or write the tag without it",
      "routes.GET /products.cache.tags.0: {id} is not a path parameter of the route (it has none); use one of those, or write the tag without it",
    ]);
  });

  it("refuses a {param} not followed by a separator or the end, since its value could not be read back", () => {
    const problems = problemsOf(
      withRoutes({
        "GET /a/{x}/{y}": { auth: "public", proxy, cache: { tags: ["{x}{y}", "p{x}-v", "ok:{x}:{y}"] } },
      }),
    );
    assert.deepEqual(problems, [
      "routes.GET /a/{x}/{y}.cache.tags.0: {x} is followed by {y}; a parameter's value runs to the next separator (: / # = @ , ; |) or the end of the tag, so put one after it",
      'routes.GET /a/{x}/{y}.cache.tags.1: {x} is followed by "-"; a parameter\'s value runs to the next separator (: / # = @ , ; |) or the end of the tag, so put one after it',
    ]);
  });

  it("refuses tags on a write route, characters outside a tag's, and an empty list", () => {
    const problems = problemsOf(
      withRoutes({
        "GET /a/{id}": { auth: "public", proxy, cache: { tags: ["a b"] } },
        "GET /b": { auth: "public", proxy, cache: { tags: [] } },
        "PUT /a/{id}": { auth: "public", proxy, cache: { invalidates: ["GET /a/{id}"], tags: ["a"] } },
      }),
    );
    assert.equal(problems.length, 2, problems.join("\n"));
    assert.match(problems[0] ?? "", /^routes\.GET \/a\/\{id\}\.cache\.tags\.0: a tag is letters, digits/);
    assert.equal(problems[1], "routes.GET /b.cache.tags: list at least one tag, or remove tags");
    const write = problemsOf(
      withRoutes({
        "GET /a/{id}": { auth: "public", proxy, cache: {} },
        "PUT /a/{id}": { auth: "public", proxy, cache: { invalidates: ["GET /a/{id}"], tags: ["a"] } },
      }),
    );
    assert.deepEqual(write, [
      "routes.PUT /a/{id}.cache.tags: a PUT route is never cached (only GET and HEAD are); a write route's cache says only invalidates, so remove tags",
    ]);
  });
});
