import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadGateway } from "#shared/config/gateway.ts";
import { type HttpEvent, json } from "#shared/http.ts";
import { RouteTableError, routeTable } from "#shared/middleware/route-table.ts";
import definition from "../../gateway.config.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

const gateway = loadGateway(definition, "test");
const answer = (name: string) => async () => json(200, { name });

describe("a system function's route table, checked against the config at cold start", () => {
  it("dispatches on the route key API Gateway matched", async () => {
    // Prepare
    const handler = routeTable("usage", gateway.routes, {
      "GET /usage": answer("own"),
      "GET /admin/usage": answer("everyone"),
    });
    const event = loadEvent<HttpEvent>("usage.json");
    event.routeKey = "GET /admin/usage";
    // Act
    const result = await handler(event, lambdaContext());
    // Assess
    assert.deepEqual(JSON.parse(String(result.body)), { name: "everyone" });
  });

  it("refuses a config route naming the function that it does not implement, naming the field", () => {
    assert.throws(
      () => routeTable("usage", gateway.routes, { "GET /usage": answer("own") }),
      (error: unknown) =>
        error instanceof RouteTableError &&
        error.problems.length === 1 &&
        /routes\["GET \/admin\/usage"\]\.handler: "usage" has no implementation/.test(error.message),
    );
  });

  it("refuses an implementation no config route gives to the function", () => {
    assert.throws(
      () =>
        routeTable("whoami", gateway.routes, {
          "GET /me": answer("me"),
          "GET /keys/self": answer("self"),
          "GET /whoami": answer("extra"),
        }),
      (error: unknown) =>
        error instanceof RouteTableError &&
        error.problems.length === 1 &&
        /the whoami function implements GET \/whoami but no config route gives it to whoami/.test(
          error.message,
        ),
    );
  });

  it("answers 404 to a route key that is not its own (a direct invoke)", async () => {
    const handler = routeTable("whoami", gateway.routes, {
      "GET /me": answer("me"),
      "GET /keys/self": answer("self"),
    });
    const event = loadEvent<HttpEvent>("usage.json");
    await assert.rejects(
      Promise.resolve().then(() => handler(event, lambdaContext())),
      { statusCode: 404 },
    );
  });
});
