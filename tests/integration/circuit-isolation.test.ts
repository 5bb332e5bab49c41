import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import fc from "fast-check";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import { logger } from "#shared/observability/logger.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

/** What a healthy upstream saw of one request: its raw header lines (bytes as latin1) and its method. */
interface Seen {
  method: string | undefined;
  path: string;
  /** Lower-case name → raw value; the bytes on the wire, read as latin1 (what Node gives). */
  headers: Record<string, string>;
}

/** A healthy upstream on a loopback port: answers 200 at once to anything, except `/reset`, which it hangs up on. */
async function healthyUpstream() {
  const seen: Seen[] = [];
  const server: Server = createServer((request: IncomingMessage, response) => {
    const path = new URL(request.url ?? "/", "http://upstream").pathname;
    if (path.startsWith("/reset")) return void request.socket.destroy();
    const headers: Record<string, string> = {};
    for (let i = 0; i < request.rawHeaders.length; i += 2) {
      headers[String(request.rawHeaders[i]).toLowerCase()] = String(request.rawHeaders[i + 1]);
    }
    seen.push({ method: request.method, path, headers });
    request.resume();
    request.on("end", () => {
      response.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Caller {
  principal: string;
  authType?: string;
  plan?: string;
  scopes?: string;
  tenant?: string;
  keyId?: string;
}

/** The identity as the API-key authorizer hands it to the gateway (API Gateway's `authorizer.lambda`). */
function withIdentity(event: HttpEvent, caller: Caller): HttpEvent {
  (event.requestContext as unknown as { authorizer: unknown }).authorizer = {
    lambda: {
      authType: "apiKey",
      plan: "free",
      scopes: "",
      tenant: "",
      keyId: "key_1",
      issuer: "",
      ...caller,
    },
  };
  return event;
}

/** Decodes an identity header the way docs/proxying.md tells upstream authors to. */
function decodeIdentity(value: string): string {
  return value.startsWith("UTF-8''") ? decodeURIComponent(value.slice("UTF-8''".length)) : value;
}

/** The gateway's config for these tests: the breaker opens after two consecutive failures, as in the issue. */
function gatewayFor(url: string, breaker = { consecutiveFailures: 2, halfOpenAfterMs: 60_000 }) {
  return loadGateway(
    defineGateway(() => ({
      auth: {},
      upstreams: {
        users: { targets: [{ url }], timeoutMs: 2_000, retries: 2, breaker },
        fragile: { targets: [{ url }], timeoutMs: 2_000, retries: 2, breaker },
      },
      routes: {
        "GET /users/{id}": { auth: { apiKey: {} }, proxy: { upstream: "users", path: "/users/{id}" } },
        "ANY /echo/{rest+}": {
          auth: { apiKey: {} },
          proxy: { upstream: "users", path: "/echo/{rest+}" },
          body: { contentTypes: ["*/*"] },
        },
        "GET /reset": { auth: { apiKey: {} }, proxy: { upstream: "fragile", path: "/reset" } },
        "GET /summary/{id}": {
          auth: { apiKey: {} },
          aggregate: {
            calls: {
              user: { upstream: "users", path: "/users/{id}" },
              orders: { upstream: "users", path: "/orders", query: { user: "{id}" } },
            },
          },
        },
      },
    })),
    "test",
  );
}

const problemOf = (result: HttpResult) => JSON.parse(String(result.body)) as Record<string, unknown>;

describe("circuit isolation: what a client sends never counts against an upstream", () => {
  let upstream: Awaited<ReturnType<typeof healthyUpstream>>;
  let emf: Record<string, unknown>[] = [];
  before(async () => {
    upstream = await healthyUpstream();
    emf = captureEmf();
    for (const level of ["info", "warn", "error"] as const) mock.method(logger, level, () => undefined);
  });
  after(async () => {
    mock.restoreAll();
    await upstream.stop();
  });

  /** A fresh gateway (fresh circuits) and a GET of a user as a given caller. */
  function gateway() {
    const handle = createGatewayHandler(gatewayFor(upstream.url));
    const getUser = (caller: Caller, headers: Record<string, string> = {}) =>
      handle(
        withIdentity(
          httpEvent({
            method: "GET",
            routeKey: "GET /users/{id}",
            path: "/users/1",
            pathParameters: { id: "1" },
            headers,
          }),
          caller,
        ),
        lambdaContext(),
      );
    return { handle, getUser };
  }
  const otherTenant: Caller = { principal: "key:acme", tenant: "acme" };

  it("drops a client's Expect: 100-continue: the request is answered, and other callers still get through", async () => {
    const { getUser } = gateway();
    const before = upstream.seen.length;
    for (let i = 0; i < 3; i++) {
      const result = await getUser({ principal: "key:curl-user" }, { expect: "100-continue" });
      assert.equal(result.statusCode, 200, String(result.body));
    }
    const sent = upstream.seen.slice(before);
    assert.equal(sent.length, 3, "each request was sent once");
    assert.ok(sent.every((request) => request.headers.expect === undefined));
    assert.equal((await getUser(otherTenant)).statusCode, 200);
  });

  it("sends an identity above U+00FF RFC 8187-encoded (UTF-8''…), exact once decoded, and the circuit stays closed", async () => {
    const { getUser } = gateway();
    const tokyo: Caller = { principal: "key:東京チーム", tenant: "東京", keyId: "鍵_1" };
    const before = upstream.seen.length;
    for (let i = 0; i < 3; i++) assert.equal((await getUser(tokyo)).statusCode, 200);
    const headers = upstream.seen[before]?.headers ?? {};
    assert.equal(
      headers["x-gatehouse-principal"],
      "UTF-8''key%3A%E6%9D%B1%E4%BA%AC%E3%83%81%E3%83%BC%E3%83%A0",
    );
    assert.equal(decodeIdentity(String(headers["x-gatehouse-principal"])), "key:東京チーム");
    assert.equal(decodeIdentity(String(headers["x-gatehouse-tenant"])), "東京");
    assert.equal(decodeIdentity(String(headers["x-gatehouse-key-id"])), "鍵_1");
    assert.equal(headers["x-gatehouse-plan"], "free", "plain ASCII values are sent as they are");
    assert.equal((await getUser(otherTenant)).statusCode, 200);
  });

  it("encodes an identity with control characters, or one that looks encoded, so no value is ambiguous", async () => {
    const { getUser } = gateway();
    const before = upstream.seen.length;
    for (const principal of ["key:line\r\nx-injected: 1", "UTF-8''key%3Aadmin", "key:café", " key:padded "]) {
      assert.equal((await getUser({ principal })).statusCode, 200, principal);
      const sent = upstream.seen.at(-1)?.headers ?? {};
      assert.match(String(sent["x-gatehouse-principal"]), /^UTF-8''[A-Za-z0-9!#$&+.^_`|~%-]*$/, principal);
      assert.equal(decodeIdentity(String(sent["x-gatehouse-principal"])), principal);
      assert.equal(sent["x-injected"], undefined);
    }
    assert.equal(upstream.seen.length - before, 4);
  });

  it("forwards a client header above U+00FF as its UTF-8 bytes, and the circuit stays closed", async () => {
    const { getUser } = gateway();
    for (let i = 0; i < 3; i++) {
      const result = await getUser({ principal: "key:a" }, { "x-team": "東京チーム" });
      assert.equal(result.statusCode, 200, String(result.body));
      const raw = String(upstream.seen.at(-1)?.headers["x-team"]);
      assert.equal(Buffer.from(raw, "latin1").toString("utf8"), "東京チーム");
    }
    assert.equal((await getUser(otherTenant)).statusCode, 200);
  });

  it("refuses a client header that cannot be sent with 400 problem+json naming it: never sent, retried, counted or metered", async () => {
    const { getUser } = gateway();
    const before = upstream.seen.length;
    emf.length = 0;
    const unsendable: Record<string, string>[] = [
      { "x-note": "a\u0001b" },
      { "x-note": "a\u007fb" },
      { "x bad name": "1" },
    ];
    for (const headers of unsendable) {
      const result = await getUser({ principal: "key:a" }, headers);
      assert.equal(result.statusCode, 400, JSON.stringify(headers));
      assert.equal(result.headers["content-type"], "application/problem+json");
      assert.match(String(problemOf(result).detail), new RegExp(Object.keys(headers)[0] as string));
    }
    assert.equal(upstream.seen.length, before, "nothing was sent");
    assert.ok(!emf.some((record) => "UpstreamErrors" in record), "and no upstream call is in the metrics");
    assert.equal((await getUser(otherTenant)).statusCode, 200);
  });

  it("answers a method the gateway does not proxy (TRACE, CONNECT, TRACK) with 405, and counts none of them", async () => {
    const { handle, getUser } = gateway();
    for (const method of ["TRACE", "CONNECT", "TRACK", "TRACE"]) {
      const result = await handle(
        withIdentity(
          httpEvent({
            method,
            routeKey: "ANY /echo/{rest+}",
            path: "/echo/a",
            pathParameters: { rest: "a" },
          }),
          { principal: "key:a" },
        ),
        lambdaContext(),
      );
      assert.equal(result.statusCode, 405, method);
      assert.equal(result.headers["content-type"], "application/problem+json");
    }
    assert.equal((await getUser(otherTenant)).statusCode, 200);
  });

  it("still counts what the upstream does: a reset connection fails (502) and then opens that circuit (503)", async () => {
    const { handle } = gateway();
    const reset = () =>
      handle(
        withIdentity(httpEvent({ method: "GET", routeKey: "GET /reset", path: "/reset" }), {
          principal: "key:a",
        }),
        lambdaContext(),
      );
    emf.length = 0;
    const first = await reset();
    assert.ok(first.statusCode === 502 || first.statusCode === 503, String(first.statusCode));
    const second = await reset();
    assert.equal(second.statusCode, 503);
    assert.ok(second.headers["retry-after"]);
    // The metrics page plots the circuit by its refusals: 1 on the refused request only.
    const counted = emf.filter((record) => record.route === "GET /reset" && "Requests" in record);
    assert.equal(counted.length, 2);
    assert.equal(counted[1]?.CircuitOpen, 1, JSON.stringify(counted[1]));
    if (first.statusCode === 502) assert.equal(counted[0]?.CircuitOpen, 0);
  });

  it("property: no sequence of client-controlled inputs gets a 5XX or opens a circuit while the upstream is healthy", async () => {
    // The most sensitive breaker there is: one counted failure would open it. Each sequence gets a
    // gateway of its own (fresh circuits), so a failing sequence shrinks to the inputs that caused it.
    const config = gatewayFor(upstream.url, { consecutiveFailures: 1, halfOpenAfterMs: 300_000 });
    const control = (send: (event: HttpEvent) => Promise<HttpResult>) =>
      send(
        withIdentity(
          httpEvent({
            method: "GET",
            routeKey: "GET /users/{id}",
            path: "/users/1",
            pathParameters: { id: "1" },
          }),
          otherTenant,
        ),
      );

    const anyText = (maxLength: number) =>
      fc.oneof(
        fc.string({ maxLength }),
        fc.string({ unit: "binary", maxLength }),
        // Any UTF-16 code unit, lone surrogates included.
        fc.string({
          unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
          maxLength,
        }),
        fc.constantFrom(
          "100-continue",
          "東京チーム",
          "a\r\nb",
          "a\u0000b",
          "UTF-8''x",
          " padded ",
          "close",
          "",
        ),
      );
    const headerName = fc.oneof(
      fc.constantFrom(
        "expect",
        "connection",
        "keep-alive",
        "upgrade",
        "transfer-encoding",
        "te",
        "trailer",
        "host",
        "content-length",
        "content-type",
        "cookie",
        "authorization",
        "x-api-key",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-gatehouse-principal",
        "x-request-id",
        "proxy-authorization",
        "accept",
        "if-none-match",
      ),
      fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/),
      anyText(20).filter((name) => name.length > 0),
    );
    const clientRequest = fc.record({
      aggregate: fc.boolean(),
      method: fc.constantFrom("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"),
      rest: fc.oneof(fc.stringMatching(/^[a-z0-9]{1,10}$/), anyText(30)),
      headers: fc.dictionary(headerName, anyText(120), { maxKeys: 8 }),
      cookies: fc.option(fc.array(anyText(40), { maxLength: 4 }), { nil: undefined }),
      query: anyText(60),
      body: fc.option(fc.uint8Array({ maxLength: 512 }), { nil: undefined }),
      caller: fc.record({
        principal: anyText(40),
        tenant: anyText(20),
        scopes: anyText(40),
        plan: anyText(12),
        keyId: anyText(20),
      }),
    });

    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.array(clientRequest, { minLength: 1, maxLength: 6 }), async (requests) => {
        const handle = createGatewayHandler(config);
        const send = (event: HttpEvent) => handle(event, lambdaContext());
        for (const request of requests) {
          const event = withIdentity(
            httpEvent({
              ...(request.aggregate
                ? { method: "GET", routeKey: "GET /summary/{id}", path: `/summary/${request.rest}` }
                : { method: request.method, routeKey: "ANY /echo/{rest+}", path: `/echo/${request.rest}` }),
              pathParameters: request.aggregate ? { id: request.rest } : { rest: request.rest },
              headers: request.headers,
              query: request.query,
              ...(request.body ? { body: Buffer.from(request.body).toString("base64") } : {}),
            }),
            request.caller,
          );
          if (request.body) event.isBase64Encoded = true;
          if (request.cookies) event.cookies = request.cookies;
          const result = await send(event);
          statuses.set(result.statusCode ?? 0, (statuses.get(result.statusCode ?? 0) ?? 0) + 1);
          assert.ok((result.statusCode ?? 0) < 500, `${result.statusCode}: ${String(result.body)}`);
        }
        const check = await control(send);
        assert.equal(check.statusCode, 200, `the circuit opened: ${String(check.body)}`);
      }),
      { numRuns: 150 },
    );
    // The inputs reached both sides: some were sent, some refused.
    assert.ok(statuses.get(200), JSON.stringify([...statuses]));
    assert.ok(statuses.get(400), JSON.stringify([...statuses]));
  });
});
