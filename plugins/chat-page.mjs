// @ts-check
// The browser chat page of the local stack (web/), on 127.0.0.1 (GATEHOUSE_WEB_PORT, default 3004):
//   GET /                 the page            GET /chat.js, /chat.css   its script and style
//   GET /config.json      { wsUrl, httpUrl }  where the page connects
//   GET /token?sub=alice  { token }           a dev-issuer token for dev:alice, scope chat:write
// LOCAL STACK ONLY: /token signs a token for any name it is asked for, so this server must never be
// deployed or listen beyond loopback. It answers only requests addressed to 127.0.0.1 or localhost
// (a DNS-rebinding page cannot read a token) and sends no CORS headers (no other origin can either).

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { resolve } from "node:path";
import { devToken } from "./dev-issuer.mjs";
import { listenOnLoopback } from "./loopback.mjs";
import { pageSecurityHeaders } from "./page-headers.mjs";

/** The files under web/ the page is made of; nothing else there is served. */
const FILES = {
  "/": { file: "chat.html", type: "text/html; charset=utf-8" },
  "/chat.js": { file: "chat.js", type: "text/javascript; charset=utf-8" },
  "/chat.css": { file: "chat.css", type: "text/css; charset=utf-8" },
};
/** What the token endpoint accepts as a name: the principal becomes `dev:<sub>`. */
const SUB = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Starts the chat page server.
 * @param {{ port: number, root: string, wsUrl: string, httpUrl: string, issuerPort: number }} options
 *   `port` 0 picks a free one; `root` is the project folder (web/ and the dev issuer's keys).
 * @returns {Promise<import('node:http').Server>}
 */
export async function startChatPage({ port, root, wsUrl, httpUrl, issuerPort }) {
  // Only this server's own files run; the socket may go to the WebSocket API and nowhere else.
  const security = pageSecurityHeaders({ connectSrc: [new URL(wsUrl).origin], crossOriginOpener: true });
  /** @param {import('node:http').ServerResponse} response @param {number} status @param {unknown} body */
  const json = (response, status, body) => {
    const type = status >= 400 ? "application/problem+json" : "application/json";
    response.writeHead(status, { ...security, "content-type": type }).end(JSON.stringify(body));
  };
  /** @param {import('node:http').ServerResponse} response @param {number} status @param {string} slug @param {string} title @param {string} detail */
  const problem = (response, status, slug, title, detail) =>
    json(response, status, { type: `urn:gatehouse:problem:${slug}`, title, status, detail });

  const server = createServer(async (request, response) => {
    try {
      const { port: listening } = /** @type {import('node:net').AddressInfo} */ (server.address());
      const host = request.headers.host ?? "";
      if (host !== `127.0.0.1:${listening}` && host !== `localhost:${listening}`) {
        return problem(response, 421, "misdirected-request", "Misdirected Request", "use 127.0.0.1");
      }
      const url = new URL(request.url ?? "/", `http://${host}`);
      const known = url.pathname in FILES || url.pathname === "/config.json" || url.pathname === "/token";
      if (!known) return problem(response, 404, "not-found", "Not Found", `no ${url.pathname} here`);
      if (request.method !== "GET" && request.method !== "HEAD") {
        response.setHeader("allow", "GET, HEAD");
        return problem(response, 405, "method-not-allowed", "Method Not Allowed", "GET only");
      }
      if (url.pathname === "/config.json") return json(response, 200, { wsUrl, httpUrl });
      if (url.pathname === "/token") {
        const sub = url.searchParams.get("sub") ?? "";
        if (!SUB.test(sub)) {
          return problem(
            response,
            400,
            "bad-request",
            "Bad Request",
            "sub is 1-64 letters, digits, '_', '.' or '-'",
          );
        }
        return json(response, 200, {
          token: await devToken(root, { port: issuerPort, sub, scope: "chat:write" }),
        });
      }
      const { file, type } = FILES[/** @type {keyof typeof FILES} */ (url.pathname)];
      // Read on every request, so an edit to web/ shows on reload without restarting the stack.
      const body = await readFile(resolve(root, "web", file));
      response.writeHead(200, { ...security, "content-type": type, "content-length": body.length });
      response.end(request.method === "HEAD" ? undefined : body);
    } catch (error) {
      // Never throw: this runs inside the local stack's process.
      console.error("chat page:", error);
      if (!response.headersSent) problem(response, 500, "internal", "Internal Server Error", "see the log");
      else response.destroy();
    }
  });
  return listenOnLoopback(server, port, "GATEHOUSE_WEB_PORT");
}
