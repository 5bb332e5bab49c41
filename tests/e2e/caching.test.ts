import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { devToken } from "../../plugins/dev-issuer.mjs";
import { DEMO_API_KEY } from "../../plugins/local-stack.mjs";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";
import { ROOT } from "../support/serverless.ts";

/**
 * The caching walk-through of docs/caching.md on the local stack, over real sockets: the demo's
 * cached routes (gateway.config.ts), the prices service that numbers its answers (`call`), both
 * tiers (each serverless-offline worker has its own container tier; the table is shared).
 */

interface Price {
  id: string;
  price: number;
  call: number;
}

describe("response caching on the local stack (npm start), over real sockets", () => {
  let stack: LocalStack;
  let demo: string;
  before(async () => {
    stack = await startLocalStackOnFreePorts();
    demo = `http://127.0.0.1:${stack.ports.demo}`;
  });
  after(async () => {
    await fetch(`${demo}/prices/up`, { method: "POST" }).catch(() => undefined);
    await stack?.stop();
  });

  const get = (path: string, headers: Record<string, string> = {}, key = DEMO_API_KEY) =>
    fetch(`${stack.httpUrl}${path}`, { headers: { "x-api-key": key, ...headers } });

  /**
   * Whether an entry stored by a request begun at `since` is surely still fresh (the demo's prices
   * are fresh for 5 s, on the stack's clock, which is this machine's). On a loaded machine a few
   * requests can outlast the TTL; past it a read may rightly miss, and a "hit" expected then would
   * fail on the machine's speed, not on the cache.
   */
  const surelyFresh = (since: number) => Date.now() - since < 5_000;

  /** A fresh API key from the admin endpoint. */
  const newKey = async (owner: string) => {
    const token = await devToken(ROOT, { port: stack.ports.issuer, sub: "ops", scope: "gatehouse:admin" });
    const created = await fetch(`${stack.httpUrl}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ owner, plan: "free" }),
    });
    assert.equal(created.status, 201);
    return (await created.json()) as { key: string; keyId: string };
  };

  const setPrice = async (id: string, price: number) => {
    const token = await devToken(ROOT, { port: stack.ports.issuer, sub: "pricing", scope: "prices:write" });
    return fetch(`${stack.httpUrl}/v1/prices/${id}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ price }),
    });
  };

  it("misses once, then every caller of a public route hits the same entry, with Age", async () => {
    const other = await newKey("e2e-cache-public");
    const stored = Date.now();
    const first = await get("/v1/prices/p-2");
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-cache"), "miss");
    const { call } = (await first.json()) as Price;

    for (const key of [DEMO_API_KEY, other.key]) {
      const again = await get("/v1/prices/p-2", {}, key);
      assert.equal(again.status, 200);
      if (!surelyFresh(stored)) continue; // the entry may have expired: nothing to tell from this read
      assert.equal(again.headers.get("x-cache"), "hit");
      assert.match(again.headers.get("age") ?? "", /^\d+$/);
      assert.equal(((await again.json()) as Price).call, call, "the upstream was not asked again");
    }
  });

  it("ignores what the route does not key: other query parameters, forwarding headers, casing", async () => {
    const stored = Date.now();
    const first = await get("/v1/prices/p-3");
    assert.equal(first.headers.get("x-cache"), "miss");
    const { call } = (await first.json()) as Price;
    const variants = [
      get("/v1/prices/p-3?utm_source=mail&cb=1"),
      get("/v1/prices/p-3", { "x-forwarded-host": "evil.example", "X-Original-URL": "/admin" }),
      get("/v1/prices/p-3?cb=1&cb=2", { "ACCEPT-LANGUAGE": "fr" }),
    ];
    for (const response of await Promise.all(variants)) {
      assert.equal(response.status, 200);
      if (!surelyFresh(stored)) continue; // the entry may have expired: nothing to tell from this read
      assert.equal(response.headers.get("x-cache"), "hit");
      assert.equal(((await response.json()) as Price).call, call);
    }
  });

  it("answers If-None-Match with a 304 from the entry, and a HEAD from the GET entry", async () => {
    const first = await get("/v1/prices");
    const etag = first.headers.get("etag");
    assert.ok(etag, "a stored answer carries an ETag");
    await first.arrayBuffer();
    const revalidated = await get("/v1/prices", { "if-none-match": etag });
    assert.equal(revalidated.status, 304);
    assert.equal(revalidated.headers.get("x-cache"), "hit");
    assert.equal((await revalidated.arrayBuffer()).byteLength, 0);

    const head = await fetch(`${stack.httpUrl}/v1/prices`, {
      method: "HEAD",
      headers: { "x-api-key": DEMO_API_KEY },
    });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("x-cache"), "hit");
    assert.equal(head.headers.get("etag"), etag);
  });

  it("ignores a refresh (Cache-Control: max-age=0) from a caller without the cache:invalidate scope", async () => {
    const first = (await (await get("/v1/prices/p-1")).json()) as Price;
    const refresh = await get("/v1/prices/p-1", { "cache-control": "max-age=0" });
    assert.equal(refresh.headers.get("x-cache"), "hit");
    assert.equal(((await refresh.json()) as Price).call, first.call);
  });

  it("serves the last good answer marked stale while the service is down, and the outage's 503 without one", async () => {
    const first = await get("/v1/prices/p-1");
    const { call, price } = (await first.json()) as Price;
    await fetch(`${demo}/prices/down`, { method: "POST" });
    try {
      // Past the 5-second TTL: the entry is stale, and only served because the service fails.
      const age = Number((await get("/v1/prices/p-1")).headers.get("age") ?? 0);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 5 - age) * 1_000 + 1_100));
      const stale = await get("/v1/prices/p-1");
      assert.equal(stale.status, 200);
      assert.equal(stale.headers.get("x-cache"), "stale");
      assert.ok(Number(stale.headers.get("age")) >= 5, `Age ${stale.headers.get("age")}`);
      assert.deepEqual((({ call: c, price: p }) => ({ call: c, price: p }))((await stale.json()) as Price), {
        call,
        price,
      });

      // A key never cached has nothing to fall back on: the service's failure reaches the client.
      const never = await get("/v1/prices/p-404");
      assert.equal(never.status, 503);
      assert.notEqual(never.headers.get("x-cache"), "stale");
    } finally {
      await fetch(`${demo}/prices/up`, { method: "POST" });
    }
  });

  it("a price change (PUT, 2XX) purges that price and the list: the next reads miss and see it", async () => {
    const before = (await (await get("/v1/prices/p-2")).json()) as Price;
    await (await get("/v1/prices")).arrayBuffer();
    const changed = await setPrice("p-2", before.price + 1);
    assert.equal(changed.status, 200);

    const stored = Date.now();
    const one = await get("/v1/prices/p-2");
    assert.equal(one.headers.get("x-cache"), "miss");
    assert.equal(((await one.json()) as Price).price, before.price + 1);
    const list = await get("/v1/prices");
    assert.equal(list.headers.get("x-cache"), "miss");
    const prices = ((await list.json()) as { prices: Price[] }).prices;
    assert.equal(prices.find((entry) => entry.id === "p-2")?.price, before.price + 1);

    const refused = await setPrice("p-2", -1);
    assert.equal(refused.status, 400, "a body the schema refuses purges nothing and changes nothing");
    const unchanged = await get("/v1/prices/p-2");
    if (surelyFresh(stored)) assert.equal(unchanged.headers.get("x-cache"), "hit");
  });

  it("keeps each caller's own answers apart (principal scope) and counts hits against the caller's quota", async () => {
    const alice = await newKey("e2e-cache-alice");
    const bob = await newKey("e2e-cache-bob");
    const usedBy = async (key: string) =>
      ((await (await get("/usage", {}, key)).json()) as { quota: { used: number } }).quota.used;

    const statuses = [];
    for (const key of [alice.key, bob.key, alice.key, bob.key]) {
      const response = await get("/v1/orders?userId=1", {}, key);
      assert.equal(response.status, 200);
      statuses.push(response.headers.get("x-cache"));
      await response.arrayBuffer();
    }
    assert.deepEqual(statuses, ["miss", "miss", "hit", "hit"]);
    assert.equal(await usedBy(alice.key), 2, "a hit is a counted request");

    // A new order (POST, 201) purges the orders entries: the next read asks the service again.
    const order = await fetch(`${stack.httpUrl}/v1/orders`, {
      method: "POST",
      headers: { "x-api-key": alice.key, "content-type": "application/json" },
      body: JSON.stringify({ productId: "p-1", quantity: 1 }),
    });
    assert.equal(order.status, 201);
    assert.equal((await get("/v1/orders?userId=1", {}, alice.key)).headers.get("x-cache"), "miss");
  });
  it("DELETE /admin/cache purges by tag for an admin, refuses others, and the container drops its copy", async () => {
    const read = Date.now();
    const cached = await get("/v1/prices/p-3");
    assert.equal(cached.status, 200);
    // The entry may be older than this read (a hit): it was stored at most Age + 1 s before it.
    const stored = read - (Number(cached.headers.get("age") ?? 0) + 1) * 1_000;
    const { call } = (await cached.json()) as Price;
    const purge = (token: string, body: unknown) =>
      fetch(`${stack.httpUrl}/admin/cache`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const admin = await devToken(ROOT, { port: stack.ports.issuer, sub: "ops", scope: "gatehouse:admin" });
    const pricing = await devToken(ROOT, { port: stack.ports.issuer, sub: "pricing", scope: "prices:write" });

    assert.equal((await purge(pricing, { tag: "price:p-3" })).status, 403, "the admin scope only");
    const unknown = await purge(admin, { tag: "nothing:p-3" });
    assert.equal(unknown.status, 400);
    assert.equal(unknown.headers.get("content-type"), "application/problem+json");
    const kept = await get("/v1/prices/p-3");
    if (surelyFresh(stored))
      assert.equal(kept.headers.get("x-cache"), "hit", "a refused purge purges nothing");

    const purged = await purge(admin, { tag: "price:p-3" });
    assert.equal(purged.status, 200);
    const answer = (await purged.json()) as { deleted: Record<string, number>; memoryLagSeconds: number };
    assert.equal(answer.deleted["GET /v1/prices/{id}"], 1);
    // The container that served it drops its copy when it next reads the purge record.
    await new Promise((resolve) => setTimeout(resolve, answer.memoryLagSeconds * 1_000 + 200));
    const after = await get("/v1/prices/p-3");
    assert.equal(after.headers.get("x-cache"), "miss");
    assert.ok(((await after.json()) as Price).call > call, "the service was asked again");
  });
});
