// @ts-check
// The loopback upstream of the gateway-chain bench, run as its own process so that its CPU is never
// counted in the measuring process's: `POST /orders` answers 201 with the order it was sent and an
// id (a small JSON body), anything else 404. Keep-alive stays on (Node's server default) with a long
// idle timeout, so a measured run reuses its connections. It listens on 127.0.0.1, a free port, and
// prints the port as its first line; it exits when its stdin closes (its parent is gone).

import { createServer } from "node:http";

let next = 0;

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
