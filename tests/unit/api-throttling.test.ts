import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../../gateway.config.ts";
import { routeThrottling, stageThrottling } from "../../plugins/api-throttling.mjs";
import { resolvedService } from "../support/serverless.ts";

describe("API Gateway throttling from the stage params and the gateway config", () => {
  it("gives every route whose config says throttle its own stage route settings, and no other", () => {
    const gateway = loadGateway(definition, "prod");
    const settings = routeThrottling(gateway);
    const throttled = Object.entries(gateway.routes).filter(([, route]) => route.throttle);
    assert.ok(throttled.length > 0, "the example config throttles a route");
    assert.deepEqual(
      settings,
      Object.fromEntries(
        throttled.map(([key, route]) => [
          key,
          {
            ThrottlingRateLimit: route.throttle?.rateLimit,
            ThrottlingBurstLimit: route.throttle?.burstLimit,
          },
        ]),
      ),
    );
  });

  it("sets both APIs' stage throttling from per-stage params, and refuses a missing value", async () => {
    const prod = (await resolvedService("prod")).custom.throttling;
    assert.deepEqual(stageThrottling(prod.http, "http"), {
      ThrottlingRateLimit: 5000,
      ThrottlingBurstLimit: 2500,
    });
    assert.deepEqual(stageThrottling(prod.websocket, "ws"), {
      ThrottlingRateLimit: 2000,
      ThrottlingBurstLimit: 1000,
    });
    const dev = (await resolvedService("dev")).custom.throttling;
    assert.deepEqual(stageThrottling(dev.http, "http"), {
      ThrottlingRateLimit: 100,
      ThrottlingBurstLimit: 50,
    });
    assert.throws(
      () => stageThrottling({ rate: "x", burst: 1 }, "custom.throttling.http"),
      /custom\.throttling\.http/,
    );
  });
});
