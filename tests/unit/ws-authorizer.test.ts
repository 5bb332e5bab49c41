import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { APIGatewayRequestAuthorizerEvent } from "aws-lambda";
import { issueApiKey } from "#shared/auth/api-key-check.ts";
import type { AuthorizeRequest, Decision } from "#shared/auth/identity.ts";
import { createWsAuthorizer, wsCredentials } from "#shared/auth/ws-authorizer.ts";
import { loadEvent } from "../support/events.ts";

const event = () => loadEvent<APIGatewayRequestAuthorizerEvent>("wsAuthorizer.json");
const JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln";

describe("WebSocket $connect authorizer", () => {
  it("finds the token in the query, the subprotocol list or the headers", () => {
    assert.deepEqual(wsCredentials({ headers: {}, queryStringParameters: { token: JWT } }), { bearer: JWT });
    assert.deepEqual(
      wsCredentials({
        headers: { "Sec-WebSocket-Protocol": `gatehouse.v1, ${JWT}` },
        queryStringParameters: null,
      }),
      {
        bearer: JWT,
      },
    );
    assert.deepEqual(
      wsCredentials({ headers: { authorization: `Bearer ${JWT}` }, queryStringParameters: null }),
      { bearer: JWT },
    );
    assert.deepEqual(wsCredentials({ headers: { "x-api-key": "gh_abc" }, queryStringParameters: null }), {
      apiKey: "gh_abc",
    });
    assert.deepEqual(
      wsCredentials({ headers: { "sec-websocket-protocol": "gatehouse.v1" }, queryStringParameters: null }),
      {},
    );
  });

  it("takes an API key of either format (ghk_ or the old gh_) from the query or the subprotocol list", () => {
    // Prepare
    const current = issueApiKey();
    const legacy = `gh_${"A".repeat(43)}`;

    // Act
    const fromQuery = [current, legacy].map((key) =>
      wsCredentials({ headers: {}, queryStringParameters: { token: key } }),
    );
    const fromProtocol = [current, legacy].map((key) =>
      wsCredentials({
        headers: { "sec-websocket-protocol": `gatehouse.v1, ${key}` },
        queryStringParameters: null,
      }),
    );

    // Assess
    assert.deepEqual(fromQuery, [{ apiKey: current }, { apiKey: legacy }]);
    assert.deepEqual(fromProtocol, [{ apiKey: current }, { apiKey: legacy }]);
  });

  it("allows with an IAM Allow policy carrying the identity", async () => {
    let seen: AuthorizeRequest | undefined;
    const authorizer = createWsAuthorizer(async (request) => {
      seen = request;
      return {
        allow: true,
        identity: {
          principal: "dev:alice",
          authType: "jwt",
          plan: "pro",
          scopes: ["chat:write"],
          issuer: "dev",
        },
      };
    });
    const result = await authorizer(event());
    assert.equal(seen?.routeKey, "$connect");
    assert.equal(seen?.sourceIp, "203.0.113.10");
    assert.deepEqual(result, {
      principalId: "dev:alice",
      policyDocument: {
        Version: "2012-10-17",
        Statement: [{ Action: "execute-api:Invoke", Effect: "Allow", Resource: event().methodArn }],
      },
      context: {
        principal: "dev:alice",
        authType: "jwt",
        plan: "pro",
        scopes: "chat:write",
        tenant: "",
        keyId: "",
        issuer: "dev",
      },
    });
  });

  it("no credentials → Unauthorized (401); a bad one, an exception or a malformed event → Deny", async () => {
    const noCredentials = event();
    noCredentials.headers = {};
    const unauthorized = createWsAuthorizer(
      async (): Promise<Decision> => ({
        allow: false,
        status: 401,
        code: "credentials",
        reason: "no bearer token",
      }),
    );
    await assert.rejects(unauthorized(noCredentials), /^Error: Unauthorized$/);
    const offline = createWsAuthorizer(
      async (): Promise<Decision> => ({ allow: false, status: 401, code: "credentials", reason: "x" }),
      {
        offline: true,
      },
    );
    assert.equal(await offline(noCredentials), "Unauthorized", "serverless-offline wants the string");

    const deny = (result: unknown) =>
      (result as { policyDocument: { Statement: { Effect: string }[] } }).policyDocument.Statement[0]?.Effect;
    assert.equal(deny(await unauthorized(event())), "Deny", "a token was presented: 403, not 401");
    const throwing = createWsAuthorizer(async () => {
      throw new Error("boom");
    });
    assert.equal(deny(await throwing(event())), "Deny");
    assert.equal(deny(await throwing(null as unknown as APIGatewayRequestAuthorizerEvent)), "Deny");
  });
});
