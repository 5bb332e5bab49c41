import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  defineGateway,
  GatewayConfigError,
  type GatewayConfigInput,
  loadGateway,
} from "#shared/config/gateway.ts";
import definition from "../../gateway.config.ts";

const base = (): GatewayConfigInput => ({
  auth: {
    issuers: [{ kind: "oidc", id: "idp", issuer: "https://idp.example.com", audience: ["api"] }],
  },
  routes: { "GET /health": { auth: "public" }, "GET /me": { auth: { jwt: { scopes: ["me:read"] } } } },
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
      "GET /health": { auth: "public" },
      "FETCH /x": { auth: "public" },
      "GET /y": { auth: { jwt: {}, apiKey: {} } as never },
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
      "GET /health": { auth: "public" },
      "GET /a/{id}": { auth: "public", proxy: { upstream: "nobody", path: "/a/{id}" } },
      "GET /b/{id}": { auth: "public", proxy: { upstream: "users", path: "/b/{other}" } },
    };
    const problems = problemsOf(config);
    assert.ok(
      problems.includes('routes.GET /a/{id}.proxy.upstream: "nobody" is not in upstreams (users)'),
      problems.join("\n"),
    );
    assert.ok(
      problems.includes("routes.GET /b/{id}.proxy.path: {other} is not a parameter of the route"),
      problems.join("\n"),
    );
    assert.ok(
      problems.some((p) => p.startsWith("upstreams.users: 3 attempts of 10000 ms can pass")),
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
      "GET /health": { auth: "public" },
      "GET /a": {
        auth: "public",
        proxy: {
          upstream: "svc",
          path: "/a",
          request: {
            headers: {
              set: { "x-gatehouse-principal": "admin" },
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
        proxy: { upstream: "svc", path: "/b" },
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
      'routes.GET /a.proxy.canary.upstream: "nowhere" is not in upstreams (svc, fn)',
      "routes.POST /b/{id}: has both proxy and aggregate; a route does one or the other",
      "routes.POST /b/{id}.aggregate: an aggregate route answers GET (its calls are GETs)",
      "routes.POST /b/{id}.aggregate.calls.one.query.user: {nope} is not a parameter of the route",
      'routes.POST /b/{id}.aggregate.calls.two.upstream: "ghost" is not in upstreams (svc, fn)',
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
      "GET /health": { auth: "public" },
      "GET /a": { auth: { apiKey: {} }, proxy: { upstream: "svc", path: "/a" }, limit: { cost: 5 } },
      "GET /open": { auth: "public", proxy: { upstream: "svc", path: "/o" }, limit: { subject: "apiKey" } },
      "GET /me": { auth: { jwt: {} }, limit: {} },
      "GET /status": { auth: "public", limit: {} },
    };
    assert.ok(
      problemsOf(config).includes("routes.GET /a.limit: needs a top-level limits section with plans"),
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
      "routes.GET /status.limit: a public system route has no caller to count; use throttle (API Gateway's) instead",
      'limits.plans.small.routes: "GET /health" is not a limited route',
      "limits.plans.small.rate.burst: below the largest route cost (5) per shard; no such request could pass",
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
    assert.deepEqual(problemsOf(duplicate), ['auth.issuers.1.id: "idp" is used twice']);
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
    }
  });

  it("adds none for explicit methods, public routes, routes without CORS, or one the config declares", () => {
    const load = (routes: GatewayConfigInput["routes"], cors?: GatewayConfigInput["cors"]) =>
      Object.keys(
        loadGateway(
          defineGateway(() => ({ auth: {}, ...(cors ? { cors } : {}), routes })),
          "test",
        ).routes,
      ).sort();
    const cors = { origins: ["https://app.example.com"] };
    assert.deepEqual(load({ "GET /a/{x+}": { auth: { apiKey: {} } } }, cors), ["GET /a/{x+}"]);
    assert.deepEqual(load({ "ANY /b/{x+}": { auth: "public" } }, cors), ["ANY /b/{x+}"]);
    assert.deepEqual(load({ "ANY /c/{x+}": { auth: { apiKey: {} } } }), ["ANY /c/{x+}"]);
    assert.deepEqual(load({ "ANY /d/{x+}": { auth: { apiKey: {} } } }, cors), [
      "ANY /d/{x+}",
      "OPTIONS /d/{x+}",
    ]);
  });
});
