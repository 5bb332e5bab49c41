import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Fetcher } from "aws-jwt-verify/https";
import { apiKeyStore, createApiKeyAuthenticator } from "#shared/auth/api-keys.ts";
import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import { type AuthorizeRequest, createIdentityCore, type Decision } from "#shared/auth/identity.ts";
import { defineGateway, type GatewayConfig, loadGateway } from "#shared/config/gateway.ts";
import { apiKeysConfig } from "../support/api-keys.ts";
import { startTestStore, type TestStore, unreachableClient } from "../support/dynamo.ts";
import { publicPem, signJwt, startJwksServer, type TestIssuer } from "../support/jwks-server.ts";

const AUDIENCE = "gatehouse-tests";
const POOL = "us-east-1_TestPool1";
const COGNITO_ISS = `https://cognito-idp.us-east-1.amazonaws.com/${POOL}`;
const CLIENT_ID = "test-app-client";
const now = () => Math.floor(Date.now() / 1000);

/**
 * `jwksTimeoutMs`: generous by default, so a loaded machine's slow TLS handshake with the test issuer
 * is not a refusal; the test of a JWKS timeout sets a short one.
 */
function gatewayFor(jwks: TestIssuer, jwksTimeoutMs = 5_000): GatewayConfig {
  return loadGateway(
    defineGateway(() => ({
      auth: {
        issuers: [
          {
            kind: "oidc",
            id: "test",
            issuer: jwks.issuer,
            audience: [AUDIENCE],
            jwksCaFile: jwks.caFile,
            claims: { tenant: "tenant", plan: "plan" },
          },
          { kind: "cognito", id: "pool", userPoolId: POOL, clientId: [CLIENT_ID], tokenUse: "access" },
        ],
        clockSkewSeconds: 30,
        jwksTimeoutMs,
        apiKeys: { cacheSeconds: 1 },
      },
      ipRules: { allow: [], deny: ["198.51.100.0/24", "2001:db8:bad::/48"] },
      routes: {
        "GET /public": { auth: "public", handler: "whoami" },
        "GET /jwt": { auth: { jwt: {} }, handler: "whoami" },
        "GET /jwt/admin": { auth: { jwt: { scopes: ["gatehouse:admin"] } }, handler: "whoami" },
        "GET /key": { auth: { apiKey: {} }, handler: "whoami" },
        "GET /key/write": { auth: { apiKey: { scopes: ["chat:write"] } }, handler: "whoami" },
        "GET /internal": {
          auth: "public",
          ipRules: { allow: ["10.0.0.0/8", "fd00::/8"] },
          handler: "whoami",
        },
      },
    })),
    "test",
  );
}

/** Cognito's JWKS lives on AWS; this real fetcher is pointed at the local server instead. */
function cognitoToLocal(jwks: TestIssuer) {
  return (inner: Fetcher): Fetcher => ({
    fetch: (uri, options, data) =>
      uri.startsWith(COGNITO_ISS)
        ? inner.fetch(jwks.jwksUri, { ...options, ca: jwks.ca }, data)
        : inner.fetch(uri, options, data),
  });
}

describe("identity core: JWT, API keys and IP rules against a real JWKS server and dynalite", () => {
  let jwks: TestIssuer;
  let store: TestStore;
  let gateway: GatewayConfig;
  let decide: (request: AuthorizeRequest) => Promise<Decision>;
  let keys: ReturnType<typeof apiKeyStore>;

  const good = (extra: Record<string, unknown> = {}) => ({
    iss: jwks.issuer,
    aud: AUDIENCE,
    sub: "alice",
    iat: now(),
    exp: now() + 600,
    scope: "chat:write",
    tenant: "acme",
    ...extra,
  });
  const rs = (payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    signJwt({ alg: "RS256", kid: jwks.rsa.kid, typ: "JWT", ...header }, payload, {
      alg: "RS256",
      privateKey: jwks.rsa.privateKey,
    });
  const cognito = (extra: Record<string, unknown> = {}) =>
    rs({
      iss: COGNITO_ISS,
      sub: "bob",
      client_id: CLIENT_ID,
      token_use: "access",
      scope: "openid",
      iat: now(),
      exp: now() + 600,
      ...extra,
    });
  const bearer = (routeKey: string, token: string, sourceIp = "203.0.113.7") =>
    decide({ routeKey, sourceIp, credentials: { bearer: token } });
  const apiKey = (routeKey: string, key: string, sourceIp = "203.0.113.7") =>
    decide({ routeKey, sourceIp, credentials: { apiKey: key } });

  before(async () => {
    jwks = await startJwksServer();
    store = await startTestStore();
    gateway = gatewayFor(jwks);
    keys = apiKeyStore({ client: store.client, tableName: store.tables.ApiKeysTable as string });
    decide = createAuthorizerRuntime({
      gateway,
      client: store.client,
      apiKeysTable: store.tables.ApiKeysTable as string,
      budgetMs: 10_000, // past the JWKS timeout: the budget is not what these tests are about
      wrapFetcher: cognitoToLocal(jwks),
    });
  });
  after(async () => {
    await jwks.stop();
    await store.stop();
  });

  it("admits valid RS256 and ES256 tokens with the identity as context", async () => {
    const rsDecision = await bearer("GET /jwt", rs(good()));
    assert.deepEqual(rsDecision, {
      allow: true,
      identity: {
        principal: "test:alice",
        authType: "jwt",
        plan: "default",
        scopes: ["chat:write"],
        tenant: "acme",
        issuer: "test",
      },
    });
    const es = signJwt({ alg: "ES256", kid: jwks.ec.kid }, good({ sub: "carol", plan: "pro" }), {
      alg: "ES256",
      privateKey: jwks.ec.privateKey,
    });
    const esDecision = await bearer("GET /jwt", es);
    assert.equal(esDecision.allow && esDecision.identity.principal, "test:carol");
    assert.equal(esDecision.allow && esDecision.identity.plan, "pro");
  });

  it("admits a Cognito access token for the configured app client", async () => {
    const decision = await bearer("GET /jwt", cognito());
    assert.equal(decision.allow && decision.identity.principal, "pool:bob");
  });

  it("checks route scopes (and Cognito groups) against the token", async () => {
    assert.deepEqual(await bearer("GET /jwt/admin", rs(good())), {
      allow: false,
      status: 403,
      code: "scope",
      reason: "missing scope(s): gatehouse:admin",
    });
    assert.equal(
      (await bearer("GET /jwt/admin", rs(good({ scope: "chat:write gatehouse:admin" })))).allow,
      true,
    );
    assert.equal(
      (await bearer("GET /jwt/admin", cognito({ "cognito:groups": ["gatehouse:admin"] }))).allow,
      true,
    );
  });

  // Each of these must be refused: 401 (no usable token) or 403.
  const badTokens: [string, () => string, RegExp][] = [
    [
      "alg none",
      () => signJwt({ alg: "none", kid: "rs-1" }, good(), { alg: "none" }),
      /not a well-formed JWT/,
    ],
    [
      "HS256 signed with the RSA public key",
      () =>
        signJwt({ alg: "HS256", kid: "rs-1" }, good(), {
          alg: "HS256",
          hmacSecret: publicPem(jwks.rsa.publicKey),
        }),
      /algorithm not allowed: HS256/,
    ],
    ["an unknown kid", () => rs(good(), { kid: "nobody" }), /kid "nobody" not found/],
    ["expired", () => rs(good({ iat: now() - 7200, exp: now() - 3600 })), /Token expired/],
    ["not yet valid (nbf in the future)", () => rs(good({ nbf: now() + 3600 })), /can't be used before/],
    ["no exp", () => rs(good({ exp: undefined })), /no exp claim/],
    ["iat in the future beyond the skew", () => rs(good({ iat: now() + 3600 })), /iat is in the future/],
    ["no sub", () => rs(good({ sub: undefined })), /no sub claim/],
    ["a wrong issuer", () => rs(good({ iss: "https://evil.example.com" })), /not trusted/],
    ["a wrong audience", () => rs(good({ aud: "someone-else" })), /Audience not allowed/],
    ["a wrong Cognito client id", () => cognito({ client_id: "other-client" }), /Client ID not allowed/],
    [
      "a Cognito id token where access is required",
      () => cognito({ token_use: "id", aud: CLIENT_ID, client_id: undefined }),
      /Token use not allowed/,
    ],
    [
      "a tampered payload",
      () => {
        const [header, , signature] = rs(good()).split(".");
        return `${header}.${Buffer.from(JSON.stringify(good({ sub: "mallory" }))).toString("base64url")}.${signature}`;
      },
      /Invalid signature/,
    ],
    ["a truncated token", () => rs(good()).split(".").slice(0, 2).join("."), /not a well-formed JWT/],
    ["an oversized token", () => rs(good({ padding: "x".repeat(10_000) })), /too large/],
    ["garbage", () => "this-is-not-a-jwt", /not a well-formed JWT/],
    ["three dots of garbage", () => "a.b.c", /not a well-formed JWT/],
  ];
  for (const [name, make, reason] of badTokens) {
    it(`refuses a token with ${name}`, async () => {
      const decision = await bearer("GET /jwt", make());
      assert.equal(decision.allow, false, name);
      assert.ok(!decision.allow && [401, 403].includes(decision.status));
      assert.match(decision.reason, reason);
    });
  }

  it("answers 401 (no credentials) when the route's credential is missing", async () => {
    assert.deepEqual(await decide({ routeKey: "GET /jwt", sourceIp: "203.0.113.7", credentials: {} }), {
      allow: false,
      status: 401,
      code: "credentials",
      reason: "no bearer token",
    });
    const keyOnly = await decide({
      routeKey: "GET /key",
      sourceIp: "203.0.113.7",
      credentials: { bearer: rs(good()) },
    });
    assert.equal(!keyOnly.allow && keyOnly.status, 401);
  });

  it("admits an active API key with its plan, scopes and key id, and checks route scopes", async () => {
    const { key, record } = await keys.create({
      owner: "team-a",
      plan: "pro",
      scopes: ["chat:write"],
      tenant: "acme",
    });
    assert.deepEqual(await apiKey("GET /key", key), {
      allow: true,
      identity: {
        principal: "key:team-a",
        authType: "apiKey",
        plan: "pro",
        scopes: ["chat:write"],
        tenant: "acme",
        keyId: record.keyId,
      },
    });
    assert.equal((await apiKey("GET /key/write", key)).allow, true);
    const { key: readOnly } = await keys.create({ owner: "team-b", plan: "free" });
    assert.deepEqual(await apiKey("GET /key/write", readOnly), {
      allow: false,
      status: 403,
      code: "scope",
      reason: "missing scope(s): chat:write",
    });
  });

  it("refuses unknown, malformed, revoked and expired keys", async () => {
    const unknown = await apiKey("GET /key", `gh_${"A".repeat(43)}`);
    assert.equal(!unknown.allow && unknown.status, 401);
    const malformed = await apiKey("GET /key", "password123");
    assert.equal(!malformed.allow && malformed.status, 401);

    const { key: revokedKey, record } = await keys.create({ owner: "team-c", plan: "free" });
    await keys.revoke(record.keyId);
    const revoked = await apiKey("GET /key", revokedKey);
    assert.equal(!revoked.allow && revoked.status, 403);

    const { key: expiredKey } = await keys.create({ owner: "team-d", plan: "free", expiresAt: now() - 1 });
    const expired = await apiKey("GET /key", expiredKey);
    assert.equal(!expired.allow && expired.status, 403);
  });

  it("reads DynamoDB once per key per cache window, and a revoked key stops within that window", async () => {
    const counted = apiKeyStore({ client: store.client, tableName: store.tables.ApiKeysTable as string });
    // The authenticator's own clock: on the real one, a loaded machine can spend the 1-second window
    // on the reads themselves, so the "hits" re-read (or the cached call after the revoke rejects).
    let clock = Date.now();
    const authenticate = createApiKeyAuthenticator({
      store: counted,
      ...apiKeysConfig({ cacheSeconds: 1, cacheEntries: 100 }),
      now: () => clock,
    });
    const { key, record } = await counted.create({ owner: "team-e", plan: "free" });

    await authenticate(key);
    await authenticate(key);
    await authenticate(key);
    assert.equal(counted.reads, 1, "one read on the miss, none on the hits");

    await counted.revoke(record.keyId);
    await authenticate(key); // still cached: within the configured bound
    clock += 1_100; // past the 1-second cache window
    await assert.rejects(authenticate(key), /revoked/);
    assert.equal(counted.reads, 2);
  });

  it("applies IP rules (v4, v6, v4-mapped, per route) before any token or key is looked at", async () => {
    let lookups = 0;
    const core = createIdentityCore({
      config: gateway,
      verifyToken: async () => {
        lookups++;
        throw new Error("must not be called");
      },
      authenticateApiKey: async () => {
        lookups++;
        throw new Error("must not be called");
      },
    });
    for (const sourceIp of [
      "198.51.100.9",
      "::ffff:198.51.100.9",
      "2001:db8:bad::1",
      undefined,
      "not-an-ip",
    ]) {
      const decision = await core({ routeKey: "GET /jwt", sourceIp, credentials: { bearer: "x" } });
      assert.equal(decision.allow, false, String(sourceIp));
      assert.equal(!decision.allow && decision.status, 403);
    }
    assert.equal(lookups, 0);

    assert.equal(
      (await core({ routeKey: "GET /internal", sourceIp: "10.1.2.3", credentials: {} })).allow,
      true,
    );
    assert.equal(
      (await core({ routeKey: "GET /internal", sourceIp: "fd12::1", credentials: {} })).allow,
      true,
    );
    assert.equal(
      (await core({ routeKey: "GET /internal", sourceIp: "192.0.2.1", credentials: {} })).allow,
      false,
    );
    assert.equal(
      (await core({ routeKey: "GET /public", sourceIp: "192.0.2.1", credentials: {} })).allow,
      true,
    );
  });

  it("refuses a route the config does not declare", async () => {
    const decision = await decide({
      routeKey: "GET /secret",
      sourceIp: "203.0.113.7",
      credentials: { bearer: rs(good()) },
    });
    assert.equal(decision.allow, false);
  });

  it("JWKS down: a cached token still works until exp; a new one is refused", async () => {
    const token = rs(good({ sub: "dave" }));
    assert.equal((await bearer("GET /jwt", token)).allow, true);
    // A fresh runtime has no JWKS and no verified tokens: everything depends on the server.
    const cold = createAuthorizerRuntime({
      gateway,
      client: store.client,
      apiKeysTable: store.tables.ApiKeysTable as string,
      budgetMs: 2_000,
    });
    jwks.setMode("down");
    try {
      assert.equal((await bearer("GET /jwt", token)).allow, true, "warm cache serves the verified token");
      const decision = await cold({
        routeKey: "GET /jwt",
        sourceIp: "203.0.113.7",
        credentials: { bearer: token },
      });
      assert.equal(decision.allow, false);
    } finally {
      jwks.setMode("up");
    }
  });

  it("JWKS slow: refused when the fetch times out, the unanswered fetch given up", async () => {
    // A 500 ms JWKS timeout well inside the runtime's budget, so the fetch's timeout is what refuses.
    const cold = createAuthorizerRuntime({
      gateway: gatewayFor(jwks, 500),
      client: store.client,
      apiKeysTable: store.tables.ApiKeysTable as string,
      budgetMs: 10_000,
    });
    jwks.setMode("slow");
    const givenUp = jwks.nextAbandoned();
    try {
      const decision = await cold({
        routeKey: "GET /jwt",
        sourceIp: "203.0.113.7",
        credentials: { bearer: rs(good({ sub: "erin" })) },
      });
      assert.equal(decision.allow, false);
      // The server never answers: the verifier closed the fetch (else this waits for the test timeout).
      await givenUp;
    } finally {
      jwks.setMode("up");
    }
  });

  it("DynamoDB down: an API key is refused within the budget", async () => {
    const down = createAuthorizerRuntime({
      gateway,
      client: unreachableClient(),
      apiKeysTable: "any",
      budgetMs: 2_000,
    });
    const decision = await down({
      routeKey: "GET /key",
      sourceIp: "203.0.113.7",
      credentials: { apiKey: `gh_${"B".repeat(43)}` },
    });
    assert.equal(decision.allow, false);
    assert.equal(!decision.allow && decision.status, 403);
  });
});
