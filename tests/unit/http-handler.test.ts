import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { BadRequestError, MethodNotAllowedError, TooManyRequestsError } from "#shared/errors.ts";
import { json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

const healthEvent = () => loadEvent<APIGatewayProxyEventV2>("health.json");
const problemOf = (body: string | undefined) => JSON.parse(body ?? "") as Record<string, unknown>;

describe("httpHandler chain", () => {
  afterEach(() => mock.restoreAll());

  it("passes a success through with the request id and security headers", async () => {
    // Prepare
    const handler = httpHandler(async () => json(201, { made: true }, { location: "/things/1" }));
    // Act
    const result = await handler(healthEvent(), lambdaContext());
    // Assess
    assert.equal(result.statusCode, 201);
    assert.deepEqual(JSON.parse(String(result.body)), { made: true });
    assert.equal(result.headers["x-request-id"], "Uq1bZhqAIAMEVbw=");
    assert.equal(result.headers.location, "/things/1");
    assert.equal(result.headers["x-content-type-options"], "nosniff");
    assert.equal(result.headers["cache-control"], "no-store");
  });

  it("maps a 4XX to problem+json that shows the message and carries the request id", async () => {
    const handler = httpHandler(async () => {
      throw new BadRequestError("Field 'name' is required", { extensions: { errors: [{ field: "name" }] } });
    });
    const result = await handler(healthEvent(), lambdaContext());

    assert.equal(result.statusCode, 400);
    assert.equal(result.headers["content-type"], "application/problem+json");
    assert.equal(result.headers["x-request-id"], "Uq1bZhqAIAMEVbw=");
    assert.equal(result.headers["x-frame-options"], "DENY");
    assert.deepEqual(problemOf(result.body), {
      type: "urn:gatehouse:problem:bad-request",
      title: "Bad Request",
      status: 400,
      detail: "Field 'name' is required",
      instance: "/health",
      requestId: "Uq1bZhqAIAMEVbw=",
      errors: [{ field: "name" }],
    });
  });

  it("turns an unhandled throw into a generic 500, never a 200, and logs the detail", async () => {
    const logged = mock.method(logger, "error", () => undefined);
    const secret = new Error("connect ECONNREFUSED 10.0.0.12:5432 password=hunter2");
    const handler = httpHandler(async () => {
      throw secret;
    });

    const result = await handler(healthEvent(), lambdaContext());

    assert.equal(result.statusCode, 500);
    const body = String(result.body);
    assert.ok(!body.includes("hunter2") && !body.includes("ECONNREFUSED") && !body.includes("at "), body);
    assert.equal(problemOf(body).title, "Internal Server Error");
    assert.equal(problemOf(body).requestId, "Uq1bZhqAIAMEVbw=");
    assert.equal(logged.mock.callCount(), 1);
    const [, attributes] = logged.mock.calls[0]?.arguments ?? [];
    assert.equal((attributes as { error?: unknown } | undefined)?.error, secret);
  });

  it("hides the message of a thrown 5XX HttpError and of non-Error throws", async () => {
    mock.method(logger, "error", () => undefined);
    const throwsString = httpHandler(async () => {
      throw "plain string";
    });
    const result = await throwsString(healthEvent(), lambdaContext());
    assert.equal(result.statusCode, 500);
    assert.ok(!String(result.body).includes("plain string"));
  });

  it("keeps a safe caller request id and replaces an unsafe one", async () => {
    const handler = httpHandler(async () => json(200, {}));
    const withId = loadEvent<APIGatewayProxyEventV2>("health.with-request-id.json");
    assert.equal((await handler(withId, lambdaContext())).headers["x-request-id"], "checkout-7f3a9c");

    const unsafe = healthEvent();
    unsafe.headers["x-request-id"] = "bad id\r\nset-cookie: x=1";
    assert.equal((await handler(unsafe, lambdaContext())).headers["x-request-id"], "Uq1bZhqAIAMEVbw=");
  });

  it("lower-cases header names before the handler sees them", async () => {
    let seen: Record<string, string | undefined> = {};
    const handler = httpHandler(async (event) => {
      seen = event.headers;
      return json(200, {});
    });
    const event = healthEvent();
    event.headers = { "X-Api-Key": "k", Accept: "application/json" };
    await handler(event, lambdaContext());
    assert.deepEqual(seen, { "x-api-key": "k", accept: "application/json" });
  });

  it("carries error headers: Allow on 405, Retry-After on 429", async () => {
    const notAllowed = httpHandler(async () => {
      throw new MethodNotAllowedError("Use GET", ["GET"]);
    });
    assert.equal((await notAllowed(healthEvent(), lambdaContext())).headers.allow, "GET");
    const limited = httpHandler(async () => {
      throw new TooManyRequestsError("Rate limit exceeded", 7);
    });
    const result = await limited(healthEvent(), lambdaContext());
    assert.equal(result.statusCode, 429);
    assert.equal(result.headers["retry-after"], "7");
  });

  it("answers 504 when the handler would outlive the Lambda timeout", async () => {
    mock.method(logger, "error", () => undefined);
    const handler = httpHandler(() => new Promise(() => undefined)); // never settles
    const result = await handler(healthEvent(), lambdaContext("slow-fn", 50));
    assert.equal(result.statusCode, 504);
    assert.equal(result.headers["content-type"], "application/problem+json");
  });
});
