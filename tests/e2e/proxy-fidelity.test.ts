import assert from "node:assert/strict";
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { after, before, describe, it } from "node:test";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { fidelityDocument } from "../../plugins/demo-services.mjs";
import { DEMO_API_KEY } from "../../plugins/local-stack.mjs";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";

/**
 * The proxy as a client sees it through the local stack (`npm start`), over real sockets: the demo
 * upstreams of the fidelity routes compress and echo, and each answer is read as curl --compressed
 * reads it, by its own Content-Encoding. serverless-offline's web server (hapi) gzips identity answers
 * of 1 KB or more for clients that accept gzip, which API Gateway never does; a client that accepts
 * only br shows the gateway's own compression.
 */

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  /** The bytes on the wire, undecoded. */
  bytes: Buffer;
}

/** A GET with nothing added by the client library: no Accept-Encoding of its own, no decoding. */
function rawGet(url: string, headers: Record<string, string>): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, { headers, agent: false }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on("data", (chunk: Buffer) => chunks.push(chunk));
      incoming.on("end", () =>
        resolve({
          status: incoming.statusCode ?? 0,
          headers: incoming.headers,
          bytes: Buffer.concat(chunks),
        }),
      );
      incoming.on("error", reject);
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/** The body as curl --compressed reads it: decoded by its Content-Encoding, which must describe it. */
function decoded(answer: RawAnswer): Buffer {
  const coding = answer.headers["content-encoding"] ?? "identity";
  if (coding === "identity") return answer.bytes;
  if (coding === "gzip") return gunzipSync(answer.bytes);
  if (coding === "br") return brotliDecompressSync(answer.bytes);
  assert.fail(`unexpected content-encoding ${coding}`);
}

describe("proxy fidelity through the local stack (real sockets)", () => {
  let stack: LocalStack;
  let port: number;
  before(async () => {
    stack = await startLocalStackOnFreePorts();
    port = stack.ports.http;
  });
  after(async () => {
    await stack?.stop();
  });

  const withKey = (headers: Record<string, string> = {}) => ({ "x-api-key": DEMO_API_KEY, ...headers });
  const document = (query: string, headers: Record<string, string> = {}) =>
    rawGet(`${stack.httpUrl}/v1/fidelity/document?bytes=20000&${query}`, withKey(headers));

  it("passes the upstream's gzip to a client that accepts it, and the bytes are the document", async () => {
    const answer = await document("compress=auto", { "accept-encoding": "gzip, deflate, br" });
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-encoding"], "gzip");
    assert.ok(answer.bytes.byteLength < 20_000 / 4, `${answer.bytes.byteLength} bytes on the wire`);
    assert.deepEqual(decoded(answer), fidelityDocument(20_000));
  });

  it("gives a client that accepts no coding the document itself, from an upstream that gzips unasked", async () => {
    const answer = await document("compress=always");
    assert.equal(answer.status, 200);
    assert.equal(answer.headers["content-encoding"], undefined);
    assert.deepEqual(answer.bytes, fidelityDocument(20_000));
  });

  it("compresses a plain answer itself for a client that accepts only br", async () => {
    const answer = await document("compress=never", { "accept-encoding": "br" });
    assert.equal(answer.headers["content-encoding"], "br");
    assert.match(String(answer.headers.vary), /accept-encoding/i);
    assert.deepEqual(decoded(answer), fidelityDocument(20_000));
  });

  it("tells the upstream the source IP, scheme and host it saw, not the client's claims", async () => {
    const answer = await rawGet(
      `${stack.httpUrl}/v1/fidelity/headers`,
      withKey({
        "x-forwarded-for": "10.9.9.9",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil.example",
        forwarded: "for=10.9.9.9;proto=https",
      }),
    );
    assert.equal(answer.status, 200);
    const seen = (JSON.parse(decoded(answer).toString()) as { headers: Record<string, string> }).headers;
    assert.equal(seen["x-forwarded-for"], "127.0.0.1");
    assert.equal(seen["x-forwarded-proto"], "http", "the local stack is plain HTTP");
    assert.equal(seen["x-forwarded-host"], `127.0.0.1:${port}`);
    assert.equal(seen.forwarded, `for=127.0.0.1;host="127.0.0.1:${port}";proto=http`);
    assert.equal(seen["x-api-key"], undefined);
  });

  it("answers with the gateway's security headers and none of the upstream's CORS, passing the route's Cache-Control", async () => {
    // No Origin: serverless-offline adds CORS headers of its own to requests that have one.
    const answer = await rawGet(`${stack.httpUrl}/v1/fidelity/headers`, withKey());
    assert.equal(answer.status, 200);
    // The upstream sent Allow-Origin * and Allow-Credentials; the route's own CORS rules add neither
    // without a listed Origin.
    assert.equal(answer.headers["access-control-allow-origin"], undefined);
    assert.equal(answer.headers["access-control-allow-credentials"], undefined);
    assert.equal(answer.headers["x-frame-options"], "DENY");
    assert.equal(answer.headers["content-security-policy"], "default-src 'none'; frame-ancestors 'none'");
    assert.equal(answer.headers["cache-control"], "public, max-age=60");
  });
});
