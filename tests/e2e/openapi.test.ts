import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import definition from "../../gateway.config.ts";
import { devToken } from "../../plugins/dev-issuer.mjs";
import { DEMO_API_KEY } from "../../plugins/local-stack.mjs";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";
import { ROOT } from "../support/serverless.ts";

// The local stack (npm start) on free ports of its own: the OpenAPI document it serves, and the
// routes imported from examples/openapi/inventory.yaml answered through the demo inventory service.
describe("OpenAPI on the local stack, over real sockets", () => {
  let stack: LocalStack;
  before(async () => {
    stack = await startLocalStackOnFreePorts();
  });
  after(async () => {
    await stack?.stop();
  });

  it("GET /openapi.json answers 200 with a valid document of the config's routes, then 304 to its ETag", async () => {
    // Act
    const first = await fetch(`${stack.httpUrl}/openapi.json`);
    // Assess: the document, public and cacheable.
    assert.equal(first.status, 200);
    assert.match(first.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(first.headers.get("cache-control"), "public, max-age=300");
    const etag = first.headers.get("etag");
    assert.match(etag ?? "", /^"[A-Za-z0-9_-]{43}"$/);
    const document = (await first.json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    const result = await new Validator().validate(document);
    assert.equal(result.valid, true, JSON.stringify(result.errors));
    const routes = new Set(
      Object.values(document.paths).flatMap((item) =>
        Object.values(item).map((op) => (op as { "x-gatehouse-route": string })["x-gatehouse-route"]),
      ),
    );
    assert.deepEqual([...routes].sort(), Object.keys(definition({ stage: "local" }).routes).sort());
    // A second request with the tag: 304, no body.
    const second = await fetch(`${stack.httpUrl}/openapi.json`, { headers: { "if-none-match": etag ?? "" } });
    assert.equal(second.status, 304);
    assert.equal(await second.text(), "");
  });

  it("serves an imported route: the seeded key gets the inventory service's answer", async () => {
    const response = await fetch(`${stack.httpUrl}/inventory/items/i-1`, {
      headers: { "x-api-key": DEMO_API_KEY },
    });
    assert.equal(response.status, 200);
    const item = (await response.json()) as Record<string, unknown>;
    assert.deepEqual([item.id, item.sku], ["i-1", "ENG-0001"]);
    assert.ok(response.headers.get("ratelimit-remaining"), "imported routes are limited");
  });

  it("creates through an imported route with a body its schema accepts, and 400s one it refuses", async () => {
    const post = (body: unknown) =>
      fetch(`${stack.httpUrl}/inventory/items`, {
        method: "POST",
        headers: { "x-api-key": DEMO_API_KEY, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const created = await post({ sku: "ABC-1234", name: "Gear", price: 2.5, discontinuedAt: null });
    assert.equal(created.status, 201, await created.clone().text());
    assert.equal(((await created.json()) as { sku: string }).sku, "ABC-1234");

    const refused = await post({ sku: "abc", name: "Gear", price: 0, colour: "red" });
    assert.equal(refused.status, 400);
    assert.equal(refused.headers.get("content-type"), "application/problem+json");
    const problem = (await refused.json()) as { errors: { field: string }[] };
    assert.deepEqual(problem.errors.map((error) => error.field).sort(), ["/", "/price", "/sku"]);
  });

  it("takes a bearer JWT on the route the spec secures with one, and refuses an API key there", async () => {
    const token = await devToken(ROOT, { port: stack.ports.issuer, sub: "warehouse-1" });
    const put = (headers: Record<string, string>) =>
      fetch(`${stack.httpUrl}/inventory/items/i-2/stock`, {
        method: "PUT",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ quantity: 7 }),
      });
    const stocked = await put({ authorization: `Bearer ${token}` });
    assert.equal(stocked.status, 200, await stocked.clone().text());
    assert.deepEqual(await stocked.json(), { id: "i-2", stock: 7 });
    assert.equal((await put({ "x-api-key": DEMO_API_KEY })).status, 401);
  });
});
