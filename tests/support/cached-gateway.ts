import assert from "node:assert/strict";
import { BatchWriteCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { compileCacheKey } from "#shared/cache/key.ts";
import { createMemoryTier } from "#shared/cache/memory.ts";
import { PURGE_RECORD_KEY } from "#shared/cache/purge-record.ts";
import { createResponseCache } from "#shared/cache/response-cache.ts";
import { createTableTier } from "#shared/cache/table.ts";
import { routeCachePolicy } from "#shared/config/derive.ts";
import { defineGateway, type GatewayConfig } from "#shared/config/gateway.ts";
import type { TestStore } from "./dynamo.ts";

/**
 * A gateway with cached routes (gateway.config.ts has none yet) and the purge route, for the purge's
 * tests: the handler's, and the CLI's, which loads it as `--config tests/support/cached-gateway.ts`.
 */
export const ADMIN_SCOPE = "gatehouse:admin";

export default defineGateway(() => ({
  auth: {
    issuers: [{ kind: "oidc", id: "idp", issuer: "https://idp.example.com", audience: ["api"] }],
    adminScope: ADMIN_SCOPE,
  },
  upstreams: { svc: { targets: [{ url: "https://svc.internal" }] } },
  routes: {
    "GET /v1/products/{id}": {
      auth: "public",
      proxy: { upstream: "svc", path: "/products/{id}" },
      cache: {
        ttlSeconds: 300,
        key: { query: ["page"] },
        staleWhileRevalidateSeconds: 30,
        tags: ["products", "product:{id}"],
      },
    },
    "GET /v1/products": {
      auth: "public",
      proxy: { upstream: "svc", path: "/products" },
      cache: { ttlSeconds: 60, tags: ["products"] },
    },
    "GET /v1/files/{owner}/{rest+}": {
      auth: "public",
      proxy: { upstream: "svc", path: "/files/{owner}/{rest+}" },
      cache: { ttlSeconds: 10, tags: ["owner:{owner}"] },
    },
    "GET /v1/plain": { auth: "public", proxy: { upstream: "svc", path: "/plain" } },
    "DELETE /admin/cache": { auth: { jwt: { scopes: [ADMIN_SCOPE] } }, handler: "adminCache" },
  },
}));

/** The entries a purge test starts from, by label: a route, its path parameters (as API Gateway decodes them), a query. */
const SEED = {
  "42 page 1": ["GET /v1/products/{id}", { id: "42" }, "page=1"],
  "42 page 2": ["GET /v1/products/{id}", { id: "42" }, "page=2"],
  "43": ["GET /v1/products/{id}", { id: "43" }, ""],
  café: ["GET /v1/products/{id}", { id: "café" }, ""],
  list: ["GET /v1/products", {}, ""],
  "alice docs": ["GET /v1/files/{owner}/{rest+}", { owner: "alice", rest: "docs/a.txt" }, ""],
  "alice img": ["GET /v1/files/{owner}/{rest+}", { owner: "alice", rest: "img/b.png" }, ""],
  "bob docs": ["GET /v1/files/{owner}/{rest+}", { owner: "bob", rest: "docs/a.txt" }, ""],
} as const;
export type Label = keyof typeof SEED;
export const ALL_LABELS = (Object.keys(SEED) as Label[]).sort();
/** Every seeded label but these, sorted. */
export const except = (...gone: Label[]) => ALL_LABELS.filter((label) => !gone.includes(label));

/**
 * The cache table of a test store, emptied and then filled with `SEED` through the real tiers (a
 * response cache's misses), keyed as the gateway keys them. `remaining()` names what is left.
 */
export async function seedCacheTable(store: TestStore, gateway: GatewayConfig) {
  const tableName = store.tables.CacheTable as string;
  const { Items = [] } = await store.client.send(new ScanCommand({ TableName: tableName }));
  for (let start = 0; start < Items.length; start += 25) {
    const batch = Items.slice(start, start + 25).map((item) => ({ DeleteRequest: { Key: { pk: item.pk } } }));
    await store.client.send(new BatchWriteCommand({ RequestItems: { [tableName]: batch } }));
  }
  const labels = new Map<string, Label>();
  const cache = createResponseCache({
    memory: createMemoryTier({ maxBytes: 0, maxEntryBytes: 1 }),
    table: createTableTier({ client: store.client, tableName }),
  });
  for (const [label, [routeKey, pathParameters, query]] of Object.entries(SEED)) {
    const policy = routeCachePolicy(gateway, routeKey);
    assert.ok(policy, routeKey);
    const key = compileCacheKey({ routeKey, query: policy.key.query, headers: [], scope: policy.scope })({
      method: "GET",
      pathParameters,
      rawQueryString: query,
      headers: {},
      identity: undefined,
    });
    assert.ok(key.cacheable);
    labels.set(key.id, label as Label);
    const served = await cache.serve({
      key,
      policy,
      keyedHeaders: [],
      method: "GET",
      fetch: async () => ({
        status: 200,
        headers: { "content-type": "text/plain" },
        body: Buffer.from(label),
      }),
    });
    assert.equal(served.status, "miss");
  }
  return {
    /**
     * The labels of the entries left in the table, sorted (an entry not seeded shows as
     * `unknown <pk>`); the purge record is not an entry.
     */
    async remaining(): Promise<string[]> {
      const { Items: left = [] } = await store.client.send(
        new ScanCommand({ TableName: tableName, ConsistentRead: true }),
      );
      return left
        .filter((item) => item.pk !== PURGE_RECORD_KEY)
        .map((item) => labels.get(item.pk as string) ?? `unknown ${item.pk}`)
        .sort();
    },
  };
}
