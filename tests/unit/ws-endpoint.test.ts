import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { resetEnvCache } from "#shared/config/env.ts";
import { managementEndpoint } from "#shared/ws/endpoint.ts";

describe("the WebSocket management endpoint", () => {
  const saved = { endpoint: process.env.GATEHOUSE_WS_ENDPOINT, region: process.env.AWS_REGION };
  afterEach(() => {
    for (const [name, value] of [
      ["GATEHOUSE_WS_ENDPOINT", saved.endpoint],
      ["AWS_REGION", saved.region],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    resetEnvCache();
  });

  it("is built from the API id, Region and stage when the environment says none", () => {
    process.env.GATEHOUSE_WS_ENDPOINT = "none";
    process.env.AWS_REGION = "eu-west-1";
    resetEnvCache();
    assert.equal(
      managementEndpoint({ apiId: "k3v9w2r7tq", stage: "prod" }),
      "https://k3v9w2r7tq.execute-api.eu-west-1.amazonaws.com/prod",
    );
    process.env.AWS_REGION = "cn-north-1";
    resetEnvCache();
    assert.equal(
      managementEndpoint({ apiId: "k3v9w2r7tq", stage: "prod" }),
      "https://k3v9w2r7tq.execute-api.cn-north-1.amazonaws.com.cn/prod",
    );
  });

  it("is the environment's when it gives one (the local stack: no stage)", () => {
    process.env.GATEHOUSE_WS_ENDPOINT = "http://127.0.0.1:3001";
    resetEnvCache();
    assert.equal(managementEndpoint({ apiId: "ignored", stage: "local" }), "http://127.0.0.1:3001");
  });
});
