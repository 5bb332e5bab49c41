// @ts-check
// The loopback upstream of the gateway bench cases, run as its own process so that its CPU is never
// counted in the measuring process's: `POST /orders` answers 201 with the order it was sent and an
// id (a small JSON body); `GET /doc?bytes=N&encode=auto|none|gzip|br&delay=MS` answers a JSON
// document of about N bytes (bench/support/json-document.mjs), compressed once and kept: `auto` with
// what the request's Accept-Encoding names (br, then gzip), `none`, `gzip` or `br` whatever it says;
// after MS milliseconds if `delay` is given (an upstream that takes its time, so that concurrent
// misses overlap). Other query parameters are ignored. `GET /count` answers `{"requests": n}`, the
// requests received so far, itself not counted (the cache case counts upstream calls with it).
// Anything else 404. Keep-alive stays on (Node's server default) with a long idle timeout, so a
// measured run reuses its connections. It listens on 127.0.0.1, a free port, and prints the port as
// its first line; it exits when its stdin closes (its parent is gone).

import { createServer } from "node:http";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { jsonDocument } from "./json-document.mjs";

let next = 0;
/** Requests received, `GET /count` excepted. */
let received = 0;

/** @type {Map<string, Buffer>} */
const documents = new Map();
/** @param {number} bytes @param {string} coding */
function documentIn(bytes, coding) {
  const key = `${bytes}:${coding}`;
  let body = documents.get(key);
  if (!body) {
    const plain = jsonDocument(bytes);
    body = coding === "gzip" ? gzipSync(plain) : coding === "br" ? brotliCompressSync(plain) : plain;
    documents.set(key, body);
  }
  return body;
}

const server = createServer((request, response) => {
  /** @type {Buffer[]} */
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    /** @param {number} status @param {unknown} value */
    const json = (status, value) => {
      const body = JSON.stringify(value);
      response
        .writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) })
        .end(body);
    };
    const url = new URL(request.url ?? "/", "http://upstream");
    if (request.method === "GET" && url.pathname === "/count") return json(200, { requests: received });
    received++;
    if (request.method === "GET" && url.pathname === "/doc") {
      const accepted = String(request.headers["accept-encoding"] ?? "");
      let coding = url.searchParams.get("encode") ?? "auto";
      if (coding === "auto")
        coding = /\bbr\b/.test(accepted) ? "br" : /\bgzip\b/.test(accepted) ? "gzip" : "none";
      const body = documentIn(Number(url.searchParams.get("bytes") ?? 1024), coding);
      const answer = () =>
        response
          .writeHead(200, {
            "content-type": "application/json",
            "content-length": body.byteLength,
            vary: "accept-encoding",
            ...(coding === "none" ? {} : { "content-encoding": coding }),
          })
          .end(body);
      const delayMs = Number(url.searchParams.get("delay") ?? 0);
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
      return;
    }
    if (request.method !== "POST" || request.url !== "/orders") return json(404, { error: "not found" });
    try {
      const order = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      json(201, { id: `o-${++next}`, ...order });
    } catch {
      json(400, { error: "the body is not JSON" });
    }
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  process.stdout.write(`${typeof address === "object" && address ? address.port : 0}\n`);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
