import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

// CORS is tested against the real gateway handler in-process: serverless-offline adds permissive CORS
// headers of its own to every response and answers preflights itself, so through it nothing is proven.
describe("gateway handler: CORS (@middy/http-cors per route), versions by header, deprecation", () => {
  let upstream: Server;
  let handler: (event: HttpEvent) => Promise<HttpResult>;
  /** The EMF records the gateway wrote (captured instead of printed). */
  let emf: Record<string, unknown>[] = [];

  before(async () => {
    upstream = createServer((request, response) => {
      response
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ ok: true, path: request.url }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const gateway = loadGateway(
      defineGateway(() => ({
        auth: {},
        cors: { origins: ["https://*.example.com", "http://localhost:5173"] },
        upstreams: { svc: { targets: [{ url }], retries: 0 } },
        routes: {
          "GET /items": { auth: "public", proxy: { upstream: "svc", path: "/items" } },
          "POST /items": {
            auth: "public",
            proxy: { upstream: "svc", path: "/items" },
            body: { schema: { type: "object", required: ["name"] } },
          },
          "GET /private": {
            auth: "public",
            proxy: { upstream: "svc", path: "/private" },
            cors: { origins: ["https://app.partner.io"], credentials: true },
          },
          "GET /no-browsers": { auth: "public", proxy: { upstream: "svc", path: "/x" }, cors: false },
          "GET /things/{id}": {
            auth: "public",
            proxy: {
              upstream: "svc",
              path: "/things/{id}",
              versions: { "2": { upstream: "svc", path: "/v2/things/{id}" } },
            },
            deprecated: {
              since: "2026-10-01T00:00:00Z",
              sunset: "2027-06-30T00:00:00Z",
              link: "https://docs.example.com/x",
            },
          },
        },
      })),
      "test",
    );
    emf = captureEmf();
    const gatewayHandler = createGatewayHandler(gateway);
    handler = (event) => gatewayHandler(event, lambdaContext());
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const request = (
    method: string,
    routeKey: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
    pathParameters?: Record<string, string>,
  ) => handler(httpEvent({ method, routeKey, path, headers, body, pathParameters }));
  const allowOrigin = (result: HttpResult) => result.headers["Access-Control-Allow-Origin"];

  it("allows a listed origin and a one-label wildcard, never a suffix trick", async () => {
    assert.equal(
      allowOrigin(await request("GET", "GET /items", "/items", { origin: "https://app.example.com" })),
      "https://app.example.com",
    );
    assert.equal(
      allowOrigin(await request("GET", "GET /items", "/items", { origin: "http://localhost:5173" })),
      "http://localhost:5173",
    );
    for (const origin of [
      "https://example.com.evil.net",
      "https://evil.net",
      "https://a.b.example.com",
      "http://app.example.com",
    ]) {
      assert.equal(allowOrigin(await request("GET", "GET /items", "/items", { origin })), undefined, origin);
    }
  });

  it("sends credentials only where a route asks, and nothing on a route with cors: false", async () => {
    const open = await request("GET", "GET /items", "/items", { origin: "https://app.example.com" });
    assert.equal(open.headers["Access-Control-Allow-Credentials"], undefined);
    const privateRoute = await request("GET", "GET /private", "/private", {
      origin: "https://app.partner.io",
    });
    assert.equal(allowOrigin(privateRoute), "https://app.partner.io");
    assert.equal(privateRoute.headers["Access-Control-Allow-Credentials"], "true");
    assert.equal(
      allowOrigin(await request("GET", "GET /private", "/private", { origin: "https://app.example.com" })),
      undefined,
    );
    assert.equal(
      allowOrigin(
        await request("GET", "GET /no-browsers", "/no-browsers", { origin: "https://app.example.com" }),
      ),
      undefined,
    );
  });

  it("answers a preflight on the catch-all with 204 and the route's methods, without credentials", async () => {
    const preflight = await request("OPTIONS", "$default", "/items", {
      origin: "https://app.example.com",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type",
    });
    assert.equal(preflight.statusCode, 204);
    assert.equal(allowOrigin(preflight), "https://app.example.com");
    assert.equal(preflight.headers["Access-Control-Allow-Methods"], "POST,OPTIONS");
    assert.match(String(preflight.headers["Access-Control-Allow-Headers"]), /content-type/);
    assert.equal(preflight.headers["Access-Control-Max-Age"], "600");

    const unknown = await request("OPTIONS", "$default", "/nowhere", {
      origin: "https://app.example.com",
      "access-control-request-method": "GET",
    });
    assert.equal(unknown.statusCode, 404);
  });

  it("picks a route's version by header (default without it, 400 for an unknown one) and varies on it", async () => {
    const get = (headers: Record<string, string>) =>
      request("GET", "GET /things/{id}", "/things/7", headers, undefined, { id: "7" });
    const withPath = async (headers: Record<string, string>) => {
      const result = await get(headers);
      return { result, path: (JSON.parse(String(result.body)) as { path?: string }).path };
    };
    const plain = await withPath({});
    assert.equal(plain.path, "/things/7");
    assert.match(
      String(plain.result.headers.vary),
      /(^|, )x-api-version(,|$)/,
      "caches keep the versions apart",
    );
    assert.equal((await withPath({ "x-api-version": "2" })).path, "/v2/things/7");
    const unknown = await get({ "x-api-version": "9" });
    assert.equal(unknown.statusCode, 400);
    assert.match(JSON.parse(String(unknown.body)).detail, /use 2 or leave it out/);
  });

  it("marks every answer of a deprecated route, errors included", async () => {
    for (const headers of [{}, { "x-api-version": "9" }] as Record<string, string>[]) {
      const result = await request("GET", "GET /things/{id}", "/things/7", headers, undefined, { id: "7" });
      assert.equal(result.headers.deprecation, `@${Date.parse("2026-10-01T00:00:00Z") / 1000}`);
      assert.equal(result.headers.sunset, "Wed, 30 Jun 2027 00:00:00 GMT");
      assert.equal(
        result.headers.link,
        '<https://docs.example.com/x>; rel="deprecation", <https://docs.example.com/x>; rel="sunset"',
      );
    }
    const current = await request("GET", "GET /items", "/items", {});
    assert.equal(current.headers.deprecation, undefined);
  });

  it("writes EMF metrics per route (count, 4XX, 5XX, latency) and per upstream target", async () => {
    emf.length = 0;
    await request("GET", "GET /items", "/items", {});
    await request("POST", "POST /items", "/items", { "content-type": "application/json" }, "{}");
    await request("GET", "$default", "/nowhere", {});
    const byRoute = (route: string) => emf.filter((record) => record.route === route && "Requests" in record);
    const [ok] = byRoute("GET /items");
    assert.ok(ok, JSON.stringify(emf));
    assert.deepEqual([ok.Requests, ok.Status4XX, ok.Status429, ok.Status5XX], [1, 0, 0, 0]);
    assert.equal(typeof ok.Latency, "number");
    const aws = ok._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
    assert.equal(aws.CloudWatchMetrics[0]?.Namespace, "Gatehouse");
    assert.ok(aws.CloudWatchMetrics[0]?.Dimensions[0]?.includes("route"));
    assert.deepEqual([byRoute("POST /items")[0]?.Status4XX, byRoute("unmatched")[0]?.Status4XX], [1, 1]);
    const upstreamRecord = emf.find((record) => "UpstreamLatency" in record);
    assert.equal(upstreamRecord, ok, "a proxied request is one record: its counts and its upstream call");
    assert.deepEqual(aws.CloudWatchMetrics[0]?.Dimensions, [
      ["service", "route"],
      ["service", "route", "upstream", "target"],
    ]);
    assert.equal(upstreamRecord?.route, "GET /items");
    assert.equal(upstreamRecord?.upstream, "svc");
    assert.match(String(upstreamRecord?.target), /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("puts CORS headers on error responses too, so the browser can read the problem", async () => {
    const invalid = await request(
      "POST",
      "POST /items",
      "/items",
      { origin: "https://app.example.com", "content-type": "application/json" },
      "{}",
    );
    assert.equal(invalid.statusCode, 400);
    assert.equal(allowOrigin(invalid), "https://app.example.com");
  });
});

describe("gateway handler: the preflight of an ANY route behind an authorizer", () => {
  it("answers the OPTIONS route's event (no authorizer context) with the ANY route's CORS", async () => {
    // Prepare: the example config, whose ANY /v1/echo/{rest+} needs an API key; the event is what
    // API Gateway sends for its added public OPTIONS route: no authorizer, no credentials.
    const { createLimiter } = await import("#shared/quota/limiter.ts");
    const { createMetering } = await import("#shared/quota/metering.ts");
    const { unreachableClient } = await import("../support/dynamo.ts");
    const { default: definition } = await import("../../gateway.config.ts");
    const { lazyLambdaClient } = await import("#shared/clients/lambda.ts");
    const handler = createGatewayHandler(loadGateway(definition, "test"), {
      limiter: createLimiter({ client: unreachableClient(), tableName: "unused" }),
      metering: createMetering({ client: unreachableClient(), tableName: "unused" }),
      // the config's lambda upstream names a function
      lambda: { functionPrefix: "gatehouse-test-", client: lazyLambdaClient() },
    });
    const event = httpEvent({
      method: "OPTIONS",
      routeKey: "OPTIONS /v1/echo/{rest+}",
      path: "/v1/echo/anything/here",
      headers: {
        origin: "https://app.example.com",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "content-type, x-api-key",
      },
      pathParameters: { rest: "anything/here" },
    });
    // Act
    const result = (await handler(event, lambdaContext())) as HttpResult;
    // Assess
    const header = (name: string) =>
      Object.entries(result.headers).find(([key]) => key.toLowerCase() === name)?.[1];
    assert.equal(result.statusCode, 204);
    assert.equal(header("access-control-allow-origin"), "https://app.example.com");
    assert.match(String(header("access-control-allow-methods")), /PUT/);
  });
});
