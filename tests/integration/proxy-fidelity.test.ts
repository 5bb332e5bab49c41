import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { brotliCompressSync, brotliDecompressSync, deflateSync, gunzipSync, gzipSync } from "node:zlib";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import { logger } from "#shared/observability/logger.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

/**
 * The proxy as an HTTP intermediary, through the real gateway handler (the whole Middy chain) against a
 * real upstream on a loopback port, with API Gateway payload 2.0 events: bodies and content codings.
 */

/** A JSON document of at least `bytes` bytes, the same for the same size. */
function documentOf(bytes: number): Buffer {
  const items: { id: number; name: string; note: string }[] = [];
  let size = 20;
  for (let id = 0; size < bytes; id++) {
    const item = { id, name: `item ${id}`, note: "an ordinary line of an ordinary JSON answer" };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return Buffer.from(JSON.stringify({ items }));
}

const ENCODERS: Record<string, (body: Buffer) => Buffer> = {
  gzip: (body) => gzipSync(body),
  br: (body) => brotliCompressSync(body),
  deflate: (body) => deflateSync(body),
};

/**
 * The test upstream:
 *   /doc?bytes=N&encode=auto|none|gzip|br|deflate|zstd   a JSON document; `auto` compresses with what the
 *                                                       request accepts (br, then gzip), others force it
 *   /echo                                               the headers it received, as JSON
 */
function startUpstream(): Promise<Server> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://upstream");
    request.resume();
    request.on("end", () => {
      if (url.pathname === "/echo") {
        response.writeHead(200, { "content-type": "application/json" });
        return void response.end(JSON.stringify({ headers: request.headers }));
      }
      if (url.pathname === "/doc") {
        const body = documentOf(Number(url.searchParams.get("bytes") ?? 100));
        const accepted = String(request.headers["accept-encoding"] ?? "");
        let encode = url.searchParams.get("encode") ?? "auto";
        const headers: Record<string, string> = { "content-type": "application/json", etag: '"doc-v1"' };
        if (encode === "auto") {
          encode = /\bbr\b/.test(accepted) ? "br" : /gzip/.test(accepted) ? "gzip" : "none";
          headers.vary = "accept-encoding"; // only this upstream's answer depends on it
        }
        if (encode === "none") return void response.writeHead(200, headers).end(body);
        const encoder = ENCODERS[encode];
        // zstd stands for a coding the gateway cannot decode: the bytes are left as they are.
        return void response
          .writeHead(200, { ...headers, "content-encoding": encode })
          .end(encoder ? encoder(body) : body);
      }
      response.writeHead(404).end();
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

/** The body's bytes as the client gets them (base64 undone). */
function wireBytes(result: HttpResult): Buffer {
  return Buffer.from(String(result.body ?? ""), result.isBase64Encoded ? "base64" : "utf8");
}

/** The body as the client reads it: decoded by its `content-encoding`, which must describe the bytes. */
function readBody(result: HttpResult): Buffer {
  const coding = String(result.headers["content-encoding"] ?? "identity");
  const bytes = wireBytes(result);
  if (coding === "identity") return bytes;
  const decode = { gzip: gunzipSync, br: brotliDecompressSync }[coding];
  assert.ok(decode, `unexpected content-encoding ${coding}`);
  return decode(bytes); // throws when the header does not describe the bytes
}

describe("proxy fidelity: bodies and content codings", () => {
  let upstream: Server;
  let handler: (event: HttpEvent) => Promise<HttpResult>;

  before(async () => {
    upstream = await startUpstream();
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const config: GatewayConfigInput = {
      auth: {},
      upstreams: { svc: { targets: [{ url }], retries: 0, maxResponseBytes: 1_000_000 } },
      routes: {
        "GET /doc": { auth: "public", proxy: { upstream: "svc", path: "/doc" } },
        "GET /echo": { auth: "public", proxy: { upstream: "svc", path: "/echo" } },
        "HEAD /doc": { auth: "public", proxy: { upstream: "svc", path: "/doc" } },
        "GET /mapped": {
          auth: "public",
          proxy: { upstream: "svc", path: "/doc", response: { body: "{ count: length(items) }" } },
        },
        "GET /mapped-large": {
          auth: "public",
          proxy: { upstream: "svc", path: "/doc", response: { body: "{ names: items[].name }" } },
        },
        "GET /summary": {
          auth: "public",
          aggregate: { calls: { doc: { upstream: "svc", path: "/doc", query: { encode: "gzip" } } } },
        },
      },
    };
    captureEmf();
    mock.method(logger, "error", () => undefined);
    const gatewayHandler = createGatewayHandler(
      loadGateway(
        defineGateway(() => config),
        "test",
      ),
    );
    handler = (event) => gatewayHandler(event, lambdaContext());
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const get = (routeKey: string, path: string, query: string, headers: Record<string, string> = {}) =>
    handler(httpEvent({ method: "GET", routeKey, path, query, headers }));

  it("passes an upstream's gzip through as gzip to a client that accepts it", async () => {
    const result = await get("GET /doc", "/doc", "bytes=20000", { "accept-encoding": "gzip" });
    assert.equal(result.statusCode, 200);
    assert.equal(result.headers["content-encoding"], "gzip");
    assert.equal(result.isBase64Encoded, true);
    assert.deepEqual(readBody(result), documentOf(20_000));
    assert.ok(wireBytes(result).byteLength < 20_000 / 4, "the compressed bytes, not the document");
  });

  it("passes br through to a client that accepts br", async () => {
    const result = await get("GET /doc", "/doc", "bytes=20000", { "accept-encoding": "gzip, br" });
    assert.equal(result.headers["content-encoding"], "br");
    assert.deepEqual(readBody(result), documentOf(20_000));
  });

  it("decodes for a client that accepts no coding, even from an upstream that compresses unasked", async () => {
    for (const encode of ["gzip", "br", "deflate"]) {
      const result = await get("GET /doc", "/doc", `bytes=3000&encode=${encode}`);
      assert.equal(result.statusCode, 200, encode);
      assert.equal(result.headers["content-encoding"], undefined, encode);
      assert.equal(result.isBase64Encoded, false, `${encode}: JSON goes back as text`);
      assert.deepEqual(wireBytes(result), documentOf(3_000), encode);
      assert.equal(result.headers.etag, 'W/"doc-v1"', `${encode}: a changed coding weakens the ETag`);
      assert.match(String(result.headers.vary), /accept-encoding/i, encode);
    }
  });

  it("decodes a coding the client did not list (deflate for a gzip-only client)", async () => {
    const result = await get("GET /doc", "/doc", "bytes=3000&encode=deflate", { "accept-encoding": "gzip" });
    assert.notEqual(result.headers["content-encoding"], "deflate");
    assert.deepEqual(readBody(result), documentOf(3_000));
  });

  it("asks the upstream only for codings the client accepts and the gateway can decode", async () => {
    const sent = async (headers: Record<string, string>) => {
      const result = await get("GET /echo", "/echo", "", headers);
      const echoed = JSON.parse(readBody(result).toString()) as { headers: Record<string, string> };
      return echoed.headers["accept-encoding"];
    };
    assert.equal(await sent({}), "identity", "no Accept-Encoding: identity only");
    assert.equal(await sent({ "accept-encoding": "gzip, zstd, br;q=0.5" }), "gzip, br;q=0.5");
    assert.equal(await sent({ "accept-encoding": "zstd" }), "identity");
  });

  it("answers a HEAD as its GET would be headed: no body to decode, the coding only if the client accepts it", async () => {
    const head = (headers: Record<string, string>) =>
      handler(
        httpEvent({ method: "HEAD", routeKey: "HEAD /doc", path: "/doc", query: "encode=gzip", headers }),
      );
    const identity = await head({});
    assert.equal(identity.statusCode, 200);
    assert.equal(identity.headers["content-encoding"], undefined);
    assert.equal(wireBytes(identity).byteLength, 0);
    const gzip = await head({ "accept-encoding": "gzip" });
    assert.equal(gzip.statusCode, 200);
    assert.equal(gzip.headers["content-encoding"], "gzip");
  });

  it("answers 502 for a coding the client does not accept and the gateway cannot decode", async () => {
    const result = await get("GET /doc", "/doc", "bytes=3000&encode=zstd");
    assert.equal(result.statusCode, 502);
    assert.equal(result.headers["content-type"], "application/problem+json");
    assert.equal(result.headers["content-encoding"], undefined);
  });

  it("maps a compressed JSON answer, and the mapped body carries no stale content-encoding", async () => {
    const result = await get("GET /mapped", "/mapped", "bytes=3000&encode=gzip", {
      "accept-encoding": "gzip",
    });
    assert.equal(result.statusCode, 200);
    const count = (JSON.parse(String(documentOf(3_000))) as { items: unknown[] }).items.length;
    assert.deepEqual(JSON.parse(readBody(result).toString()), { count });
  });

  it("merges a compressed answer in an aggregate route", async () => {
    const result = await get("GET /summary", "/summary", "");
    assert.equal(result.statusCode, 200);
    const merged = JSON.parse(readBody(result).toString()) as { doc: { items: unknown[] } };
    assert.ok(merged.doc.items.length > 0);
  });

  it("compresses a large text answer the upstream sent plain, for a client that accepts br or gzip", async () => {
    for (const [accept, coding] of [
      ["gzip, deflate, br", "br"],
      ["gzip", "gzip"],
      ["br;q=0.5, gzip", "gzip"],
    ] as const) {
      const result = await get("GET /doc", "/doc", "bytes=20000&encode=none", { "accept-encoding": accept });
      assert.equal(result.headers["content-encoding"], coding, accept);
      assert.equal(result.isBase64Encoded, true, accept);
      assert.deepEqual(readBody(result), documentOf(20_000), accept);
      assert.ok(wireBytes(result).byteLength < 20_000 / 4, accept);
      assert.match(String(result.headers.vary), /accept-encoding/i, accept);
      assert.equal(result.headers.etag, 'W/"doc-v1"', accept);
    }
  });

  it("leaves small answers and identity clients uncompressed; a compressible answer still varies on Accept-Encoding", async () => {
    const small = await get("GET /doc", "/doc", "bytes=200&encode=none", { "accept-encoding": "gzip" });
    assert.equal(small.headers["content-encoding"], undefined);
    const plain = await get("GET /doc", "/doc", "bytes=20000&encode=none");
    assert.equal(plain.headers["content-encoding"], undefined);
    assert.deepEqual(wireBytes(plain), documentOf(20_000));
    assert.match(String(plain.headers.vary), /accept-encoding/i, "a client that accepts gzip would get gzip");
  });

  it("compresses the mapped body, not the upstream's", async () => {
    const result = await get("GET /mapped-large", "/mapped-large", "bytes=20000&encode=gzip", {
      "accept-encoding": "gzip",
    });
    assert.equal(result.headers["content-encoding"], "gzip");
    const mapped = JSON.parse(readBody(result).toString()) as { names: string[] };
    assert.equal(mapped.names[0], "item 0");
  });

  it("refuses a compressed answer that decodes past maxResponseBytes (502)", async () => {
    const result = await get("GET /doc", "/doc", "bytes=2000000&encode=gzip");
    assert.equal(result.statusCode, 502);
  });
});

/** Lambda's documented limit for a synchronous invocation's response: 6 MB, where MB means 1,048,576. */
const LAMBDA_RESPONSE_LIMIT = 6 * 1_048_576;

describe("proxy fidelity: sizes, on the envelope Lambda returns", () => {
  let upstream: Server;
  let handler: (event: HttpEvent) => Promise<HttpResult>;
  let emf: Record<string, unknown>[] = [];

  before(async () => {
    // /binary?bytes=N: octet-stream; /quotes?bytes=N: text/plain of `"`, which JSON escapes to two bytes.
    upstream = createServer((request, response) => {
      const url = new URL(request.url ?? "/", "http://upstream");
      const bytes = Number(url.searchParams.get("bytes"));
      request.resume();
      if (url.pathname === "/binary") {
        return void response
          .writeHead(200, { "content-type": "application/octet-stream" })
          .end(Buffer.alloc(bytes, 7));
      }
      response.writeHead(200, { "content-type": "text/plain" }).end('"'.repeat(bytes));
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    mock.method(logger, "error", () => undefined);
    emf = captureEmf();
    const gatewayHandler = createGatewayHandler(
      loadGateway(
        defineGateway(() => ({
          auth: {},
          upstreams: { big: { targets: [{ url }], retries: 0 } }, // maxResponseBytes: the default
          routes: {
            "GET /binary": { auth: "public", proxy: { upstream: "big", path: "/binary" } },
            "GET /quotes": { auth: "public", proxy: { upstream: "big", path: "/quotes" } },
          },
        })),
        "test",
      ),
    );
    handler = (event) => gatewayHandler(event, lambdaContext());
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const get = (path: string, bytes: number, headers: Record<string, string> = {}) =>
    handler(httpEvent({ method: "GET", routeKey: `GET ${path}`, path, query: `bytes=${bytes}`, headers }));
  const envelope = (result: HttpResult) => Buffer.byteLength(JSON.stringify(result));

  it("answers 502 to a binary body of 5,000,000 bytes, the old default cap (6.67 MB once in base64)", async () => {
    const result = await get("/binary", 5_000_000);
    assert.equal(result.statusCode, 502);
    assert.equal(result.headers["content-type"], "application/problem+json");
  });

  it("fits a binary body at the default cap in Lambda's answer, base64 included", async () => {
    const result = await get("/binary", 4_500_000);
    assert.equal(result.statusCode, 200);
    assert.ok(envelope(result) <= LAMBDA_RESPONSE_LIMIT, `${envelope(result)} bytes`);
  });

  it("turns an answer whose envelope would pass 6 MB into a 502 problem+json from the gateway", async () => {
    emf.length = 0;
    const result = await get("/quotes", 4_000_000); // 4 MB of text, 8 MB once JSON escapes it
    assert.equal(result.statusCode, 502);
    const records = emf.filter((record) => record.route === "GET /quotes" && "Requests" in record);
    assert.deepEqual(
      records.map((record) => record.Status5XX),
      [1],
      "metrics record the request once, as the 502",
    );
    assert.equal(result.headers["content-type"], "application/problem+json");
    const problem = JSON.parse(String(result.body)) as { detail: string; requestId: string };
    assert.doesNotMatch(problem.detail, /bytes|escape|Lambda/, "a 5XX says nothing of the cause");
    assert.ok(result.headers["x-request-id"]);
    assert.equal(result.headers["x-content-type-options"], "nosniff");
  });

  it("delivers the same answer compressed to a client that accepts gzip, since it then fits", async () => {
    const result = await get("/quotes", 4_000_000, { "accept-encoding": "gzip" });
    assert.equal(result.statusCode, 200);
    assert.equal(result.headers["content-encoding"], "gzip");
    assert.equal(gunzipSync(wireBytes(result)).byteLength, 4_000_000);
  });
});

describe("proxy fidelity: what the upstream is told about the request (forwarding)", () => {
  let upstream: Server;
  let handler: (event: HttpEvent) => Promise<HttpResult>;

  before(async () => {
    upstream = await startUpstream();
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    captureEmf();
    const gatewayHandler = createGatewayHandler(
      loadGateway(
        defineGateway(() => ({
          auth: {},
          // A CDN in front of API Gateway, whose X-Forwarded-For the gateway keeps.
          trustedProxies: ["198.51.100.0/24", "2001:db8:cd::/48"],
          upstreams: { svc: { targets: [{ url }], retries: 0 } },
          routes: { "GET /echo": { auth: "public", proxy: { upstream: "svc", path: "/echo" } } },
        })),
        "test",
      ),
    );
    handler = (event) => gatewayHandler(event, lambdaContext());
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  /** The headers the upstream received for a request from `sourceIp` with these headers. */
  const received = async (sourceIp: string, headers: Record<string, string> = {}) => {
    const event = httpEvent({ method: "GET", routeKey: "GET /echo", path: "/echo", headers, sourceIp });
    const result = await handler(event);
    assert.equal(result.statusCode, 200);
    return (JSON.parse(readBody(result).toString()) as { headers: Record<string, string> }).headers;
  };

  it("sends the source IP as X-Forwarded-For, whatever chain or X-Real-IP the client sent", async () => {
    const headers = await received("203.0.113.10", {
      "x-forwarded-for": "10.0.0.1, 192.0.2.99",
      "x-real-ip": "10.0.0.1",
    });
    assert.equal(headers["x-forwarded-for"], "203.0.113.10");
    assert.equal(headers["x-real-ip"], undefined, "another header that claims the client's address");
  });

  it("drops the chain API Gateway appended the source to, when the source is no trusted proxy", async () => {
    // On AWS the event's X-Forwarded-For is the client's own value with the source IP appended.
    const headers = await received("203.0.113.10", { "x-forwarded-for": "10.0.0.1, 203.0.113.10" });
    assert.equal(headers["x-forwarded-for"], "203.0.113.10");
  });

  it("keeps the chain from a trusted proxy and ends it with that proxy's address", async () => {
    const appended = await received("198.51.100.7", { "x-forwarded-for": "192.0.2.1, 198.51.100.7" });
    assert.equal(appended["x-forwarded-for"], "192.0.2.1, 198.51.100.7", "as API Gateway delivers it");
    const bare = await received("198.51.100.7", { "x-forwarded-for": "192.0.2.1" });
    assert.equal(bare["x-forwarded-for"], "192.0.2.1, 198.51.100.7", "as serverless-offline delivers it");
  });

  it("sends X-Forwarded-Proto and -Host as the gateway saw the request, not as the client claimed", async () => {
    const headers = await received("203.0.113.10", {
      "x-forwarded-proto": "http",
      "x-forwarded-host": "evil.example",
      "x-forwarded-port": "80",
    });
    assert.equal(headers["x-forwarded-proto"], "https");
    assert.equal(headers["x-forwarded-host"], "api.example.com");
    assert.equal(headers["x-forwarded-port"], undefined);
  });

  it("adds an RFC 7239 Forwarded element for this hop, IPv6 quoted, and drops the client's own", async () => {
    const v4 = await received("203.0.113.10", { forwarded: "for=10.0.0.1;by=evil" });
    assert.equal(v4.forwarded, "for=203.0.113.10;host=api.example.com;proto=https");
    const v6 = await received("2001:db8::7", {});
    assert.equal(v6.forwarded, 'for="[2001:db8::7]";host=api.example.com;proto=https');
    assert.equal(v6["x-forwarded-for"], "2001:db8::7");
  });

  it("extends a trusted proxy's Forwarded, or builds it from its X-Forwarded-For, and never lets a value break the syntax", async () => {
    const kept = await received("2001:db8:cd::9", { forwarded: 'for="[2001:db8::1]";proto=https' });
    assert.equal(
      kept.forwarded,
      'for="[2001:db8::1]";proto=https, for="[2001:db8:cd::9]";host=api.example.com;proto=https',
    );
    const built = await received("198.51.100.7", {
      "x-forwarded-for": '192.0.2.1, 2001:db8::2, bad;value="x", 198.51.100.7',
    });
    assert.equal(
      built.forwarded,
      'for=192.0.2.1, for="[2001:db8::2]", for=unknown, for=198.51.100.7;host=api.example.com;proto=https',
    );
  });

  it("quotes a host with a port in Forwarded", async () => {
    const headers = await received("203.0.113.10", { host: "127.0.0.1:3000" });
    assert.equal(headers.forwarded, 'for=203.0.113.10;host="127.0.0.1:3000";proto=https');
    assert.equal(headers["x-forwarded-host"], "127.0.0.1:3000");
  });
});

describe("proxy fidelity: the gateway's CORS and security headers win over an upstream's", () => {
  let upstream: Server;
  let handler: (event: HttpEvent) => Promise<HttpResult>;
  /** What a careless upstream sets on every answer. */
  const UPSTREAM_HEADERS = {
    "content-type": "application/json",
    "access-control-allow-origin": "*",
    "access-control-allow-credentials": "true",
    "access-control-expose-headers": "x-internal-token",
    "x-frame-options": "SAMEORIGIN",
    "content-security-policy": "default-src *",
    "strict-transport-security": "max-age=0",
    "referrer-policy": "unsafe-url",
    "cache-control": "public, max-age=60",
    "x-upstream": "kept",
  };

  before(async () => {
    upstream = createServer((request, response) => {
      request.resume();
      response.writeHead(200, UPSTREAM_HEADERS).end("{}");
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    captureEmf();
    const gatewayHandler = createGatewayHandler(
      loadGateway(
        defineGateway(() => ({
          auth: {},
          cors: { origins: ["https://app.example.com"] },
          upstreams: { svc: { targets: [{ url }], retries: 0 } },
          routes: {
            "GET /cors": { auth: "public", proxy: { upstream: "svc", path: "/" } },
            "GET /no-cors": { auth: "public", proxy: { upstream: "svc", path: "/" }, cors: false },
            "GET /passing": {
              auth: "public",
              proxy: { upstream: "svc", path: "/", response: { passHeaders: ["cache-control"] } },
            },
          },
        })),
        "test",
      ),
    );
    handler = (event) => gatewayHandler(event, lambdaContext());
  });
  after(async () => {
    mock.restoreAll();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    handler(httpEvent({ method: "GET", routeKey: `GET ${path}`, path, headers }));
  /** Every value the answer carries for a header, whatever the case of its name. */
  const values = (result: HttpResult, name: string) =>
    Object.entries(result.headers)
      .filter(([key]) => key.toLowerCase() === name)
      .map(([, value]) => String(value));
  const corsHeaders = (result: HttpResult) =>
    Object.keys(result.headers).filter((key) => /^access-control-/i.test(key));

  it("lets no upstream Access-Control-* header through on a route with cors: false", async () => {
    const result = await get("/no-cors", { origin: "https://evil.example" });
    assert.equal(result.statusCode, 200);
    assert.deepEqual(corsHeaders(result), []);
  });

  it("answers CORS from the route's rules only: one Allow-Origin, no credentials, its own exposed headers", async () => {
    const allowed = await get("/cors", { origin: "https://app.example.com" });
    assert.deepEqual(values(allowed, "access-control-allow-origin"), ["https://app.example.com"]);
    assert.deepEqual(values(allowed, "access-control-allow-credentials"), []);
    assert.deepEqual(values(allowed, "access-control-expose-headers"), ["x-request-id,retry-after"]);
    const refused = await get("/cors", { origin: "https://evil.example" });
    assert.deepEqual(values(refused, "access-control-allow-origin"), []);
  });

  it("keeps the gateway's security headers over the upstream's, and passes the upstream's other headers", async () => {
    const result = await get("/cors");
    for (const [name, value] of Object.entries({
      "x-frame-options": "DENY",
      "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
      "strict-transport-security": "max-age=63072000; includeSubDomains",
      "referrer-policy": "no-referrer",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    })) {
      assert.deepEqual(values(result, name), [value], name);
    }
    assert.deepEqual(values(result, "x-upstream"), ["kept"]);
  });

  it("passes the upstream's value of a header the route lists in response.passHeaders, and only that one", async () => {
    const result = await get("/passing");
    assert.deepEqual(values(result, "cache-control"), ["public, max-age=60"]);
    assert.deepEqual(values(result, "x-frame-options"), ["DENY"]);
  });
});
