import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  defineGateway,
  GatewayConfigError,
  type GatewayConfigInput,
  loadGateway,
  routeWorstCaseMs,
  upstreamWorstCaseMs,
} from "#shared/config/gateway.ts";
import { RETRY_BACKOFF } from "#shared/upstream/retry-backoff.ts";
import definition from "../../gateway.config.ts";

const base = (): GatewayConfigInput => ({
  auth: {
    issuers: [{ kind: "oidc", id: "idp", issuer: "https://idp.example.com", audience: ["api"] }],
  },
  routes: {
    "GET /health": { auth: "public", handler: "health" },
    "GET /me": { auth: { jwt: { scopes: ["me:read"] } }, handler: "whoami" },
  },
});

/** The problems loadGateway reports for a config, one string per bad field. */
function problemsOf(config: GatewayConfigInput): string[] {
  try {
    loadGateway(
      defineGateway(() => config),
      "test",
    );
  } catch (error) {
    assert.ok(error instanceof GatewayConfigError);
    assert.match(error.message, /gateway\.config\.ts is invalid for stage "test"/);
    return error.problems;
  }
  assert.fail("the config was accepted");
}

describe("gateway config validation", () => {
  it("accepts the project's own config for every stage, with defaults filled in", () => {
    for (const stage of ["local", "test", "dev", "prod"]) {
      const config = loadGateway(definition, stage);
      assert.equal(config.routes["GET /health"]?.auth, "public");
      assert.equal(config.auth.clockSkewSeconds, 60);
      assert.equal(config.auth.adminScope, "gatehouse:admin");
    }
  });

  it("takes a proxy route's alarm thresholds, and refuses them on a handler route", () => {
    const config = base();
    config.upstreams = { svc: { targets: [{ url: "https://svc.example.com", weight: 1 }] } };
    config.routes["GET /svc"] = {
      auth: "public",
      proxy: { upstream: "svc", path: "/" },
      alarms: { latencyP99Ms: 250, errorRate: 0.01 },
    };
    const gateway = loadGateway(
      defineGateway(() => config),
      "test",
    );
    assert.deepEqual(gateway.routes["GET /svc"]?.alarms, { latencyP99Ms: 250, errorRate: 0.01 });

    const handler = base();
    handler.routes["GET /health"] = {
      auth: "public",
      handler: "health",
      alarms: { errorRate: 0.5 },
    } as never;
    assert.match(problemsOf(handler).join("\n"), /routes\.GET \/health\.alarms: a handler route is watched/);
  });

  it("requires an audience for an OIDC issuer and names the field", () => {
    const config = base();
    config.auth.issuers = [{ kind: "oidc", id: "idp", issuer: "https://idp.example.com", audience: [] }];
    const problems = problemsOf(config);
    assert.equal(problems.length, 1);
    assert.match(problems[0] ?? "", /^auth\.issuers\.0\.audience: audience: list at least one/);
  });

  it("refuses http:// issuers and JWKS URIs", () => {
    const config = base();
    config.auth.issuers = [
      {
        kind: "oidc",
        id: "idp",
        issuer: "http://idp.example.com",
        audience: ["api"],
        jwksUri: "http://idp.example.com/jwks",
      },
    ];
    const problems = problemsOf(config);
    assert.ok(
      problems.some((p) => /^auth\.issuers\.0\.issuer: .*https:\/\//.test(p)),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => /^auth\.issuers\.0\.jwksUri: /.test(p)),
      problems.join("\n"),
    );
  });

  it("requires a Cognito client id and token use", () => {
    const config = base();
    config.auth.issuers = [
      { kind: "cognito", id: "pool", userPoolId: "us-east-1_AbC123", clientId: [] } as never,
    ];
    const problems = problemsOf(config);
    assert.ok(
      problems.some((p) => p.startsWith("auth.issuers.0.clientId:")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("auth.issuers.0.tokenUse: is required")),
      problems.join("\n"),
    );
  });

  it("refuses bad CIDR blocks, route keys and auth shapes, all at once", () => {
    const config = base();
    config.ipRules = { deny: ["10.0.0.0/33", "not-an-ip"], allow: ["2001:db8::/32"] };
    config.routes = {
      "GET /health": { auth: "public", handler: "health" },
      "FETCH /x": { auth: "public", handler: "health" },
      "GET /y": { auth: { jwt: {}, apiKey: {} } as never, handler: "whoami" },
    };
    const problems = problemsOf(config);
    assert.ok(
      problems.some((p) => p.startsWith("ipRules.deny.0: must be a CIDR block")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("ipRules.deny.1: must be a CIDR block")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.includes('a route key is "METHOD /path"')),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("routes.GET /y.auth: auth must be")),
      problems.join("\n"),
    );
  });

  it("refuses upstreams that point at credentials, link-local or metadata addresses", () => {
    const config = base();
    config.upstreams = {
      meta: { targets: [{ url: "http://169.254.169.254/latest" }] },
      v6: { targets: [{ url: "http://[fe80::1]:8080" }] },
      gcp: { targets: [{ url: "http://metadata.google.internal" }] },
      creds: { targets: [{ url: "https://user:pass@users.internal" }] },
      ftp: { targets: [{ url: "ftp://files.internal" }] },
      fine: { targets: [{ url: "https://users.internal:8443/api" }] },
    };
    const problems = problemsOf(config);
    for (const name of ["meta", "v6", "gcp", "creds", "ftp"]) {
      assert.ok(
        problems.some((p) => p.startsWith(`upstreams.${name}.targets.0.url:`)),
        `${name}: ${problems.join("\n")}`,
      );
    }
    assert.ok(!problems.some((p) => p.startsWith("upstreams.fine")), problems.join("\n"));
  });

  it("checks proxy routes against their upstream and the 30 s limit", () => {
    const config = base();
    config.upstreams = {
      users: { targets: [{ url: "https://users.internal" }], timeoutMs: 10_000, retries: 2 },
    };
    config.routes = {
      "GET /health": { auth: "public", handler: "health" },
      "GET /a/{id}": { auth: "public", proxy: { upstream: "nobody", path: "/a/{id}" } },
      "GET /b/{id}": { auth: "public", proxy: { upstream: "users", path: "/b/{other}" } },
    };
    const problems = problemsOf(config);
    assert.ok(
      problems.includes(
        'routes.GET /a/{id}.proxy.upstream: "nobody" is not in upstreams (users); declare it or fix the name',
      ),
      problems.join("\n"),
    );
    assert.ok(
      problems.includes(
        "routes.GET /b/{id}.proxy.path: {other} is not a parameter of the route; use one of the route key's",
      ),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) =>
        /^upstreams\.users: 3 attempts of 10000 ms .*; lower timeoutMs or retries$/.test(p),
      ),
      problems.join("\n"),
    );
  });

  it("checks mappings, canaries, aggregates and lambda upstreams, naming each bad field", () => {
    const config = base();
    config.upstreams = {
      svc: { targets: [{ url: "https://svc.internal" }], timeoutMs: 1_000, retries: 1 },
      fn: { kind: "lambda", function: "not a function name!" },
    };
    config.routes = {
      "GET /health": { auth: "public", handler: "health" },
      "GET /a": {
        auth: "public",
        proxy: {
          upstream: "svc",
          path: "/a",
          request: {
            headers: {
              set: { "x-gatehouse-principal": "admin", traceparent: "00-chosen-by-config" },
              rename: { "x-api-key": "x-upstream-key" },
              remove: ["X-Upper"],
            },
          },
          response: { body: "{ a: ", status: { "99": 200, "404": 700 } },
          canary: { upstream: "nowhere", path: "/a", weight: 120 },
        },
      },
      "POST /b/{id}": {
        auth: "public",
        aggregate: {
          calls: {
            one: { upstream: "svc", path: "/one", query: { user: "{nope}" }, timeoutMs: 9_000 },
            two: { upstream: "ghost", path: "/two/{id}" },
          },
          merge: "length(",
        },
      },
    };
    const problems = problemsOf(config);
    const expect = [
      /^upstreams\.fn\.function: a function is a serverless\.yml function key/,
      /^routes\.GET \/a\.proxy\.request\.headers\.set\.x-gatehouse-principal: this header is the gateway's own/,
      /^routes\.GET \/a\.proxy\.request\.headers\.set\.traceparent: this header is the gateway's own/,
      /^routes\.GET \/a\.proxy\.request\.headers\.remove\.0: a header name in lower case/,
      /^routes\.GET \/a\.proxy\.request\.headers\.rename\.x-api-key: this header is the gateway's own/,
      /^routes\.GET \/a\.proxy\.response\.body: response\.body is not valid JMESPath/,
      /^routes\.GET \/a\.proxy\.response\.status\.99: a status code such as 404/,
      /^routes\.GET \/a\.proxy\.response\.status\.404: /,
      /^routes\.GET \/a\.proxy\.canary\.weight: a canary weight is a percentage/,
      /^routes\.POST \/b\/\{id\}\.aggregate\.merge: aggregate\.merge is not valid JMESPath/,
    ];
    for (const pattern of expect)
      assert.ok(
        problems.some((p) => pattern.test(p)),
        `${pattern}\n${problems.join("\n")}`,
      );

    // The cross-field checks run once the shapes are right.
    config.upstreams.fn = { kind: "lambda", function: "catalog" };
    const route = config.routes["GET /a"];
    assert.ok(route?.proxy);
    route.proxy = { upstream: "svc", path: "/a", canary: { upstream: "nowhere", path: "/a", weight: 10 } };
    const aggregate = config.routes["POST /b/{id}"]?.aggregate;
    assert.ok(aggregate);
    aggregate.merge = "one";
    const crossField = problemsOf(config);
    for (const expected of [
      'routes.GET /a.proxy.canary.upstream: "nowhere" is not in upstreams (svc, fn); declare it or fix the name',
      "routes.POST /b/{id}.aggregate: an aggregate route answers GET (its calls are GETs); make the route GET or use proxy",
      "routes.POST /b/{id}.aggregate.calls.one.query.user: {nope} is not a parameter of the route; use one of the route key's",
      'routes.POST /b/{id}.aggregate.calls.two.upstream: "ghost" is not in upstreams (svc, fn); declare it or fix the name',
    ]) {
      assert.ok(crossField.includes(expected), `${expected}\n${crossField.join("\n")}`);
    }
    assert.ok(
      crossField.some((p) =>
        p.startsWith("routes.POST /b/{id}.aggregate.calls.one.timeoutMs: longer than every attempt"),
      ),
      crossField.join("\n"),
    );
  });

  it("compiles every body schema and expression when it checks the config", () => {
    const config = base();
    config.upstreams = { svc: { targets: [{ url: "https://svc.internal" }] } };
    config.routes = {
      ...config.routes,
      "POST /a": {
        auth: "public",
        body: { schema: { type: "no-such-type" } },
        proxy: {
          upstream: "svc",
          path: "/a",
          versions: { v2: { upstream: "svc", path: "/a", request: { body: "a[" } } },
        },
      },
    };
    const problems = problemsOf(config);
    assert.ok(
      problems.some((p) => p.startsWith("routes.POST /a.body.schema: not a valid JSON Schema")),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) =>
        p.startsWith("routes.POST /a.proxy.versions.v2.request.body: request.body is not valid JMESPath"),
      ),
      problems.join("\n"),
    );
  });

  it("lets a Lambda upstream give its function's code once, and only for a function of this service", () => {
    const config = base();
    const arn = "arn:aws:lambda:us-east-1:123456789012:function:elsewhere";
    const code = "handlers/services/catalog.handler";
    config.upstreams = {
      remote: { kind: "lambda", function: arn, code, timeoutMs: 1_000, retries: 0 },
      catalog: { kind: "lambda", function: "catalog", code, timeoutMs: 1_000, retries: 0 },
      "catalog-json": {
        kind: "lambda",
        function: "catalog",
        code,
        payload: "json",
        timeoutMs: 1_000,
        retries: 0,
      },
    };
    assert.deepEqual(problemsOf(config), [
      "upstreams.remote.code: the function is an ARN, deployed elsewhere; remove code, or name a function key of this service",
      'upstreams.catalog-json.code: upstreams.catalog already gives the code of function "catalog"; remove one of them',
    ]);
    config.upstreams = {
      loose: {
        kind: "lambda",
        function: "loose",
        code: "handlers/services/loose",
        timeoutMs: 1_000,
        retries: 0,
      },
    };
    assert.deepEqual(problemsOf(config), [
      "upstreams.loose.code: code is <file without extension>.<export>, such as handlers/services/catalog.handler",
    ]);
  });

  it("refuses compression levels out of range and a mapped content coding, naming the fields", () => {
    const config = base();
    config.compression = { minBytes: -1, gzipLevel: 0, brotliQuality: 12 };
    config.upstreams = { svc: { targets: [{ url: "https://svc.internal" }] } };
    config.routes["GET /a"] = {
      auth: "public",
      proxy: { upstream: "svc", path: "/a", response: { headers: { set: { "content-encoding": "gzip" } } } },
    };
    const problems = problemsOf(config);
    for (const field of ["compression.minBytes", "compression.gzipLevel", "compression.brotliQuality"]) {
      assert.ok(
        problems.some((p) => p.startsWith(`${field}: `)),
        `${field}\n${problems.join("\n")}`,
      );
    }
    assert.ok(
      problems.some((p) =>
        /^routes\.GET \/a\.proxy\.response\.headers\.set\.content-encoding: this header is the gateway's own/.test(
          p,
        ),
      ),
      problems.join("\n"),
    );
    const defaults = loadGateway(
      defineGateway(() => base()),
      "test",
    );
    assert.deepEqual(defaults.compression, { minBytes: 1_024, gzipLevel: 1, brotliQuality: 1 });
  });

  it("refuses body and answer limits that cannot fit Lambda's 6 MB, base64 included, naming the fields", () => {
    const config = base();
    config.upstreams = {
      old: { targets: [{ url: "https://old.internal" }], maxResponseBytes: 5_000_000 },
      edge: { targets: [{ url: "https://edge.internal" }], maxResponseBytes: 4_694_016 },
    };
    config.routes["POST /files"] = {
      auth: "public",
      proxy: { upstream: "edge", path: "/files" },
      body: { maxBytes: 6_000_000, contentTypes: ["*/*"] },
    };
    config.routes["POST /forms"] = {
      auth: "public",
      proxy: { upstream: "edge", path: "/forms" },
      body: { maxBytes: 4_694_017, contentTypes: ["application/json", "application/x-www-form-urlencoded"] },
    };
    config.routes["POST /json"] = {
      auth: "public",
      proxy: { upstream: "edge", path: "/json" },
      body: { maxBytes: 6_000_000 },
    };
    config.routes["POST /huge"] = {
      auth: "public",
      proxy: { upstream: "edge", path: "/huge" },
      body: { maxBytes: 6_291_456 },
    };
    const problems = problemsOf(config);
    const refused = (field: string) => problems.some((p) => p.startsWith(`${field}: at most `));
    assert.ok(refused("upstreams.old.maxResponseBytes"), problems.join("\n"));
    assert.ok(!refused("upstreams.edge.maxResponseBytes"), "4,694,016 bytes fit in base64");
    assert.ok(refused("routes.POST /huge.body.maxBytes"), problems.join("\n"));
    delete config.upstreams.old;
    delete config.routes["POST /huge"];
    const crossField = problemsOf(config);
    assert.deepEqual(
      crossField.map((p) => p.split(":")[0]),
      ["routes.POST /files.body.maxBytes", "routes.POST /forms.body.maxBytes"],
      "a JSON-only body of 6,000,000 bytes fits; binary ones are counted in base64",
    );
  });

  it("refuses trusted proxies that are no CIDR block, or that trust every address, naming each", () => {
    const config = base();
    config.trustedProxies = ["198.51.100.0/24", "cdn.example.com", "0.0.0.0/0", "::/0"];
    const problems = problemsOf(config);
    assert.match(problems.find((p) => p.startsWith("trustedProxies.1: ")) ?? "", /must be a CIDR block/);
    for (const index of [2, 3]) {
      assert.match(
        problems.find((p) => p.startsWith(`trustedProxies.${index}: `)) ?? "",
        /trusts every address, so any client could forge its X-Forwarded-For/,
      );
    }
    assert.equal(problems.length, 3, problems.join("\n"));
  });

  it("lets a route pass only the gateway's own security headers from its upstream, never CORS ones", () => {
    const config = base();
    config.upstreams = { svc: { targets: [{ url: "https://svc.internal" }] } };
    config.routes["GET /a"] = {
      auth: "public",
      proxy: {
        upstream: "svc",
        path: "/a",
        response: { passHeaders: ["cache-control", "access-control-allow-origin", "x-custom"] },
      },
    };
    config.routes["GET /b"] = {
      auth: "public",
      proxy: {
        upstream: "svc",
        path: "/b",
        response: { headers: { set: { "access-control-allow-origin": "*" } } },
      },
    };
    const problems = problemsOf(config);
    const about = (field: string) => problems.filter((p) => p.startsWith(`${field}: `));
    assert.deepEqual(about("routes.GET /a.proxy.response.passHeaders.0"), []);
    assert.match(
      about("routes.GET /a.proxy.response.passHeaders.1")[0] ?? "",
      /CORS headers are always the gateway's/,
    );
    assert.match(
      about("routes.GET /a.proxy.response.passHeaders.2")[0] ?? "",
      /only the gateway's own headers need listing/,
    );
    assert.match(
      about("routes.GET /b.proxy.response.headers.set.access-control-allow-origin")[0] ?? "",
      /this header is the gateway's own/,
    );
    assert.equal(problems.length, 3, problems.join("\n"));
  });

  it("checks usage plans and route limits against each other", () => {
    const config = base();
    config.upstreams = { svc: { targets: [{ url: "https://svc.internal" }] } };
    config.routes = {
      "GET /health": { auth: "public", handler: "health" },
      "GET /a": { auth: { apiKey: {} }, proxy: { upstream: "svc", path: "/a" }, limit: { cost: 5 } },
      "GET /open": { auth: "public", proxy: { upstream: "svc", path: "/o" }, limit: { subject: "apiKey" } },
      "GET /me": { auth: { jwt: {} }, limit: {}, handler: "whoami" },
      "GET /status": { auth: "public", limit: {}, handler: "health" },
    };
    assert.ok(
      problemsOf(config).includes(
        "routes.GET /a.limit: needs a top-level limits section with plans; add limits.plans",
      ),
    );
    config.limits = {
      plans: {
        small: { rate: { perSecond: 1, burst: 2 }, routes: ["GET /health"] },
        odd: { rate: { perSecond: 1000, burst: 10 }, quota: { limit: 0, period: "year" as "day" } },
      },
    };
    // Shapes first: the cross-field checks only run on a config whose fields are each valid.
    const problems = problemsOf(config);
    for (const pattern of [
      /^limits\.plans\.odd\.quota\.limit: /,
      /^limits\.plans\.odd\.quota\.period: a quota period/,
    ]) {
      assert.ok(
        problems.some((p) => pattern.test(p)),
        `${pattern}\n${problems.join("\n")}`,
      );
    }
    config.limits.plans.odd = { rate: { perSecond: 1000, burst: 10 } };
    const crossField = problemsOf(config);
    for (const expected of [
      'routes.GET /a.limit: plan "default" is not in limits.plans; add it (it is who gets no other plan)',
      'routes.GET /open.limit: plan "anonymous" is not in limits.plans; add it (it is who gets no other plan)',
      "routes.GET /open.limit.subject: a public route has no apiKey; use ip",
      "routes.GET /status.limit: a public system route has no caller to count; remove limit and use throttle (API Gateway's) instead",
      'limits.plans.small.routes: "GET /health" is not a limited route; give it a limit or remove it from the list',
      "limits.plans.small.rate.burst: below the largest route cost (5) per shard; no such request could pass; raise the burst or lower shards",
      "limits.plans.odd.rate: burst / perSecond is under 100 ms; raise the burst",
    ]) {
      assert.ok(crossField.includes(expected), `${expected}\n${crossField.join("\n")}`);
    }
    assert.deepEqual(
      crossField.filter((p) => p.startsWith("routes.GET /me.limit")),
      ['routes.GET /me.limit: plan "default" is not in limits.plans; add it (it is who gets no other plan)'],
      "a JWT system route may be limited (its only problem here is the missing default plan)",
    );
    config.limits.timeoutMs = 20_000;
    assert.ok(
      problemsOf(config).includes(
        "routes.GET /a.limit: limits.timeoutMs (20000 ms) and the route's upstream attempts (16000 ms) pass the gateway's 28 s; lower one of them",
      ),
      problemsOf(config).join("\n"),
    );
  });

  it("refuses CORS that would admit any site with credentials, and malformed origins", () => {
    const config = base();
    config.cors = { origins: ["*"], credentials: true };
    config.routes = {
      "GET /health": {
        auth: "public",
        handler: "health",
        cors: { origins: ["https://app.example.com/path", "*.example.com", "https://a.*.example.com"] },
      },
    };
    const problems = problemsOf(config);
    assert.ok(
      problems.some((p) => p.startsWith('cors: origins "*" with credentials')),
      problems.join("\n"),
    );
    for (const index of [0, 1, 2]) {
      assert.ok(
        problems.some((p) => p.startsWith(`routes.GET /health.cors.origins.${index}: an origin is`)),
        problems.join("\n"),
      );
    }
  });

  it("refuses a JWT route with no issuer, and duplicate issuer ids", () => {
    const noIssuer = base();
    noIssuer.auth.issuers = [];
    assert.deepEqual(problemsOf(noIssuer), [
      "routes.GET /me.auth: needs a JWT but auth.issuers is empty; add an issuer or use apiKey",
    ]);
    const duplicate = base();
    const issuer = { kind: "oidc" as const, id: "idp", issuer: "https://idp.example.com", audience: ["api"] };
    duplicate.auth.issuers = [issuer, { ...issuer, issuer: "https://other.example.com" }];
    assert.deepEqual(problemsOf(duplicate), [
      'auth.issuers.1.id: "idp" is used twice; give each issuer its own id',
    ]);
  });

  it("refuses issuer ids that would make a token's principal read as an API key's or an anonymous caller's", () => {
    const config = base();
    const issuer = { kind: "oidc" as const, issuer: "https://idp.example.com", audience: ["api"] };
    config.auth.issuers = [
      { ...issuer, id: "key" },
      { ...issuer, id: "anonymous" },
    ];
    const refusal =
      'an issuer id may not be "key" or "anonymous": principals of API keys and anonymous callers begin with those; pick another id';
    assert.deepEqual(problemsOf(config), [`auth.issuers.0.id: ${refusal}`, `auth.issuers.1.id: ${refusal}`]);
  });
});

describe("preflight routes", () => {
  it("gives every browser-callable ANY route behind an authorizer a public OPTIONS route on its path", () => {
    const gateway = loadGateway(definition, "prod");
    const anyRoutes = Object.entries(gateway.routes).filter(
      ([key, route]) =>
        key.startsWith("ANY ") &&
        route.auth !== "public" &&
        route.cors !== false &&
        (route.cors ?? gateway.cors) !== undefined,
    );
    assert.ok(anyRoutes.length > 0, "the example config has such a route");
    for (const [key] of anyRoutes) {
      const preflight = gateway.routes[key.replace(/^ANY /, "OPTIONS ")];
      assert.equal(preflight?.auth, "public", `${key} has a public preflight route`);
      assert.equal(preflight?.kind, "preflight", `${key}'s preflight route is marked as such`);
    }
  });

  it("adds none for explicit methods, public routes, routes without CORS, or one the config declares", () => {
    const upstreams = { svc: { targets: [{ url: "https://svc.internal" }] } };
    const proxy = { upstream: "svc", path: "/{x+}" };
    const load = (routes: GatewayConfigInput["routes"], cors?: GatewayConfigInput["cors"]) =>
      Object.keys(
        loadGateway(
          defineGateway(() => ({ auth: {}, ...(cors ? { cors } : {}), upstreams, routes })),
          "test",
        ).routes,
      ).sort();
    const cors = { origins: ["https://app.example.com"] };
    assert.deepEqual(load({ "GET /a/{x+}": { auth: { apiKey: {} }, proxy } }, cors), ["GET /a/{x+}"]);
    assert.deepEqual(load({ "ANY /b/{x+}": { auth: "public", proxy } }, cors), ["ANY /b/{x+}"]);
    assert.deepEqual(load({ "ANY /c/{x+}": { auth: { apiKey: {} }, proxy } }), ["ANY /c/{x+}"]);
    assert.deepEqual(load({ "ANY /d/{x+}": { auth: { apiKey: {} }, proxy } }, cors), [
      "ANY /d/{x+}",
      "OPTIONS /d/{x+}",
    ]);
  });
});

describe("route kinds", () => {
  const upstreams = { svc: { targets: [{ url: "https://svc.internal" }] } };

  it("marks each parsed route with its kind: proxy, aggregate or handler", () => {
    const gateway = loadGateway(definition, "test");
    assert.equal(gateway.routes["GET /health"]?.kind, "handler");
    assert.equal(gateway.routes["GET /v1/users"]?.kind, "proxy");
    assert.equal(gateway.routes["GET /v1/users/{id}/summary"]?.kind, "aggregate");
  });

  it("refuses a route with none or several of proxy, aggregate and handler, saying what to do", () => {
    const config = base();
    config.upstreams = upstreams;
    config.routes = {
      "GET /none": { auth: "public" } as never,
      "GET /both": { auth: "public", handler: "health", proxy: { upstream: "svc", path: "/b" } } as never,
    };
    const problems = problemsOf(config);
    assert.deepEqual(problems, [
      'routes.GET /none: says neither proxy, aggregate nor handler; add one: proxy: { upstream, path } sends it to an upstream, handler: "<function key>" names the system function that answers it',
      "routes.GET /both: has both proxy and handler; a route does one of proxy, aggregate or handler, so remove the others",
    ]);
  });

  it("holds each kind to its own members, naming the member and the fix", () => {
    const config = base();
    config.upstreams = upstreams;
    config.routes = {
      "POST /h": { auth: "public", handler: "health", body: { maxBytes: 10 } } as never,
      "GET /p": { auth: "public", proxy: { upstream: "svc", path: "/p" }, timeoutMs: 5 } as never,
    };
    const problems = problemsOf(config);
    assert.deepEqual(problems, [
      "routes.POST /h.body: a handler route's function reads its own request body; body rules apply to proxy and aggregate routes, so remove body",
      "routes.GET /p.timeoutMs: a proxy route takes auth, cors, deprecated, ipRules, limit, throttle, body, cache, alarms, proxy, aggregate, handler; remove timeoutMs",
    ]);
  });

  it("gives $connect its own schema: auth and ipRules only", () => {
    const config = base();
    config.websocket = {
      connect: { auth: { jwt: {} }, ipRules: { allow: ["10.0.0.0/8"] }, limit: { cost: 2 } } as never,
    };
    assert.deepEqual(problemsOf(config), [
      "websocket.connect.limit: $connect takes auth and ipRules only (it has no limit: message rates are limits.websocket, sizes websocket.chat); remove limit",
    ]);
    config.websocket = { connect: { auth: { jwt: {} }, ipRules: { allow: ["10.0.0.0/8"] } } };
    const gateway = loadGateway(
      defineGateway(() => config),
      "test",
    );
    assert.deepEqual(gateway.websocket.connect, {
      auth: { jwt: { scopes: [] } },
      ipRules: { allow: ["10.0.0.0/8"], deny: [] },
    });
  });

  it("names a $connect that needs a JWT when there is no issuer", () => {
    const config = base();
    config.auth.issuers = [];
    config.routes = { "GET /health": { auth: "public", handler: "health" } };
    config.websocket = { connect: { auth: { jwt: {} } } };
    assert.deepEqual(problemsOf(config), [
      "websocket.connect.auth: needs a JWT but auth.issuers is empty; add an issuer or use apiKey",
    ]);
  });
});

describe("worst-case upstream time", () => {
  it("counts every attempt and the capped backoff the HTTP client waits between them", () => {
    const capped = RETRY_BACKOFF.maxDelayMs;
    assert.equal(upstreamWorstCaseMs({ timeoutMs: 2_000, retries: 2 }), 3 * 2_000 + 2 * capped);
    assert.equal(upstreamWorstCaseMs({ timeoutMs: 2_000, retries: 0 }), 2_000);
    assert.equal(upstreamWorstCaseMs(undefined), 0);
  });

  it("gives a route the slowest of its upstreams, canary and versions included", () => {
    const gateway = loadGateway(definition, "test");
    const route = gateway.routes["GET /v1/users/{id}"];
    assert.ok(route);
    // users: 2 s × 3 attempts; its version 2 goes to echo: 2 s × 2 attempts.
    assert.equal(routeWorstCaseMs(gateway, route), upstreamWorstCaseMs(gateway.upstreams.users));
    const health = gateway.routes["GET /health"];
    assert.ok(health);
    assert.equal(routeWorstCaseMs(gateway, health), 0);
  });
});

describe("error messages", () => {
  it("say what to do, not only what is wrong, for a sample of fields", () => {
    const config = base();
    config.auth.issuers = [{ kind: "oidc", id: "Bad Id", issuer: "ftp://idp", audience: ["api"] }];
    config.upstreams = { svc: { targets: [{ url: "https://svc.internal" }], timeoutMs: 10, retries: 9 } };
    config.routes = {
      "get /x": { auth: "public", handler: "health" },
      "GET /y": { auth: { jwt: { scopes: ["two words"] } }, handler: "Not-A-Key" },
    };
    const problems = problemsOf(config);
    for (const expected of [
      "auth.issuers.0.id: an issuer id is lower-case letters, digits and -, such as cognito",
      "auth.issuers.0.issuer: issuer must use https:// (tokens and keys are not fetched in clear text); change the scheme",
      "upstreams.svc.timeoutMs: at least 50 (50 to 25000)",
      "upstreams.svc.retries: at most 5 (0 to 5)",
      'routes.get /x: a route key is "METHOD /path", e.g. "GET /things/{id}"; the method is upper case, the path starts with /',
      "routes.GET /y.auth.jwt.scopes.0: a scope is one word of printable ASCII (RFC 6749), such as orders:read; remove spaces",
      "routes.GET /y.handler: a handler is a function key under functions: in serverless.yml, such as usage",
    ]) {
      assert.ok(problems.includes(expected), `${expected}\n${problems.join("\n")}`);
    }
  });

  it("refuse a misspelt member instead of ignoring it, listing the members there are", () => {
    const config = { ...base(), upstream: {} } as GatewayConfigInput;
    config.auth.apiKeys = { cacheSecond: 5 } as never;
    assert.deepEqual(problemsOf(config), [
      'auth.apiKeys.cacheSecond: auth.apiKeys has no member "cacheSecond"; remove it or fix its name (auth.apiKeys takes cacheSeconds, cacheEntries, legacyKeys, unknownKeys)',
      'upstream: the gateway config has no member "upstream"; remove it or fix its name (the gateway config takes auth, ipRules, trustedProxies, versionHeader, cors, compression, upstreams, routes, limits, cache, websocket)',
    ]);
  });

  it("say what type a field must be when it has another", () => {
    const config = base();
    config.auth.clockSkewSeconds = "60" as never;
    assert.deepEqual(problemsOf(config), [
      'auth.clockSkewSeconds: must be number, not "60"; change the value',
    ]);
  });

  it("say a missing member is required and where it is described", () => {
    const config = base();
    config.websocket = {} as never;
    assert.deepEqual(problemsOf(config), [
      "websocket.connect: is required; add it (docs/configuration.md describes it)",
    ]);
  });
});
