// @ts-check
// Demo upstream services for the local stack, on 127.0.0.1 (GATEHOUSE_DEMO_PORT, default 3100), so a
// new user can try proxying, timeouts and the circuit breaker without services of their own:
//   GET  /users, /users/{id}          a small user directory
//   GET  /v2/users                    the next build of /users (the canary of GET /v1/users)
//   GET  /orders?userId=1             orders, optionally for one user; POST /orders creates one
//   GET  /products/{id}               products
//   ANY  /echo/...                    what the upstream received: method, path, query, headers, body
//   GET  /slow?ms=3000                answers after a delay (default 3 s)
//   GET  /flaky                       503 while switched down: POST /flaky/down, POST /flaky/up
//   GET  /prices, /prices/{id}        prices, numbered by the service's call count (the caching demo);
//                                     PUT /prices/{id} {"price": n} changes one; 503 while switched
//                                     down: POST /prices/down, POST /prices/up
//   GET  /fidelity/...                the proxy fidelity demo (bodies, headers): see its block below
//   GET  /cookies/set, /cookies/echo  proxy fidelity: several Set-Cookie headers; the cookies received
//   /inventory/items[/{id}[/stock]]   the inventory service of examples/openapi/inventory.yaml: GET a list
//                                     or one item, POST one, PUT its stock, DELETE it (in memory)

import { createServer } from "node:http";
import { gzipSync } from "node:zlib";
import { listenOnLoopback } from "./loopback.mjs";

const USERS = [
  { id: "1", name: "Ada Lovelace", email: "ada@example.com" },
  { id: "2", name: "Alan Turing", email: "alan@example.com" },
  { id: "3", name: "Grace Hopper", email: "grace@example.com" },
];
const ORDERS = [
  { id: "o-100", userId: "1", productId: "p-1", quantity: 2 },
  { id: "o-101", userId: "1", productId: "p-2", quantity: 1 },
  { id: "o-102", userId: "2", productId: "p-3", quantity: 5 },
];
const PRODUCTS = [
  { id: "p-1", name: "Analytical Engine", price: 1843 },
  { id: "p-2", name: "Difference Engine", price: 1822 },
  { id: "p-3", name: "Bombe", price: 1940 },
];

/** @typedef {{ id: string, sku: string, name: string, price: number, stock: number }} InventoryItem */
/** @type {InventoryItem[]} */
const INVENTORY = [
  { id: "i-1", sku: "ENG-0001", name: "Analytical Engine gear", price: 12.5, stock: 40 },
  { id: "i-2", sku: "ENG-0002", name: "Punched card, blank", price: 0.1, stock: 5000 },
];

/**
 * The inventory service (examples/openapi/inventory.yaml): it trusts the gateway for auth and
 * validation, as a service behind it may.
 * @param {import('node:http').IncomingMessage} request
 * @param {URL} url
 * @param {Buffer} body
 * @param {Map<string, InventoryItem>} items
 * @param {(status: number, body: unknown) => void} json
 */
function inventoryService(request, url, body, items, json) {
  const [, , collection, id, sub] = url.pathname.split("/");
  if (collection !== "items") return json(404, { error: "not found" });
  /** @returns {Record<string, unknown> | undefined} */
  const parsed = () => {
    try {
      return JSON.parse(body.toString() || "{}");
    } catch {
      return undefined;
    }
  };
  if (!id) {
    if (request.method === "GET") {
      const limit = Number(url.searchParams.get("limit") ?? 100) || 100;
      return json(200, { items: [...items.values()].slice(0, limit) });
    }
    if (request.method !== "POST") return json(405, { error: "GET or POST" });
    const fields = parsed();
    if (!fields) return json(400, { error: "the body is not JSON" });
    const item = { ...fields, id: `i-${items.size + 1}`, stock: 0 };
    items.set(item.id, /** @type {InventoryItem} */ (item));
    return json(201, item);
  }
  const item = items.get(id);
  if (!item) return json(404, { error: `no item ${id}` });
  if (sub === "stock" && request.method === "PUT") {
    const fields = parsed();
    if (!fields) return json(400, { error: "the body is not JSON" });
    item.stock = Number(fields.quantity);
    return json(200, { id, stock: item.stock });
  }
  if (sub) return json(404, { error: "not found" });
  if (request.method === "GET") return json(200, item);
  if (request.method === "DELETE") {
    items.delete(id);
    return json(204, null);
  }
  return json(405, { error: "GET or DELETE" });
}

/**
 * @param {number} port
 * @returns {Promise<import('node:http').Server>}
 */
export function startDemoServices(port) {
  let flakyDown = false;
  const prices = pricesService();
  const inventory = new Map(INVENTORY.map((item) => [item.id, { ...item }]));
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://demo");
    const chunks = /** @type {Buffer[]} */ ([]);
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      /** @param {number} status @param {unknown} body */
      const json = (status, body) => {
        response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
      };
      const [, resource, id, extra] = url.pathname.split("/");
      if (resource === "fidelity") return proxyFidelity(request, response, url);
      if (resource === "inventory")
        return inventoryService(request, url, Buffer.concat(chunks), inventory, json);
      if (resource === "cookies") return cookiesDemo(request, response, id);
      if (resource === "echo") {
        return json(200, {
          method: request.method,
          path: url.pathname,
          query: url.search,
          headers: request.headers,
          body: Buffer.concat(chunks).toString("base64"),
        });
      }
      if (resource === "slow") {
        const ms = Math.min(Number(url.searchParams.get("ms") ?? 3000) || 0, 30_000);
        const timer = setTimeout(() => json(200, { waitedMs: ms }), ms);
        response.on("close", () => clearTimeout(timer));
        return;
      }
      if (resource === "flaky") {
        if (request.method === "POST" && (id === "down" || id === "up")) {
          flakyDown = id === "down";
          return json(200, { flaky: flakyDown ? "down" : "up" });
        }
        return flakyDown ? json(503, { error: "flaky service is down" }) : json(200, { flaky: "up" });
      }
      if (resource === "prices") return prices(request, id, Buffer.concat(chunks), json);
      if (resource === "orders" && !id && request.method === "POST") {
        let order;
        try {
          order = JSON.parse(Buffer.concat(chunks).toString() || "{}");
        } catch {
          return json(400, { error: "the body is not JSON" }); // never throw: this runs inside the local stack
        }
        return json(201, {
          id: `o-${Date.now()}`,
          userId: request.headers["x-gatehouse-principal"],
          ...order,
        });
      }
      if (request.method !== "GET") return json(405, { error: "read-only demo" });
      if (resource === "users" && !id) return json(200, { users: USERS });
      if (resource === "v2" && id === "users" && !extra) {
        return json(200, {
          build: "canary",
          users: USERS.map((user) => ({ ...user, displayName: user.name.split(" ")[0] })),
        });
      }
      if (resource === "users" && id && !extra) {
        const user = USERS.find((candidate) => candidate.id === id);
        return user ? json(200, user) : json(404, { error: `no user ${id}` });
      }
      if (resource === "orders" && !id) {
        const userId = url.searchParams.get("userId");
        return json(200, { orders: userId ? ORDERS.filter((order) => order.userId === userId) : ORDERS });
      }
      if (resource === "products" && id) {
        const product = PRODUCTS.find((candidate) => candidate.id === id);
        return product ? json(200, product) : json(404, { error: `no product ${id}` });
      }
      return json(404, { error: "not found" });
    });
  });
  return listenOnLoopback(server, port, "GATEHOUSE_DEMO_PORT");
}

/**
 * The caching demo's upstream (docs/caching.md, "Walk-through"): every answer carries `call`, the
 * number of GETs this service has answered, so a client sees whether the gateway asked it or its
 * cache answered; it can be switched down to watch stale answers served through an outage.
 */
function pricesService() {
  const table = new Map(PRODUCTS.map((product) => [product.id, { id: product.id, price: product.price }]));
  let calls = 0;
  let down = false;
  /**
   * @param {import('node:http').IncomingMessage} request
   * @param {string | undefined} id
   * @param {Buffer} body
   * @param {(status: number, body: unknown) => void} json
   */
  return (request, id, body, json) => {
    if (request.method === "POST" && (id === "down" || id === "up")) {
      down = id === "down";
      return json(200, { prices: down ? "down" : "up" });
    }
    if (down) return json(503, { error: "the prices service is down" });
    if (request.method === "PUT" && id) {
      const entry = table.get(id);
      if (!entry) return json(404, { error: `no price for ${id}` });
      let price;
      try {
        price = JSON.parse(body.toString() || "{}").price;
      } catch {
        return json(400, { error: "the body is not JSON" }); // never throw: this runs inside the local stack
      }
      if (typeof price !== "number") return json(400, { error: "price is a number" });
      entry.price = price;
      return json(200, entry);
    }
    if (request.method !== "GET") return json(405, { error: "GET or PUT" });
    calls += 1;
    const servedAt = new Date().toISOString();
    if (!id) return json(200, { prices: [...table.values()], call: calls, servedAt });
    const entry = table.get(id);
    return entry
      ? json(200, { ...entry, call: calls, servedAt })
      : json(404, { error: `no price for ${id}` });
  };
}

// --- Proxy fidelity demo (bodies, headers) -------------------------------------------------------
// Upstreams that behave as ordinary services do, to watch what the gateway makes of them:
//   GET /fidelity/document?bytes=N&compress=auto|always|never
//       a JSON document of about N bytes (default 20,000, at most 1,000,000), gzip-compressed when the
//       request's Accept-Encoding allows gzip (`auto`), whatever it says (`always`: an upstream that
//       ignores Accept-Encoding), or never
//   GET /fidelity/headers
//       the headers it received, as JSON, answered with headers a careless service sets: CORS for any
//       origin, X-Frame-Options SAMEORIGIN, a permissive CSP, Cache-Control public

/** @param {number} bytes */
export function fidelityDocument(bytes) {
  const items = [];
  let size = 12;
  for (let id = 1; size < bytes; id++) {
    const item = { id, name: `item ${id}`, note: `line ${id} of a document the gateway passes on` };
    items.push(item);
    size += JSON.stringify(item).length + 1;
  }
  return Buffer.from(JSON.stringify({ items }));
}

/** Whether an Accept-Encoding allows gzip (by name, as x-gzip or through *), at a q above 0. */
function acceptsGzip(/** @type {string | undefined} */ header) {
  return (header ?? "").split(",").some((part) => {
    const [coding = "", ...parameters] = part.split(";").map((item) => item.trim().toLowerCase());
    const q = parameters.find((parameter) => parameter.startsWith("q="));
    return ["gzip", "x-gzip", "*"].includes(coding) && (q === undefined || Number(q.slice(2)) > 0);
  });
}

/**
 * @param {import('node:http').IncomingMessage} request
 * @param {import('node:http').ServerResponse} response
 * @param {URL} url
 */
function proxyFidelity(request, response, url) {
  const [, , what] = url.pathname.split("/");
  if (what === "document") {
    const bytes = Math.min(Math.max(Number(url.searchParams.get("bytes") ?? 20_000) || 0, 0), 1_000_000);
    const body = fidelityDocument(bytes);
    const compress = url.searchParams.get("compress") ?? "auto";
    const gzip =
      compress === "always" || (compress === "auto" && acceptsGzip(request.headers["accept-encoding"]));
    const headers = {
      "content-type": "application/json",
      ...(compress === "auto" ? { vary: "accept-encoding" } : {}),
      ...(gzip ? { "content-encoding": "gzip" } : {}),
    };
    return void response.writeHead(200, headers).end(gzip ? gzipSync(body) : body);
  }
  if (what === "headers") {
    return void response
      .writeHead(200, {
        "content-type": "application/json",
        "access-control-allow-origin": "*",
        "access-control-allow-credentials": "true",
        "x-frame-options": "SAMEORIGIN",
        "content-security-policy": "default-src *",
        "cache-control": "public, max-age=60",
      })
      .end(JSON.stringify({ method: request.method, headers: request.headers }));
  }
  response.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ error: "not found" }));
}

// ---- Proxy fidelity demo: cookies (GET /v1/cookies/set and /v1/cookies/echo through the gateway) ----

/**
 * Set-Cookie headers a browser would get from a real service: several at once, attributes included,
 * and one with an Expires date, whose comma breaks any proxy that folds them into one header.
 */
export const DEMO_SET_COOKIES = [
  "theme=dark; Path=/",
  "session=demo-session-1; Path=/; HttpOnly; SameSite=Lax",
  "visited=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
];

/**
 * `GET /cookies/set` answers with DEMO_SET_COOKIES; `GET /cookies/echo` shows the cookies it received:
 * each `cookie` header line as it arrived (a cookie sent twice shows as two lines) and the pairs in it.
 * @param {import('node:http').IncomingMessage} request
 * @param {import('node:http').ServerResponse} response
 * @param {string | undefined} action
 */
function cookiesDemo(request, response, action) {
  /** @param {number} status @param {unknown} body @param {Record<string, string | string[]>} [headers] */
  const json = (status, body, headers = {}) => {
    response.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
  };
  if (request.method !== "GET") return json(405, { error: "GET only" });
  if (action === "set") return json(200, { set: DEMO_SET_COOKIES }, { "set-cookie": DEMO_SET_COOKIES });
  if (action === "echo") {
    const lines = request.rawHeaders.filter(
      (_, index, raw) => index % 2 === 1 && raw[index - 1]?.toLowerCase() === "cookie",
    );
    const cookies = lines
      .flatMap((line) => line.split(";"))
      .map((pair) => pair.trim())
      .filter((pair) => pair !== "");
    return json(200, { cookieHeaders: lines, cookies });
  }
  return json(404, { error: "not found" });
}
