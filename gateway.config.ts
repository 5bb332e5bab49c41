import { defineGateway } from "#shared/config/define.ts";
import { env } from "#shared/config/env.ts";
import inventoryRoutes from "./gateway/imported/inventory.ts";

/** The local stack's development issuer (plugins/dev-issuer.mjs); its TLS certificate is trusted explicitly. */
const devIssuer = () => ({
  kind: "oidc" as const,
  id: "dev",
  issuer: env.devIssuerUrl ?? "https://127.0.0.1:3003",
  audience: ["gatehouse-local"],
  jwksCaFile: env.devIssuerCaFile ?? ".gatehouse/dev-issuer/ca.pem",
  claims: { tenant: "tenant", plan: "plan" },
});

/**
 * The gateway: who may call which route. plugins/gateway-wiring.mjs generates each route's `httpApi`
 * event from here (`serverless print` shows them), on the function named by `handler` (else the
 * gateway function), behind the authorizer its auth needs:
 *   "public"           → no authorizer
 *   { jwt: {...} }     → authorizer: jwtAuthorizer     (identity: Authorization header)
 *   { apiKey: {...} }  → authorizer: apiKeyAuthorizer  (identity: x-api-key header)
 * A `kind: "lambda"` upstream gets the gateway's invoke grant; a limited route's function gets the
 * usage table.
 *
 * Issuers differ per stage. Replace the Cognito example with your user pool (or an OIDC issuer)
 * before you deploy; until its JWKS can be fetched, every JWT is refused (fail closed).
 */
/** Where an upstream service lives: the demo services locally; replace the others before deploying. */
const serviceUrl = (stage: string, name: string) =>
  stage === "local" || stage === "test"
    ? (env.demoServicesUrl ?? "http://127.0.0.1:3100")
    : `https://${name}.example.internal`;

/** The scope of the admin routes (API keys, the usage export, the cache purge): said once, as auth.adminScope. */
const adminScope = "gatehouse:admin";
const admin = { jwt: { scopes: [adminScope] } };

export default defineGateway(({ stage }) => ({
  auth: {
    issuers:
      stage === "local" || stage === "test"
        ? [devIssuer()]
        : [
            {
              kind: "cognito",
              id: "cognito",
              userPoolId: "us-east-1_ExampLe12",
              clientId: ["replace-with-your-app-client-id"],
              tokenUse: "access",
              claims: { tenant: "custom:tenant" },
            },
          ],
    adminScope,
    clockSkewSeconds: 60,
    // Every key this project issues has the ghk_ checksum, so keys of the old gh_ format can only be
    // guesses: refusing them unread means a random key of any shape costs no DynamoDB read. A gateway
    // upgraded with gh_ keys still in use keeps "accept" until they are rotated (docs/api-keys.md).
    apiKeys: { cacheSeconds: 10, legacyKeys: "refuse" },
  },
  ipRules: { allow: [], deny: [] },
  // Browser apps allowed to call the proxied routes (a route's own `cors` replaces this).
  cors: {
    origins:
      stage === "local" || stage === "test"
        ? ["http://localhost:5173", "https://*.example.com"]
        : ["https://*.example.com"],
  },
  upstreams: {
    users: { targets: [{ url: serviceUrl(stage, "users") }], timeoutMs: 2_000, retries: 2 },
    orders: { targets: [{ url: serviceUrl(stage, "orders") }], timeoutMs: 2_000, retries: 2 },
    echo: { targets: [{ url: serviceUrl(stage, "echo") }], timeoutMs: 2_000, retries: 1 },
    // The demo's slow and flaky endpoints, to see a timeout and the circuit breaker.
    slow: { targets: [{ url: serviceUrl(stage, "slow") }], timeoutMs: 1_000, retries: 0 },
    flaky: {
      targets: [{ url: serviceUrl(stage, "flaky") }],
      timeoutMs: 1_000,
      retries: 0,
      breaker: { consecutiveFailures: 3, halfOpenAfterMs: 5_000 },
    },
    // The caching demo's prices service (docs/caching.md, "Walk-through"); it can be switched down.
    prices: { targets: [{ url: serviceUrl(stage, "prices") }], timeoutMs: 1_000, retries: 0 },
    // The demo's cookie endpoints, to see cookies go both ways through the gateway.
    cookies: { targets: [{ url: serviceUrl(stage, "cookies") }], timeoutMs: 2_000, retries: 1 },
    // A service that is a Lambda function, invoked directly: no HTTP hop. `code` declares the function.
    catalog: {
      kind: "lambda",
      function: "catalog",
      code: "handlers/services/catalog.handler",
      timeoutMs: 3_000,
      retries: 1,
    },
    // The proxy fidelity demo: a service that compresses, and one that echoes the headers it received.
    fidelity: { targets: [{ url: serviceUrl(stage, "fidelity") }], timeoutMs: 2_000, retries: 1 },
    // The inventory service, whose routes come from its own OpenAPI document (gateway/imported/).
    inventory: { targets: [{ url: serviceUrl(stage, "inventory") }], timeoutMs: 2_000, retries: 1 },
  },
  // Usage plans: exact rate limits and quotas per API key, counted in the usage table.
  limits: {
    plans: {
      // The seeded demo key's plan.
      free: { rate: { perSecond: 50, burst: 100 }, quota: { limit: 10_000, period: "day" } },
      // A small plan to watch 429s: 3 at once, 1 a second after that, 5 a day, three routes only.
      tiny: {
        rate: { perSecond: 1, burst: 3 },
        quota: { limit: 5, period: "day" },
        routes: ["GET /v1/users", "GET /v1/users/{id}", "GET /v1/orders"],
      },
      pro: { rate: { perSecond: 200, burst: 400 }, quota: { limit: 5_000_000, period: "month" }, shards: 4 },
      // Keys and tokens whose plan is not listed above.
      default: { rate: { perSecond: 5, burst: 10 }, quota: { limit: 1_000, period: "day" } },
    },
    onStoreFailure: "open",
    // WebSocket messages (the real-time channel): per connection and per principal.
    websocket: { perConnection: { perSecond: 5, burst: 10 }, perPrincipal: { perSecond: 10, burst: 20 } },
  },
  routes: {
    // Imported from inventory's OpenAPI document (npm run openapi:import); see docs/openapi.md.
    ...inventoryRoutes,
    "GET /health": { auth: "public", handler: "health" },
    // This gateway's OpenAPI 3.1 document, made from this config (public, cacheable: ETag and 304).
    "GET /openapi.json": { auth: "public", handler: "openapi" },
    "GET /me": { auth: { jwt: {} }, handler: "whoami" },
    "GET /keys/self": { auth: { apiKey: {} }, handler: "whoami" },
    // Proxied routes (the gateway function): API key holders only.
    "GET /v1/users": {
      auth: { apiKey: {} },
      limit: {},
      proxy: {
        upstream: "users",
        path: "/users",
        // 10 % of callers (sticky: a caller always lands on the same side) try the next build;
        // `x-canary: always` or `never` picks a side by hand.
        canary: { upstream: "users", path: "/v2/users", weight: 10, header: "x-canary" },
      },
    },
    // Composition: one answer from the users and orders services, called in parallel.
    "GET /v1/users/{id}/summary": {
      auth: { apiKey: {} },
      limit: { cost: 3 },
      aggregate: {
        calls: {
          user: { upstream: "users", path: "/users/{id}", required: true },
          orders: { upstream: "orders", path: "/orders", query: { userId: "{id}" }, timeoutMs: 1_500 },
        },
        merge:
          "{ id: user.id, name: user.name, orders: orders.orders, orderCount: length(orders.orders || `[]`) }",
        // Without the orders the summary is still useful: it comes back marked incomplete.
        onFailure: "partial",
      },
    },
    "GET /v1/users/{id}": {
      auth: { apiKey: {} },
      limit: {},
      // `x-api-version: 2` picks the second version (here the echo service, to show where it went).
      proxy: {
        upstream: "users",
        path: "/users/{id}",
        versions: { "2": { upstream: "echo", path: "/echo/v2/users/{id}" } },
      },
    },
    // The previous version by path, on its way out: every answer says so (Deprecation, Sunset, Link).
    "GET /v0/users/{id}": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "users", path: "/users/{id}" },
      deprecated: {
        since: "2026-10-01T00:00:00Z",
        sunset: "2027-06-30T00:00:00Z",
        link: "https://docs.example.com/migrate/v1",
      },
    },
    // Each caller's own answers (`principal`, the default behind an authorizer), kept 30 s apart by
    // userId; every other query parameter is ignored and not sent. A new order purges them.
    "GET /v1/orders": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "orders", path: "/orders" },
      cache: { ttlSeconds: 30, key: { query: ["userId"] } },
    },
    "POST /v1/orders": {
      auth: { apiKey: {} },
      limit: { cost: 2 },
      // API Gateway's own throttle for this route, for every caller together (before any function runs).
      throttle: { rateLimit: 50, burstLimit: 100 },
      proxy: { upstream: "orders", path: "/orders" },
      cache: { invalidates: ["GET /v1/orders"] },
      body: {
        maxBytes: 16_384,
        schema: {
          type: "object",
          required: ["productId", "quantity"],
          properties: {
            productId: { type: "string", pattern: "^p-[0-9]+$" },
            quantity: { type: "integer", minimum: 1, maximum: 100 },
            note: { type: "string", maxLength: 200 },
          },
          additionalProperties: false,
        },
      },
    },
    "ANY /v1/echo/{rest+}": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "echo", path: "/echo/{rest+}" },
      body: { maxBytes: 262_144, contentTypes: ["*/*"] }, // any bytes, passed through untouched
    },
    // Version 2 of the orders list, made by mapping version 1: `?user=` instead of `?userId=`, and
    // `{ items, count }` instead of `{ orders }`.
    "GET /v2/orders": {
      auth: { apiKey: {} },
      limit: {},
      proxy: {
        upstream: "orders",
        path: "/orders",
        request: {
          query: { rename: { user: "userId" } },
          headers: { remove: ["cookie"], set: { "x-api-consumer": "gatehouse-v2" } },
        },
        response: {
          body: "{ items: orders, count: length(orders) }",
          headers: { set: { "cache-control": "private, max-age=30" } },
        },
      },
    },
    // A Lambda-backed service (the catalog upstream), the gateway's routes in front of it.
    "GET /v1/products/{id}": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "catalog", path: "/products/{id}" },
    },
    "GET /v1/slow": { auth: { apiKey: {} }, limit: {}, proxy: { upstream: "slow", path: "/slow" } },
    "GET /v1/flaky": { auth: { apiKey: {} }, limit: {}, proxy: { upstream: "flaky", path: "/flaky" } },
    // Response caching (docs/caching.md): prices are the same for every caller, so one entry serves
    // all (`public`); fresh for 5 s, then served marked stale for an hour if the service fails.
    "GET /v1/prices": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "prices", path: "/prices" },
      cache: {
        scope: "public",
        sameForEveryCaller: true,
        ttlSeconds: 5,
        staleIfErrorSeconds: 3_600,
        tags: ["prices"], // DELETE /admin/cache {"tag": "prices"} purges the list and every price
      },
    },
    "GET /v1/prices/{id}": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "prices", path: "/prices/{id}" },
      cache: {
        scope: "public",
        sameForEveryCaller: true,
        ttlSeconds: 5,
        staleIfErrorSeconds: 3_600,
        tags: ["prices", "price:{id}"], // {"tag": "price:p-1"} purges one price
      },
    },
    // A price change purges that price's entry and the list, in the cache table and this container.
    "PUT /v1/prices/{id}": {
      auth: { jwt: { scopes: ["prices:write"] } },
      proxy: { upstream: "prices", path: "/prices/{id}" },
      body: {
        maxBytes: 1_024,
        schema: {
          type: "object",
          required: ["price"],
          properties: { price: { type: "number", minimum: 0 } },
          additionalProperties: false,
        },
      },
      cache: { invalidates: ["GET /v1/prices/{id}", "GET /v1/prices"] },
    },
    // Proxy fidelity demo routes (bodies, headers)
    // A JSON document, gzip from the upstream when asked (`?compress=always|never` to see the gateway
    // decode or compress it itself); what reaches the client always matches its content-encoding.
    "GET /v1/fidelity/document": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "fidelity", path: "/fidelity/document" },
    },
    // The headers the upstream received (X-Forwarded-*, Forwarded as the gateway saw the request); its
    // CORS and security headers are replaced by the gateway's, except the Cache-Control passed here.
    "GET /v1/fidelity/headers": {
      auth: { apiKey: {} },
      limit: {},
      proxy: {
        upstream: "fidelity",
        path: "/fidelity/headers",
        response: { passHeaders: ["cache-control"] },
      },
    },
    // Proxy fidelity demo routes (cookies)
    "GET /v1/cookies/set": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "cookies", path: "/cookies/set" },
    },
    "GET /v1/cookies/echo": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "cookies", path: "/cookies/echo" },
    },
    // The calling key's own usage and remaining quota; the billing export for admins.
    "GET /usage": { auth: { apiKey: {} }, handler: "usage" },
    "GET /admin/usage": { auth: admin, handler: "usage" },
    // API-key administration: JWTs carrying the admin scope (auth.adminScope).
    "POST /admin/keys": { auth: admin, handler: "adminKeys" },
    "GET /admin/keys": { auth: admin, handler: "adminKeys" },
    "DELETE /admin/keys/{keyId}": { auth: admin, handler: "adminKeys" },
    "POST /admin/keys/{keyId}/rotate": {
      auth: admin,
      handler: "adminKeys",
    },
    // Purges the response cache's shared table by route, path, prefix or tag (docs/caching.md).
    "DELETE /admin/cache": { auth: admin, handler: "adminCache" },
    // The HTTP→WebSocket bridge: backend services (API keys) publish to chat rooms and read history.
    // Limited and metered like any route (without `limit` the bridge counts cost 1; `false` turns it off).
    "POST /rooms/{room}/messages": {
      auth: { apiKey: { scopes: ["chat:write"] } },
      limit: { cost: 1 },
      handler: "rooms",
    },
    "GET /rooms/{room}/messages": { auth: { apiKey: {} }, limit: { cost: 1 }, handler: "rooms" },
  },
  // Opening a WebSocket needs a token (query `token`, or the subprotocol list for browsers).
  websocket: {
    connect: { auth: { jwt: {} } },
    chat: { maxMessageBytes: 32 * 1024, maxRoomsPerConnection: 20, historyDays: 7, fanoutConcurrency: 32 },
  },
}));
