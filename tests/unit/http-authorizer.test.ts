import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import type { APIGatewayRequestAuthorizerEventV2 } from "aws-lambda";
import { createHttpAuthorizer, httpCredentials } from "#shared/auth/http-authorizer.ts";
import type { Decision } from "#shared/auth/identity.ts";
import { captureEmf } from "../support/emf.ts";
import { loadEvent } from "../support/events.ts";

const event = () => loadEvent<APIGatewayRequestAuthorizerEventV2>("httpAuthorizer.json");

describe("HTTP authorizer handler", () => {
  afterEach(() => mock.restoreAll());

  it("reads a Bearer token and an x-api-key, and nothing from other schemes", () => {
    assert.deepEqual(httpCredentials({ authorization: "Bearer a.b.c", "x-api-key": "gh_k" }), {
      bearer: "a.b.c",
      apiKey: "gh_k",
    });
    assert.deepEqual(httpCredentials({ authorization: "bearer a.b.c" }), { bearer: "a.b.c" });
    assert.deepEqual(httpCredentials({ authorization: "Basic dXNlcjpwYXNz" }), {});
    assert.deepEqual(httpCredentials(undefined), {});
  });

  it("answers allow with the identity as flat string context", async () => {
    const authorizer = createHttpAuthorizer(async () => ({
      allow: true,
      identity: { principal: "key:a", authType: "apiKey", plan: "pro", scopes: ["x", "y"], keyId: "key_1" },
    }));
    assert.deepEqual(await authorizer(event()), {
      isAuthorized: true,
      context: {
        principal: "key:a",
        authType: "apiKey",
        plan: "pro",
        scopes: "x y",
        tenant: "",
        keyId: "key_1",
        issuer: "",
      },
    });
  });

  it("fails closed: a deny, a throw and a malformed event all answer isAuthorized false with no detail", async () => {
    const denied = createHttpAuthorizer(async () => ({
      allow: false,
      status: 403,
      code: "ip",
      reason: "secret reason",
    }));
    assert.deepEqual(await denied(event()), { isAuthorized: false, context: {} });

    const throwing = createHttpAuthorizer(async () => {
      throw new Error("ECONNREFUSED");
    });
    assert.deepEqual(await throwing(event()), { isAuthorized: false, context: {} });

    const decideOnEvent = createHttpAuthorizer(async (request) => {
      if (!request.routeKey) throw new TypeError("no route");
      return { allow: false, status: 403, code: "forbidden", reason: "x" };
    });
    for (const malformed of [
      {},
      { headers: null },
      null,
    ] as unknown as APIGatewayRequestAuthorizerEventV2[]) {
      assert.deepEqual(await decideOnEvent(malformed), { isAuthorized: false, context: {} });
    }
  });

  it("counts every deny as AuthorizerDenied by reason code, a throw as error, and nothing for an allow", async () => {
    // Prepare
    const emf = captureEmf();
    const answers: (() => Promise<Decision>)[] = [
      async () => ({ allow: false, status: 403, code: "scope", reason: "missing scope(s): x" }),
      async () => {
        throw new Error("ECONNREFUSED");
      },
      async () => ({
        allow: true,
        identity: { principal: "p", authType: "public", plan: "anonymous", scopes: [] },
      }),
    ];
    const authorizer = createHttpAuthorizer(() => (answers.shift() as () => Promise<Decision>)());

    // Act
    for (let call = 0; call < 3; call += 1) await authorizer(event());

    // Assess
    const denials = emf.filter((record) => "AuthorizerDenied" in record);
    assert.deepEqual(
      denials.map((record) => [record.authorizer, record.reason]),
      [
        ["http", "scope"],
        ["http", "error"],
      ],
    );
    const aws = denials[0]?._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] };
    assert.deepEqual(aws.CloudWatchMetrics[0]?.Dimensions, [["service", "authorizer", "reason"]]);
  });
});
