import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { createPurgeRecord } from "#shared/cache/purge-record.ts";
import { createTableTier } from "#shared/cache/table.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import cachedGateway, {
  ADMIN_SCOPE as ADMIN,
  ALL_LABELS,
  except,
  type Label,
  seedCacheTable,
} from "../support/cached-gateway.ts";
import { faultyClient, startTestStore, type TestStore } from "../support/dynamo.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

type AdminCacheModule = typeof import("../../handlers/http/admin-cache.ts");

const gateway = loadGateway(cachedGateway, "test");

const bodyOf = (result: HttpResult) => JSON.parse(String(result.body)) as Record<string, unknown>;

/**
 * DELETE /admin/cache through the real handler, against the cache table in dynalite. Entries are
 * stored through the real tiers (a response cache over both), keyed as the gateway keys them.
 */
describe("DELETE /admin/cache against dynalite", () => {
  let store: TestStore;
  let tableName: string;
  let purge: (event: HttpEvent) => Promise<HttpResult>;
  let createAdminCacheHandler: AdminCacheModule["createAdminCacheHandler"];
  let moduleHandler: AdminCacheModule["handler"];
  let remaining: () => Promise<string[]>;
  const saved: Record<string, string | undefined> = {};
  const ENV = {
    GATEHOUSE_STAGE: "test",
    CACHE_TABLE: "",
    AWS_ENDPOINT_URL_DYNAMODB: "",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
  };

  before(async () => {
    store = await startTestStore();
    tableName = store.tables.CacheTable as string;
    // The module builds its own handler when it loads, as on a cold start: from the environment.
    // Kept until the end (the SDK resolves its endpoint and credentials on first use), then restored.
    Object.assign(ENV, { CACHE_TABLE: tableName, AWS_ENDPOINT_URL_DYNAMODB: store.endpoint });
    for (const [name, value] of Object.entries(ENV)) {
      saved[name] = process.env[name];
      process.env[name] = value;
    }
    const module = (await import("../../handlers/http/admin-cache.ts")) as AdminCacheModule;
    createAdminCacheHandler = module.createAdminCacheHandler;
    moduleHandler = module.handler;
    const handler = createAdminCacheHandler({
      gateway,
      table: createTableTier({ client: store.client, tableName }),
      record: createPurgeRecord({ client: store.client, tableName }),
    });
    purge = (event) => handler(event, lambdaContext("gatehouse-test-adminCache")) as Promise<HttpResult>;
  });
  after(async () => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await store?.stop();
  });

  beforeEach(async () => {
    ({ remaining } = await seedCacheTable(store, gateway));
    assert.deepEqual(await remaining(), ALL_LABELS);
  });

  /** The sample event, with this body (JSON unless a string) or this query. */
  function purgeEvent({
    body,
    query = "",
    contentType = "application/json",
    scopes = ADMIN,
  }: {
    body?: unknown;
    query?: string;
    contentType?: string;
    scopes?: string;
  } = {}): HttpEvent {
    const event = loadEvent<HttpEvent>("adminCache.json");
    delete event.body;
    delete event.headers["content-length"];
    if (body !== undefined) event.body = typeof body === "string" ? body : JSON.stringify(body);
    event.headers["content-type"] = contentType;
    event.rawQueryString = query;
    (
      event.requestContext as unknown as { authorizer: { lambda: Record<string, string> } }
    ).authorizer.lambda.scopes = scopes;
    return event;
  }

  const selectors: [string, unknown, Label[], Record<string, number>][] = [
    [
      "a whole route",
      { route: "GET /v1/products/{id}" },
      ["42 page 1", "42 page 2", "43", "café"],
      { "GET /v1/products/{id}": 4 },
    ],
    [
      "a route and a parameter",
      { route: "GET /v1/products/{id}", params: { id: "42" } },
      ["42 page 1", "42 page 2"],
      { "GET /v1/products/{id}": 2 },
    ],
    [
      "a route and a decoded value",
      { route: "GET /v1/products/{id}", params: { id: "café" } },
      ["café"],
      { "GET /v1/products/{id}": 1 },
    ],
    [
      "a path (every query of it)",
      { path: "/v1/products/42" },
      ["42 page 1", "42 page 2"],
      { "GET /v1/products/{id}": 2 },
    ],
    ["a percent-encoded path", { path: "/v1/products/caf%C3%A9" }, ["café"], { "GET /v1/products/{id}": 1 }],
    [
      "a path on a greedy route",
      { path: "/v1/files/alice/docs/a.txt" },
      ["alice docs"],
      { "GET /v1/files/{owner}/{rest+}": 1 },
    ],
    [
      "a prefix ending inside a parameter",
      { prefix: "/v1/products/4" },
      ["42 page 1", "42 page 2", "43"],
      { "GET /v1/products/{id}": 3 },
    ],
    [
      "a prefix over a greedy parameter",
      { prefix: "/v1/files/alice/" },
      ["alice docs", "alice img"],
      { "GET /v1/files/{owner}/{rest+}": 2 },
    ],
    [
      "a prefix inside a greedy parameter",
      { prefix: "/v1/files/bob/docs/" },
      ["bob docs"],
      { "GET /v1/files/{owner}/{rest+}": 1 },
    ],
    [
      "a prefix over two routes",
      { prefix: "/v1/products" },
      ["42 page 1", "42 page 2", "43", "café", "list"],
      { "GET /v1/products/{id}": 4, "GET /v1/products": 1 },
    ],
    [
      "a tag with a parameter",
      { tag: "product:42" },
      ["42 page 1", "42 page 2"],
      { "GET /v1/products/{id}": 2 },
    ],
    [
      "a tag on two routes",
      { tag: "products" },
      ["42 page 1", "42 page 2", "43", "café", "list"],
      { "GET /v1/products/{id}": 4, "GET /v1/products": 1 },
    ],
    [
      "a tag on a greedy route",
      { tag: "owner:alice" },
      ["alice docs", "alice img"],
      { "GET /v1/files/{owner}/{rest+}": 2 },
    ],
    ["a path that matches nothing stored", { path: "/v1/products/99" }, [], { "GET /v1/products/{id}": 0 }],
  ];
  for (const [what, body, gone, deleted] of selectors) {
    it(`purges by ${what}: ${JSON.stringify(body)} deletes exactly ${gone.length ? gone.join(", ") : "nothing"}`, async () => {
      // Act
      const result = await purge(purgeEvent({ body }));

      // Assess
      assert.equal(result.statusCode, 200, String(result.body));
      assert.match(String(result.headers["content-type"]), /^application\/json/);
      const answer = bodyOf(result);
      assert.deepEqual(answer.deleted, deleted);
      assert.equal(answer.total, gone.length);
      assert.deepEqual(answer.selector, body);
      assert.equal(answer.everything, false);
      assert.deepEqual(await remaining(), except(...gone));
    });
  }

  it("records the purge for the gateway containers' memory, and says how long a container may lag it", async () => {
    const record = createPurgeRecord({ client: store.client, tableName });
    const before = Date.now();
    const answer = bodyOf(await purge(purgeEvent({ body: { tag: "owner:bob" } })));
    const purgedAt = (await record.read()).get(Object.keys(answer.deleted as object)[0] as string);
    assert.ok(purgedAt !== undefined && purgedAt >= before, `recorded at ${purgedAt}`);
    assert.equal(answer.memoryLagSeconds, gateway.cache.memory.purgeCheckSeconds);
    assert.equal(
      answer.memory,
      `Deleted from the shared cache table. Every gateway container drops its in-memory copies of these routes the next time it reads the purge record, within ${gateway.cache.memory.purgeCheckSeconds} s (cache.memory.purgeCheckSeconds); until then a container may still answer from one.`,
    );
  });

  it("purges everything for the prefix / and says so", async () => {
    const result = await purge(purgeEvent({ body: { prefix: "/" } }));
    assert.equal(result.statusCode, 200, String(result.body));
    const answer = bodyOf(result);
    assert.equal(answer.everything, true);
    assert.equal(answer.note, "The prefix / purges every cached route.");
    assert.equal(answer.total, ALL_LABELS.length);
    assert.deepEqual(answer.deleted, {
      "GET /v1/products/{id}": 4,
      "GET /v1/products": 1,
      "GET /v1/files/{owner}/{rest+}": 3,
    });
    assert.deepEqual(await remaining(), []);
  });

  it("takes the selector from the query too: path, and route with param=name=value", async () => {
    const byPath = await purge(purgeEvent({ query: "path=%2Fv1%2Fproducts%2F43" }));
    assert.equal(byPath.statusCode, 200, String(byPath.body));
    assert.deepEqual(await remaining(), except("43"));
    const byRoute = await purge(purgeEvent({ query: "route=GET+/v1/products/{id}&param=id%3D42" }));
    assert.equal(byRoute.statusCode, 200, String(byRoute.body));
    assert.deepEqual(bodyOf(byRoute).selector, { route: "GET /v1/products/{id}", params: { id: "42" } });
    assert.deepEqual(await remaining(), except("43", "42 page 1", "42 page 2"));
  });

  const hostile: [string, Parameters<typeof purgeEvent>[0], number, RegExp][] = [
    [
      "an unknown route",
      { body: { route: "GET /nope" } },
      400,
      /route: GET \/nope is not a route of this gateway/,
    ],
    [
      "a route that is not cached",
      { body: { route: "GET /v1/plain" } },
      400,
      /route: GET \/v1\/plain is not a cached route/,
    ],
    ["the purge route itself", { body: { route: "DELETE /admin/cache" } }, 400, /is not a cached route/],
    [
      "a parameter the route lacks",
      { body: { route: "GET /v1/products", params: { id: "42" } } },
      400,
      /params\.id: GET \/v1\/products has no path parameter \{id\}/,
    ],
    [
      "two selectors",
      { body: { path: "/v1/products/42", tag: "products" } },
      400,
      /exactly one of route, path, prefix or tag/,
    ],
    ["no selector", { body: {} }, 400, /say what to purge/],
    ["no body and no query", {}, 400, /say what to purge/],
    [
      "params without a route",
      { body: { path: "/v1/products/42", params: { id: "42" } } },
      400,
      /params narrows a route/,
    ],
    ["an unknown member", { body: { key: "k1:abc" } }, 400, /remove key/],
    ["a selector that is not a string", { body: { path: ["/v1"] } }, 400, /path is a string/],
    ["a JSON body that is not an object", { body: "[]" }, 400, /a purge is an object/],
    ["a malformed JSON body", { body: '{"path": "/v1/products/42"' }, 400, /The body is not valid JSON/],
    [
      "%zz in a path",
      { body: { path: "/v1/products/%zz" } },
      400,
      /path: the path is not valid percent-encoding/,
    ],
    [
      "%zz in a prefix",
      { body: { prefix: "/v1/%zz" } },
      400,
      /prefix: the prefix is not valid percent-encoding/,
    ],
    ["%zz in a tag", { body: { tag: "product:%zz" } }, 400, /tag: the tag is not valid percent-encoding/],
    ["%zz in the query", { query: "path=%zz" }, 400, /the query is not valid percent-encoding/],
    [
      "a path answered by a route that is not cached",
      { body: { path: "/v1/plain" } },
      400,
      /answered by GET \/v1\/plain, which is not cached/,
    ],
    ["a path with a query", { body: { path: "/v1/products/42?page=1" } }, 400, /without the query/],
    ["a prefix without a leading /", { body: { prefix: "v1" } }, 400, /starts with \//],
    [
      "a prefix no cached route has",
      { body: { prefix: "/v2/" } },
      400,
      /no cached route has a path starting with \/v2\//,
    ],
    ["a tag no route has", { body: { tag: "product" } }, 400, /no cached route has the tag product;/],
    ["an unknown query member", { query: "path=/v1/products/42&force=1" }, 400, /remove force/],
    ["a repeated query member", { query: "tag=products&tag=owner:alice" }, 400, /tag is given once/],
    [
      "a param that is not name=value",
      { query: "route=GET+/v1/products/{id}&param=42" },
      400,
      /param is name=value/,
    ],
    ["a body and a query", { body: { tag: "products" }, query: "tag=products" }, 400, /not both/],
    [
      "an oversized body",
      { body: { path: `/v1/products/${"4".repeat(5_000)}` } },
      413,
      /larger than a purge takes \(4096 bytes\)/,
    ],
    [
      "an oversized query",
      { query: `path=/v1/products/${"4".repeat(5_000)}` },
      400,
      /longer than a purge takes/,
    ],
    [
      "a body that is not JSON",
      { body: "path=/v1/products/42", contentType: "application/x-www-form-urlencoded" },
      415,
      /send the purge as application\/json/,
    ],
    [
      "a caller without the admin scope",
      { body: { prefix: "/" }, scopes: "cache:invalidate" },
      403,
      /needs the gatehouse:admin scope/,
    ],
  ];
  for (const [what, input, status, detail] of hostile) {
    it(`refuses ${what} with ${status} problem+json and purges nothing`, async () => {
      // Act
      const result = await purge(purgeEvent(input));

      // Assess
      assert.equal(result.statusCode, status, String(result.body));
      assert.equal(result.headers["content-type"], "application/problem+json");
      const problem = bodyOf(result);
      assert.equal(problem.status, status);
      assert.match(String(problem.detail), detail);
      assert.ok(problem.requestId);
      assert.deepEqual(await remaining(), ALL_LABELS);
    });
  }

  it("names every bad field of a body in errors", async () => {
    const result = await purge(purgeEvent({ body: { path: 1, tag: "", extra: true } }));
    assert.equal(result.statusCode, 400);
    const errors = bodyOf(result).errors as { field: string; message: string }[];
    assert.deepEqual(errors.map((error) => error.field).sort(), ["extra", "path", "tag"]);
  });

  for (const failing of ["QueryCommand", "BatchWriteItemCommand", "UpdateItemCommand"]) {
    it(`answers 503 problem+json with a generic detail when the table fails (${failing})`, async () => {
      // Prepare: the same table through a client whose ${failing} fails, as a throttled or unreachable table would.
      const client = faultyClient(store.endpoint, ({ commandName }) => {
        if (commandName === failing)
          throw Object.assign(new Error("ProvisionedThroughputExceededException: slow down"), {
            name: "ProvisionedThroughputExceededException",
          });
      });
      const handler = createAdminCacheHandler({
        gateway,
        table: createTableTier({ client, tableName }),
        record: createPurgeRecord({ client, tableName }),
      });

      // Act
      const result = (await handler(
        purgeEvent({ body: { tag: "products" } }),
        lambdaContext(),
      )) as HttpResult;

      // Assess
      assert.equal(result.statusCode, 503, String(result.body));
      assert.equal(result.headers["content-type"], "application/problem+json");
      const problem = bodyOf(result);
      assert.equal(problem.detail, "The gateway could not complete the request. Quote the request id.");
      assert.doesNotMatch(String(result.body), /Provisioned|slow down|purging|at .*\.ts/);
    });
  }

  it("the module's own handler (built from gateway.config.ts and the environment) purges the table it names", async () => {
    // The prefix / is every route gateway.config.ts caches, whole; none has an entry here.
    const result = (await moduleHandler(
      purgeEvent({ body: { prefix: "/" } }),
      lambdaContext(),
    )) as HttpResult;
    assert.equal(result.statusCode, 200, String(result.body));
    const answer = bodyOf(result);
    assert.deepEqual(
      [answer.everything, answer.total, answer.deleted],
      [true, 0, { "GET /v1/orders": 0, "GET /v1/prices": 0, "GET /v1/prices/{id}": 0 }],
    );
    assert.match(String(answer.memory), /^Deleted from the shared cache table/);
    assert.deepEqual(
      await remaining(),
      ALL_LABELS,
      "entries of routes it does not declare are not its to purge",
    );
    const refused = (await moduleHandler(
      purgeEvent({ body: { path: "/v1/products/42" } }),
      lambdaContext(),
    )) as HttpResult;
    assert.equal(refused.statusCode, 400);
    assert.match(String(bodyOf(refused).detail), /GET \/v1\/products\/\{id\}|no route answers|not cached/);
  });
});
