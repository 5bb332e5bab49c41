import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent, loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

/** Three cookies, one with an `Expires` date (which holds a comma, so joining them with ", " breaks it). */
const SET_COOKIES = [
  "theme=dark; Path=/",
  "session=s3cr3t; Path=/; HttpOnly; Secure; SameSite=Lax",
  "visited=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/",
];

/**
 * Cookies through the real gateway handler (the whole Middy chain) and a real upstream on a loopback
 * port, with events in API Gateway's payload 2.0 shape: request cookies in `event.cookies` and no
 * `cookie` header; every `Set-Cookie` back in the result's `cookies`.
 */
describe("gateway handler: cookies both ways (payload 2.0)", () => {
  let upstream: Server;
  let handler: (event: HttpEvent) => Promise<HttpResult>;

  before(async () => {
    upstream = createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://upstream");
      if (url.pathname === "/set") {
        response.writeHead(200, { "content-type": "application/json", "set-cookie": SET_COOKIES });
        return void response.end(JSON.stringify({ set: SET_COOKIES.length }));
      }
      // What arrived: every raw `cookie` header line, so a cookie sent twice shows.
      const cookieLines = request.rawHeaders.filter((_, index, raw) =>
        index % 2 === 0 ? false : raw[index - 1]?.toLowerCase() === "cookie",
      );
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ cookieLines }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const gateway = loadGateway(
      defineGateway(() => ({
        auth: {},
        upstreams: { svc: { targets: [{ url }], retries: 0 } },
        routes: {
          "GET /echo": { auth: "public", proxy: { upstream: "svc", path: "/echo" } },
          "GET /set": { auth: "public", proxy: { upstream: "svc", path: "/set" } },
          "GET /no-cookies": {
            auth: "public",
            proxy: {
              upstream: "svc",
              path: "/echo",
              request: { headers: { remove: ["cookie"] } },
            },
          },
          "GET /no-set-cookies": {
            auth: "public",
            proxy: {
              upstream: "svc",
              path: "/set",
              response: { headers: { remove: ["set-cookie"] } },
            },
          },
        },
      })),
      "test",
    );
    captureEmf(); // the metrics are tested elsewhere; here they would only fill the output
    const gatewayHandler = createGatewayHandler(gateway);
    handler = (event) => gatewayHandler(event, lambdaContext());
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  /** A GET in API Gateway's shape: `cookies` set, no `cookie` header (unless `headers` adds one). */
  const get = (path: string, cookies: string[] | undefined, headers: Record<string, string> = {}) => {
    const event = httpEvent({ method: "GET", routeKey: `GET ${path}`, path, headers });
    if (cookies) event.cookies = cookies;
    return handler(event);
  };
  const cookieLines = (result: HttpResult) =>
    (JSON.parse(String(result.body)) as { cookieLines: string[] }).cookieLines;

  it("builds the upstream's cookie header from event.cookies, joined with '; '", async () => {
    const result = await get("/echo", ["theme=dark", "session=s3cr3t", "empty="]);
    assert.equal(result.statusCode, 200);
    assert.deepEqual(cookieLines(result), ["theme=dark; session=s3cr3t; empty="]);
  });

  it("sends the cookies once when the event has both event.cookies and a cookie header (serverless-offline's shape)", async () => {
    const result = await get("/echo", ["theme=dark", "session=s3cr3t"], {
      cookie: "theme=dark; session=s3cr3t",
    });
    assert.deepEqual(cookieLines(result), ["theme=dark; session=s3cr3t"]);
  });

  it("forwards a cookie header as it came when the event has no cookies field", async () => {
    const result = await get("/echo", undefined, { cookie: "theme=dark" });
    assert.deepEqual(cookieLines(result), ["theme=dark"]);
  });

  it("sends no cookie header on a route whose request mapping removes it, in either shape", async () => {
    assert.deepEqual(cookieLines(await get("/no-cookies", ["theme=dark"])), []);
    assert.deepEqual(cookieLines(await get("/no-cookies", ["theme=dark"], { cookie: "theme=dark" })), []);
  });

  it("returns every Set-Cookie of the upstream in the result's cookies, each intact, and none in headers", async () => {
    const result = await get("/set", undefined);
    assert.equal(result.statusCode, 200);
    assert.deepEqual(result.cookies, SET_COOKIES);
    assert.equal(result.headers["set-cookie"], undefined);
  });

  it("drops the upstream's cookies on a route whose response mapping removes set-cookie", async () => {
    const result = await get("/no-set-cookies", undefined);
    assert.equal(result.statusCode, 200);
    assert.equal(result.cookies, undefined);
    assert.equal(result.headers["set-cookie"], undefined);
  });

  it("forwards the cookies of the AWS sample event (events/gateway.json with a cookies field)", async () => {
    const event = loadEvent<HttpEvent>("gateway.json");
    event.routeKey = "GET /echo";
    event.rawPath = "/echo";
    event.requestContext.routeKey = "GET /echo";
    event.requestContext.http.path = "/echo";
    event.pathParameters = {};
    event.cookies = ["theme=dark", "session=s3cr3t"];
    assert.equal(event.headers.cookie, undefined, "API Gateway's payload 2.0 has no cookie header");
    const result = await handler(event);
    assert.deepEqual(cookieLines(result), ["theme=dark; session=s3cr3t"]);
  });
});
