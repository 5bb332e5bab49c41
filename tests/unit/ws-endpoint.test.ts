import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { managementEndpoint } from "#shared/ws/endpoint.ts";

describe("the WebSocket management endpoint", () => {
  it("is built from the API id, Region and stage when the deployment gives none", () => {
    assert.equal(
      managementEndpoint({ given: undefined, region: "eu-west-1", apiId: "k3v9w2r7tq", stage: "prod" }),
      "https://k3v9w2r7tq.execute-api.eu-west-1.amazonaws.com/prod",
    );
    assert.equal(
      managementEndpoint({ given: undefined, region: "cn-north-1", apiId: "k3v9w2r7tq", stage: "prod" }),
      "https://k3v9w2r7tq.execute-api.cn-north-1.amazonaws.com.cn/prod",
    );
  });

  it("is the deployment's when it gives one (the local stack: no stage)", () => {
    assert.equal(
      managementEndpoint({
        given: "http://127.0.0.1:3001",
        region: "us-east-1",
        apiId: "ignored",
        stage: "local",
      }),
      "http://127.0.0.1:3001",
    );
  });

  it("needs an API id when the deployment gives none", () => {
    assert.throws(
      () => managementEndpoint({ given: undefined, region: "us-east-1", apiId: undefined, stage: "prod" }),
      /GATEHOUSE_WS_API_ID/,
    );
  });
});
