import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { resetEnvCache } from "#shared/config/env.ts";
import {
  activeTracer,
  loadTracer,
  principalHash,
  resetTracing,
  spanName,
  type TraceSpan,
  traceClient,
  traceHeaders,
} from "#shared/observability/tracer.ts";
import { upstreamRequestHeaders } from "#shared/upstream/forwarding.ts";

/** What `traceHeaders` reads of a subsegment. */
const span = (traceId: string, id: string, notTraced = false) =>
  ({ id, notTraced, segment: { trace_id: traceId } }) as unknown as TraceSpan;

describe("tracer: trace context, names and the principal's hash", () => {
  it("derives X-Amzn-Trace-Id and a W3C traceparent from the same ids", () => {
    // Prepare / Act
    const headers = traceHeaders(span("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8"));
    // Assess
    assert.deepEqual(headers, {
      "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
      traceparent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
    });
  });

  it("says not sampled in both notations when the trace is not sampled", () => {
    const headers = traceHeaders(span("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8", true));
    assert.match(headers["x-amzn-trace-id"] as string, /;Sampled=0$/);
    assert.match(headers.traceparent as string, /-00$/);
  });

  it("sends nothing rather than a malformed context", () => {
    assert.deepEqual(traceHeaders(undefined), {});
    assert.deepEqual(traceHeaders(span("not-a-trace-id", "53995c3f42cd8ad8")), {});
    assert.deepEqual(traceHeaders(span("1-5759e988-bd862e3fe1be46a994272793", "short")), {});
  });

  it("hashes a principal to 16 hex digits of its SHA-256, the same each time", () => {
    const expected = createHash("sha256").update("key:acme").digest("hex").slice(0, 16);
    assert.equal(principalHash("key:acme"), expected);
    assert.notEqual(principalHash("key:acme"), principalHash("key:acmf"));
  });

  it("keeps span names to X-Ray's characters and length", () => {
    assert.equal(spanName("catalog 10.0.0.7:8080"), "catalog 10.0.0.7:8080");
    assert.equal(spanName("svc [::1]:80"), "svc _::1_:80");
    assert.equal(spanName("x".repeat(300)).length, 200);
  });

  it("never forwards a client's trace context upstream", () => {
    const headers = upstreamRequestHeaders({
      headers: {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate: "vendor=x",
        "X-Amzn-Trace-Id": "Root=1-00000001-000000000000000000000001",
        accept: "application/json",
      },
      identity: undefined,
      requestId: "r-1",
      sourceIp: "203.0.113.10",
    });
    assert.equal(headers.accept, "application/json");
    for (const name of ["traceparent", "tracestate", "x-amzn-trace-id"])
      assert.equal(headers[name], undefined);
  });
});

describe("tracer: off outside X-Ray", () => {
  const saved = { ...process.env };
  before(() => {
    delete process.env.AWS_EXECUTION_ENV;
    resetEnvCache();
    resetTracing();
  });
  after(() => {
    process.env = saved;
    resetEnvCache();
    resetTracing();
  });

  it("loads no tracer and leaves clients as they were", async () => {
    // Prepare
    const client = new DynamoDBClient({ region: "us-east-1" });
    const middleware = client.middlewareStack.identify().length;
    // Act
    const traced = traceClient(client);
    const tracer = await loadTracer();
    // Assess
    assert.equal(traced, client);
    assert.equal(client.middlewareStack.identify().length, middleware);
    assert.equal(tracer, undefined);
    assert.equal(activeTracer(), undefined);
    client.destroy();
  });

  it("stays off in Lambda when POWERTOOLS_TRACE_ENABLED is false", async () => {
    process.env.AWS_EXECUTION_ENV = "AWS_Lambda_nodejs24.x";
    process.env.POWERTOOLS_TRACE_ENABLED = "false";
    resetEnvCache();
    resetTracing();
    assert.equal(await loadTracer(), undefined);
  });
});
