import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import { logger } from "#shared/observability/logger.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

/**
 * Request/response mapping, canaries and aggregate routes, through the real gateway handler (the
 * whole Middy chain) against a real upstream on a loopback port.
 */
describe("gateway handler: mapping, canary and aggregate routes", () => {
  let upstream: Server;
  let handler: (event: HttpEvent) => Promise<HttpResult>;
  /** Slow requests the upstream saw cancelled (the socket closed before it answered). */
  let slowCancelled = 0;
  let slowAnswered = 0;
  /** Every path the upstream was asked for. */
  const seen: string[] = [];

  before(async () => {
    upstream = createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://upstream");
      seen.push(url.pathname);
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", () => {
        const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
          response
            .writeHead(status, { "content-type": "application/json", ...headers })
            .end(JSON.stringify(body));
        const [, kind, arg] = url.pathname.split("/");
        if (kind === "echo") {
          return json(
            200,
            {
              method: request.method,
              path: url.pathname,
              query: Object.fromEntries(url.searchParams),
              headers: request.headers,
              body: Buffer.concat(chunks).toString("utf8"),
            },
            { "x-upstream-internal": "secret", "x-old-name": "renamed" },
          );
        }
        if (kind === "status") return json(Number(arg), { status: Number(arg) });
        if (kind === "notjson") {
          return response.writeHead(200, { "content-type": "application/json" }).end("{not json");
        }
        if (kind === "slow") {
          const timer = setTimeout(
            () => {
              slowAnswered += 1;
              json(200, { slow: true });
            },
            Number(url.searchParams.get("ms")),
          );
          response.on("close", () => {
            if (!response.writableEnded) {
              slowCancelled += 1;
              clearTimeout(timer);
            }
          });
          return;
        }
        json(404, { error: "no such thing" });
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const gateway = loadGateway(
      defineGateway(() => ({
        auth: {},
        upstreams: {
          svc: { targets: [{ url }], retries: 0, timeoutMs: 5_000 },
          // A second name for the same service, to tell the canary's answers apart in the metrics.
          next: { targets: [{ url }], retries: 0 },
        },
        routes: {
          "POST /map/{id}": {
            auth: "public",
            body: {
              schema: {
                type: "object",
                required: ["productId", "quantity"],
                properties: { productId: { type: "string" }, quantity: { type: "integer" } },
              },
            },
            proxy: {
              upstream: "svc",
              path: "/echo/{id}",
              request: {
                headers: { rename: { "x-old": "x-new" }, remove: ["cookie"], set: { "x-added": "yes" } },
                query: { rename: { user: "userId" }, remove: ["debug"], set: { source: "gateway" } },
                body: "{ sku: productId, qty: quantity, channel: 'web' }",
              },
              response: {
                body: '{ upstreamPath: path, query: query, sent: body, newHeader: headers."x-new" }',
                headers: {
                  rename: { "x-old-name": "x-new-name" },
                  remove: ["x-upstream-internal"],
                  set: { "x-mapped": "1" },
                },
              },
            },
          },
          "GET /map-raw": {
            auth: "public",
            proxy: {
              upstream: "svc",
              path: "/echo/raw",
              request: {
                headers: { rename: { "x-old": "x-new" }, remove: ["cookie"], set: { "x-added": "yes" } },
                query: { rename: { user: "userId" }, set: { source: "gateway" } },
              },
            },
          },
          "GET /status/{code}": {
            auth: "public",
            proxy: {
              upstream: "svc",
              path: "/status/{code}",
              response: { status: { "404": 200, "201": 202 }, body: "{ mapped: status }" },
            },
          },
          "GET /notjson": {
            auth: "public",
            proxy: { upstream: "svc", path: "/notjson", response: { body: "a" } },
          },
          "GET /canary": {
            auth: "public",
            proxy: {
              upstream: "svc",
              path: "/echo/stable",
              canary: { upstream: "next", path: "/echo/canary", weight: 30, header: "x-canary" },
            },
          },
          "GET /agg/{id}": {
            auth: "public",
            aggregate: {
              calls: {
                user: { upstream: "svc", path: "/echo/users/{id}" },
                orders: { upstream: "svc", path: "/echo/orders", query: { userId: "{id}", limit: "5" } },
              },
              merge:
                '{ userPath: user.path, ordersQuery: orders.query, forwardedId: user.headers."x-request-id" }',
            },
          },
          "GET /agg-plain": {
            auth: "public",
            aggregate: {
              calls: {
                a: { upstream: "svc", path: "/status/200" },
                b: { upstream: "svc", path: "/status/201" },
              },
            },
          },
          "GET /agg-fail": {
            auth: "public",
            aggregate: {
              calls: {
                missing: { upstream: "svc", path: "/status/404" },
                slow: { upstream: "svc", path: "/slow", query: { ms: "4000" } },
              },
            },
          },
          "GET /agg-fail-503": {
            auth: "public",
            aggregate: {
              calls: {
                ok: { upstream: "svc", path: "/status/200" },
                down: { upstream: "svc", path: "/status/503" },
              },
            },
          },
          "GET /agg-partial": {
            auth: "public",
            aggregate: {
              calls: {
                ok: { upstream: "svc", path: "/echo/ok" },
                broken: { upstream: "svc", path: "/status/500" },
                late: { upstream: "svc", path: "/slow", query: { ms: "3000" }, timeoutMs: 200 },
                garbled: { upstream: "svc", path: "/notjson" },
              },
              merge: "{ okPath: ok.path, late: late }",
              onFailure: "partial",
            },
          },
          "GET /agg-required": {
            auth: "public",
            aggregate: {
              calls: {
                ok: { upstream: "svc", path: "/echo/ok" },
                vital: { upstream: "svc", path: "/status/500", required: true },
              },
              onFailure: "partial",
            },
          },
          "GET /agg-all-fail": {
            auth: "public",
            aggregate: {
              calls: {
                a: { upstream: "svc", path: "/status/500" },
                b: { upstream: "svc", path: "/status/502" },
              },
              onFailure: "partial",
            },
          },
        },
      })),
      "test",
    );
    // The EMF records are tested elsewhere; here they would only fill the output.
    captureEmf();
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
    {
      headers = {},
      body,
      pathParameters,
      query = "",
      sourceIp,
    }: {
      headers?: Record<string, string>;
      body?: string;
      pathParameters?: Record<string, string>;
      query?: string;
      sourceIp?: string;
    } = {},
  ) => handler(httpEvent({ method, routeKey, path, headers, body, pathParameters, query, sourceIp }));
  const bodyOf = (result: HttpResult) => JSON.parse(String(result.body)) as Record<string, unknown>;

  it("maps request headers, query and body on the way up, and the answer's body and headers on the way down", async () => {
    const result = await request("POST", "POST /map/{id}", "/map/42", {
      pathParameters: { id: "42" },
      query: "user=7&debug=1&keep=a%20b",
      headers: {
        "content-type": "application/json",
        "x-old": "carried",
        cookie: "session=abc",
        "x-added": "client-value",
      },
      body: JSON.stringify({ productId: "p-1", quantity: 2 }),
    });
    assert.equal(result.statusCode, 200, String(result.body));
    const body = bodyOf(result);
    assert.equal(body.upstreamPath, "/echo/42");
    assert.deepEqual(body.query, { userId: "7", keep: "a b", source: "gateway" });
    assert.deepEqual(JSON.parse(String(body.sent)), { sku: "p-1", qty: 2, channel: "web" });
    assert.equal(body.newHeader, "carried");
    assert.equal(result.headers["x-upstream-internal"], undefined);
    assert.equal(result.headers["x-new-name"], "renamed");
    assert.equal(result.headers["x-old-name"], undefined);
    assert.equal(result.headers["x-mapped"], "1");
    assert.ok(result.headers["x-request-id"], "the chain's own headers are still added after the mapping");
  });

  it("sends the mapped headers, the mapping's value over the client's, and never a forged identity", async () => {
    const result = await request("GET", "GET /map-raw", "/map-raw", {
      query: "user=7",
      headers: {
        cookie: "a=b",
        "x-added": "client",
        "x-old": "v",
        "x-gatehouse-principal": "forged",
      },
    });
    assert.equal(result.statusCode, 200);
    const sent = bodyOf(result);
    const headers = sent.headers as Record<string, string>;
    assert.equal(headers["x-added"], "yes");
    assert.equal(headers.cookie, undefined);
    assert.equal(headers["x-new"], "v");
    assert.equal(headers["x-old"], undefined);
    assert.equal(headers["x-gatehouse-principal"], undefined);
    assert.deepEqual(sent.query, { userId: "7", source: "gateway" });
  });

  it("refuses a body the schema refuses before mapping it, and a body mapping never sees bad JSON", async () => {
    const invalid = await request("POST", "POST /map/{id}", "/map/1", {
      pathParameters: { id: "1" },
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ productId: 5 }),
    });
    assert.equal(invalid.statusCode, 400);
    assert.equal(invalid.headers["content-type"], "application/problem+json");
  });

  it("maps statuses, and maps bodies of 2XX answers only", async () => {
    const created = await request("GET", "GET /status/{code}", "/status/201", {
      pathParameters: { code: "201" },
    });
    assert.equal(created.statusCode, 202);
    assert.deepEqual(bodyOf(created), { mapped: 201 });
    const missing = await request("GET", "GET /status/{code}", "/status/404", {
      pathParameters: { code: "404" },
    });
    assert.equal(missing.statusCode, 200);
    assert.deepEqual(bodyOf(missing), { status: 404 }, "an error body keeps its shape");
    const teapot = await request("GET", "GET /status/{code}", "/status/418", {
      pathParameters: { code: "418" },
    });
    assert.equal(teapot.statusCode, 418, "unmapped statuses pass through");
  });

  it("answers 502 problem+json when an upstream body the route maps is not JSON", async () => {
    const result = await request("GET", "GET /notjson", "/notjson");
    assert.equal(result.statusCode, 502);
    assert.equal(result.headers["content-type"], "application/problem+json");
    assert.doesNotMatch(String(result.body), /not json|stack/i);
  });

  it("splits canary traffic by weight, sticky per caller, with a header to force a side", async () => {
    const sideOf = async (ip: string, headers: Record<string, string> = {}) => {
      const result = await request("GET", "GET /canary", "/canary", { sourceIp: ip, headers });
      assert.equal(result.statusCode, 200);
      return String(bodyOf(result).path);
    };
    // 250 distinct callers, the first 150 of them asking twice: nobody moves, and the share is
    // near the 30 % weight.
    const byCaller = new Map<string, string>();
    for (let i = 0; i < 400; i++) {
      const caller = `198.51.100.${i % 250}`;
      const side = await sideOf(caller);
      const previous = byCaller.get(caller);
      if (previous) assert.equal(side, previous, `caller ${caller} moved between sides`);
      byCaller.set(caller, side);
    }
    const onCanary = [...byCaller.values()].filter((path) => path === "/echo/canary").length;
    assert.ok(onCanary > 250 * 0.2 && onCanary < 250 * 0.4, `${onCanary} of 250 callers on the canary`);
    assert.equal(await sideOf("198.51.100.1", { "x-canary": "always" }), "/echo/canary");
    const forced = await request("GET", "GET /canary", "/canary", { headers: { "x-canary": "always" } });
    assert.match(String(forced.headers.vary), /x-canary/, "caches key on the forcing header");
    assert.equal(await sideOf("198.51.100.1", { "x-canary": "never" }), "/echo/stable");
    const bad = await request("GET", "GET /canary", "/canary", { headers: { "x-canary": "sometimes" } });
    assert.equal(bad.statusCode, 400);
  });

  it("merges parallel calls with the route's mapping, filling query templates from path parameters", async () => {
    const result = await request("GET", "GET /agg/{id}", "/agg/a%20b", { pathParameters: { id: "a b" } });
    assert.equal(result.statusCode, 200, String(result.body));
    const body = bodyOf(result);
    assert.equal(body.userPath, "/echo/users/a%20b");
    assert.deepEqual(body.ordersQuery, { userId: "a b", limit: "5" });
    assert.equal(body.forwardedId, result.headers["x-request-id"], "every call carries the request id");
    const plain = await request("GET", "GET /agg-plain", "/agg-plain");
    assert.deepEqual(bodyOf(plain), { a: { status: 200 }, b: { status: 201 } });
  });

  it("refuses a path parameter that would escape its segment before making any call", async () => {
    const before = seen.length;
    const result = await request("GET", "GET /agg/{id}", "/agg/x", { pathParameters: { id: ".." } });
    assert.equal(result.statusCode, 400);
    assert.equal(seen.length, before, "no upstream call was made");
  });

  it("fails fast under `fail`: an upstream 404 is a 404 and the slow call is cancelled", async () => {
    const cancelledBefore = slowCancelled;
    const warned: string[] = [];
    const warn = mock.method(logger, "warn", (message: string) => {
      warned.push(message);
    });
    const answeredBefore = slowAnswered;
    const result = await request("GET", "GET /agg-fail", "/agg-fail");
    warn.mock.restore();
    assert.deepEqual(warned, [], "the cancelled call is not logged as a failure of its own");
    assert.equal(result.statusCode, 404);
    assert.equal(result.headers["content-type"], "application/problem+json");
    assert.match(String(bodyOf(result).detail), /missing/);
    assert.equal(slowAnswered, answeredBefore, "the answer came before the slow call's: it did not wait");
    // The upstream sees the close when its socket event runs, later on a loaded machine: wait for it
    // (the slow call would answer after 4 s; cancelled, it never does).
    for (const deadline = Date.now() + 10_000; slowCancelled === cancelledBefore && Date.now() < deadline; )
      await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(slowCancelled, cancelledBefore + 1, "the upstream saw the slow call cancelled");
    const down = await request("GET", "GET /agg-fail-503", "/agg-fail-503");
    assert.equal(down.statusCode, 502, "an upstream 5XX is the gateway's 502");
    assert.doesNotMatch(String(bodyOf(down).detail), /503|down/, "no upstream detail leaks");
  });

  it("answers what came under `partial`, with each failure marked, and a per-call timeout of its own", async () => {
    const answeredBefore = slowAnswered;
    const result = await request("GET", "GET /agg-partial", "/agg-partial");
    assert.equal(result.statusCode, 200, String(result.body));
    assert.equal(slowAnswered, answeredBefore, "the answer came before the late call's: it was cut");
    assert.equal(result.headers["x-gatehouse-complete"], "false");
    const body = bodyOf(result);
    assert.equal(body.okPath, "/echo/ok");
    assert.equal(body.late, null);
    const errors = body._errors as Record<string, { status: number; title: string; detail: string }>;
    assert.deepEqual(Object.keys(errors).sort(), ["broken", "garbled", "late"]);
    assert.equal(errors.late?.status, 504);
    assert.equal(errors.broken?.status, 502);
    assert.equal(errors.garbled?.status, 502);
    assert.equal(errors.broken?.detail, "The broken call failed", "5XX details stay in the log");
  });

  it("fails a `partial` route when a required call fails, or when every call does", async () => {
    const required = await request("GET", "GET /agg-required", "/agg-required");
    assert.equal(required.statusCode, 502);
    const all = await request("GET", "GET /agg-all-fail", "/agg-all-fail");
    assert.equal(all.statusCode, 502);
    assert.equal(all.headers["content-type"], "application/problem+json");
  });
});
