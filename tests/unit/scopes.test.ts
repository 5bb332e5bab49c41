import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createIdentityCore, identityContext, requestIdentity } from "#shared/auth/identity.ts";
import { tokenScopes } from "#shared/auth/jwt.ts";
import { parseScopes } from "#shared/auth/scopes.ts";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { upstreamRequestHeaders } from "#shared/upstream/forwarding.ts";

describe("one scope parser for the authorizer, the handlers and the upstream header", () => {
  it("splits a space-delimited string and refuses a list item that is not one scope-token", () => {
    assert.deepEqual(parseScopes("orders:read  chat:write"), ["orders:read", "chat:write"]);
    assert.deepEqual(parseScopes(["chat:write", "admin extra", 'q"uote', 7]), ["chat:write"]);
    assert.deepEqual(parseScopes(undefined), []);
  });

  it("reads token claims the same way: scp list items with a space grant nothing", () => {
    assert.deepEqual(
      tokenScopes({
        scope: "a b",
        scp: ["c", "gatehouse:admin chat:write"],
        "cognito:groups": ["Team Leads", "ops"],
      }),
      ["a", "b", "c", "ops"],
    );
  });

  it("hands the same scopes to the authorizer's check, the function and the upstream", async () => {
    // Prepare: a key whose stored scopes hold one value with a space.
    const authorize = createIdentityCore({
      config: loadGateway(
        defineGateway(() => ({
          auth: {},
          routes: {
            "GET /x": { auth: { apiKey: { scopes: ["chat:write"] } }, handler: "whoami" },
            "GET /y": { auth: { apiKey: { scopes: ["orders:read"] } }, handler: "whoami" },
            "GET /z": { auth: { apiKey: {} }, handler: "whoami" },
          },
        })),
        "test",
      ),
      verifyToken: async () => {
        throw new Error("unused");
      },
      authenticateApiKey: async () => ({
        keyHash: "h",
        keyId: "key_1",
        owner: "o",
        plan: "free",
        scopes: ["orders:read chat:write"],
        status: "active",
        createdAt: "2026-11-30T00:00:00Z",
      }),
    });
    // Act
    const refused = await authorize({
      routeKey: "GET /x",
      sourceIp: "192.0.2.1",
      credentials: { apiKey: "k" },
    });
    const other = await authorize({
      routeKey: "GET /y",
      sourceIp: "192.0.2.1",
      credentials: { apiKey: "k" },
    });
    // Assess: the authorizer did not read "orders:read chat:write" as two grants, and nothing after it does.
    assert.equal(refused.allow, false);
    assert.equal(other.allow, false);
    const admitted = await authorize({
      routeKey: "GET /z",
      sourceIp: "192.0.2.1",
      credentials: { apiKey: "k" },
    });
    assert.ok(admitted.allow);
    const handed = requestIdentity({
      requestContext: { authorizer: { lambda: identityContext(admitted.identity) } },
    });
    assert.deepEqual(handed.scopes, [], "the function does not split it into two grants either");

    const identity = { principal: "p", authType: "jwt" as const, plan: "free", scopes: ["a", "b:c"] };
    const context = identityContext(identity);
    const seen = requestIdentity({ requestContext: { authorizer: { lambda: context } } });
    assert.deepEqual(seen.scopes, identity.scopes);
    const headers = upstreamRequestHeaders({
      headers: {},
      identity: seen,
      requestId: "r",
      sourceIp: undefined,
    });
    assert.deepEqual(parseScopes(headers["x-gatehouse-scopes"]), identity.scopes);
  });
});
