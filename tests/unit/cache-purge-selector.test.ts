import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  compilePurgeSelector,
  type PurgeSelector,
  parsePurgeRequest,
  type Selection,
  tierPurges,
} from "#shared/cache/purge-selector.ts";
import { matchTag, parseTagTemplate } from "#shared/cache/tags.ts";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";

const proxy = { upstream: "svc", path: "/x" };
const input: GatewayConfigInput = {
  auth: {},
  upstreams: { svc: { targets: [{ url: "https://svc.internal" }] } },
  routes: {
    "GET /v1/products/{id}": {
      auth: "public",
      proxy,
      cache: { ttlSeconds: 300, staleWhileRevalidateSeconds: 30, tags: ["products", "product:{id}"] },
    },
    // A literal beats {id}: /v1/products/featured is this route's, never the cached one's.
    "GET /v1/products/featured": { auth: "public", proxy },
    "GET /v1/products": { auth: "public", proxy, cache: { ttlSeconds: 60, tags: ["products"] } },
    "POST /v1/products": { auth: "public", proxy, cache: { invalidates: ["GET /v1/products"] } },
    "GET /v1/files/{owner}/{rest+}": {
      auth: "public",
      proxy,
      cache: { ttlSeconds: 10, staleIfErrorSeconds: 600, tags: ["owner:{owner}", "file:{owner}/{rest}"] },
    },
    "GET /v2/items/{id}": { auth: "public", proxy, cache: { ttlSeconds: 20, tags: ["product:{id}"] } },
    "GET /v3/pairs/{a}/{b}": { auth: "public", proxy, cache: { tags: ["pair:{a}", "pair:{b}"] } },
    "ANY /v1/echo/{rest+}": { auth: "public", proxy },
    "GET /health": { auth: "public", handler: "health" },
  },
};
const gateway = loadGateway(
  defineGateway(() => input),
  "test",
);
const select = compilePurgeSelector(gateway);

/** The purges of a selection that must succeed, as `[routeKey, params, pathPrefix?]`. */
function purgesOf(selector: PurgeSelector) {
  const selection = select(selector);
  assert.ok(selection.ok, JSON.stringify(selection));
  return selection.purges.map((purge) =>
    purge.pathPrefix === undefined
      ? [purge.routeKey, purge.params]
      : [purge.routeKey, purge.params, purge.pathPrefix],
  );
}
/** The problem of a selection by another config's selector, as `field: message`. */
function problemOfWith(selectFrom: typeof select, selector: PurgeSelector): string {
  const selection = selectFrom(selector);
  assert.ok(!selection.ok, JSON.stringify(selection));
  return `${selection.field}: ${selection.message}`;
}
/** A selection that must succeed. */
function selected(selector: PurgeSelector): Extract<Selection, { ok: true }> {
  const selection = select(selector);
  assert.ok(selection.ok, JSON.stringify(selection));
  return selection;
}
/** The problem of a selection that must fail, as `field: message`. */
const problemOf = (selector: PurgeSelector) => problemOfWith(select, selector);

describe("purge request parsing", () => {
  it("takes exactly one selector, and params only with a route", () => {
    assert.deepEqual(parsePurgeRequest({ path: "/a" }), { ok: true, selector: { path: "/a" } });
    assert.deepEqual(parsePurgeRequest({ route: "GET /a/{id}", params: { id: "1" } }), {
      ok: true,
      selector: { route: "GET /a/{id}", params: { id: "1" } },
    });
    assert.deepEqual(parsePurgeRequest({}), {
      ok: false,
      errors: [
        { field: "(request)", message: "say what to purge: route (with params), path, prefix or tag" },
      ],
    });
    assert.deepEqual(parsePurgeRequest({ path: "/a", tag: "t" }), {
      ok: false,
      errors: [
        {
          field: "path, tag",
          message:
            "a purge takes exactly one of route, path, prefix or tag; it says path and tag, so send one per request",
        },
      ],
    });
    assert.deepEqual(parsePurgeRequest({ prefix: "/a", params: { id: "1" } }), {
      ok: false,
      errors: [{ field: "params", message: "params narrows a route; send route with it, or remove params" }],
    });
  });

  it("names every field that is wrong: an unknown member, a wrong type, an empty value, a bad route key", () => {
    const result = parsePurgeRequest({
      path: 42,
      tag: "",
      route: "get /x",
      params: { "a-b": "1" },
      key: "k",
    });
    assert.ok(!result.ok);
    assert.deepEqual(result.errors.map((error) => error.field).sort(), [
      "key",
      "params.a-b",
      "path",
      "route",
      "tag",
    ]);
    assert.match(
      result.errors.find((error) => error.field === "key")?.message ?? "",
      /^a purge takes route \(with params\), path, prefix or tag; remove key$/,
    );
    for (const notAnObject of [[], "path=/a", null, 42])
      assert.deepEqual(parsePurgeRequest(notAnObject), {
        ok: false,
        errors: [
          { field: "(request)", message: 'a purge is an object such as { "path": "/v1/products/42" }' },
        ],
      });
    assert.ok(!parsePurgeRequest({ path: `/${"a".repeat(2_048)}` }).ok, "a path over 2048 characters");
  });
});

describe("purge selectors", () => {
  it("by route: the whole route, or the entries with the given parameters, encoded as the key encodes them", () => {
    assert.deepEqual(purgesOf({ route: "GET /v1/products/{id}" }), [["GET /v1/products/{id}", {}]]);
    assert.deepEqual(purgesOf({ route: "GET /v1/products/{id}", params: { id: "a b/é" } }), [
      ["GET /v1/products/{id}", { id: "a%20b%2F%C3%A9" }],
    ]);
    // A value is taken as decoded: "%41" is the three characters, not "A".
    assert.deepEqual(purgesOf({ route: "GET /v1/files/{owner}/{rest+}", params: { rest: "a/%41" } }), [
      ["GET /v1/files/{owner}/{rest+}", { rest: "a%2F%2541" }],
    ]);
  });

  it("by route: refuses an unknown route, a route that is not cached, a parameter it lacks, a lone surrogate", () => {
    assert.match(
      problemOf({ route: "GET /nope" }),
      /^route: GET \/nope is not a route of this gateway; the cached routes are: GET \/v1\/products\/\{id\}, GET \/v1\/products, /,
    );
    assert.match(
      problemOf({ route: "GET /v1/products/featured" }),
      /^route: GET \/v1\/products\/featured is not a cached route \(a GET or HEAD route that says cache\)/,
    );
    assert.match(
      problemOf({ route: "POST /v1/products" }),
      /^route: POST \/v1\/products is not a cached route/,
    );
    assert.equal(
      problemOf({ route: "GET /v1/products/{id}", params: { sku: "1" } }),
      "params.sku: GET /v1/products/{id} has no path parameter {sku} (it has {id}); name one of those, or leave params out to purge the whole route",
    );
    assert.match(problemOf({ route: "GET /v1/products", params: { id: "1" } }), /\(it has none\)/);
    assert.equal(
      problemOf({ route: "GET /v1/products/{id}", params: { id: "\ud800" } }),
      "params.id: the value is not valid text (a lone surrogate)",
    );
  });

  it("by path: the route that answers it, as API Gateway would choose, with its decoded parameters", () => {
    assert.deepEqual(purgesOf({ path: "/v1/products/42" }), [["GET /v1/products/{id}", { id: "42" }]]);
    assert.deepEqual(purgesOf({ path: "/v1/products/caf%c3%a9" }), [
      ["GET /v1/products/{id}", { id: "caf%C3%A9" }],
    ]);
    assert.deepEqual(purgesOf({ path: "/v1/products/a%2Fb" }), [["GET /v1/products/{id}", { id: "a%2Fb" }]]);
    assert.deepEqual(purgesOf({ path: "/v1/files/alice/docs/a%20b.txt" }), [
      ["GET /v1/files/{owner}/{rest+}", { owner: "alice", rest: "docs%2Fa%20b.txt" }],
    ]);
    assert.deepEqual(purgesOf({ path: "/v1/products" }), [["GET /v1/products", {}]]);
  });

  it("by path: refuses %zz, a path no cached route answers, a query, and a path without a leading /", () => {
    assert.equal(
      problemOf({ path: "/v1/products/%zz" }),
      "path: the path is not valid percent-encoding (such as %zz)",
    );
    assert.equal(
      problemOf({ path: "/v1/products/featured" }),
      "path: /v1/products/featured is answered by GET /v1/products/featured, which is not cached",
    );
    assert.equal(
      problemOf({ path: "/v1/echo/x" }),
      "path: /v1/echo/x is answered by ANY /v1/echo/{rest+}, which is not cached",
    );
    assert.match(
      problemOf({ path: "/nope/1" }),
      /^path: no route answers \/nope\/1; the cached routes are: /,
    );
    assert.match(problemOf({ path: "/v1/products/42?page=2" }), /without the query or fragment/);
    assert.match(problemOf({ path: "v1/products/42" }), /^path: a path starts with \//);
  });

  it("by prefix: whole routes when every path of theirs starts with it, else a per-entry path prefix", () => {
    assert.deepEqual(purgesOf({ prefix: "/v1/products/" }), [["GET /v1/products/{id}", {}]]);
    assert.deepEqual(purgesOf({ prefix: "/v1/prod" }), [
      ["GET /v1/products/{id}", {}],
      ["GET /v1/products", {}],
    ]);
    assert.deepEqual(purgesOf({ prefix: "/v1/products/4" }), [
      ["GET /v1/products/{id}", {}, "/v1/products/4"],
    ]);
    assert.deepEqual(purgesOf({ prefix: "/v1/files/alice/docs%2f" }), [
      ["GET /v1/files/{owner}/{rest+}", {}, "/v1/files/alice/docs%2F"],
    ]);
    const everything = select({ prefix: "/" });
    assert.ok(everything.ok);
    assert.equal(everything.everything, true);
    assert.deepEqual(
      everything.purges.map((purge) => purge.routeKey),
      [
        "GET /v1/products/{id}",
        "GET /v1/products",
        "GET /v1/files/{owner}/{rest+}",
        "GET /v2/items/{id}",
        "GET /v3/pairs/{a}/{b}",
      ],
    );
    assert.equal(selected({ prefix: "/v1/" }).everything, false);
  });

  it("by prefix: an entry's path is rebuilt from its route and parameters, a greedy one's slashes included", () => {
    const [products] = tierPurges(selected({ prefix: "/v1/products/4" }).purges);
    assert.ok(products?.where);
    assert.deepEqual(
      ["42", "4", "4%20x", "5", "14"].map((id) => products.where?.({ id })),
      [true, true, true, false, false],
    );
    const [files] = tierPurges(selected({ prefix: "/v1/files/alice/docs/" }).purges);
    assert.ok(files?.where);
    const entries: Record<string, string>[] = [
      { owner: "alice", rest: "docs%2Fa.txt" },
      { owner: "alice", rest: "docs" },
      { owner: "alice", rest: "docsx%2Fa" },
      { owner: "bob", rest: "docs%2Fa.txt" },
      { owner: "alice" },
    ];
    assert.deepEqual(
      entries.map((params) => files.where?.(params)),
      [true, false, false, false, false],
    );
  });

  it("by prefix: refuses one no cached route could start with, %zz, and one without a leading /", () => {
    assert.match(problemOf({ prefix: "/v9/" }), /^prefix: no cached route has a path starting with \/v9\//);
    assert.match(problemOf({ prefix: "/v1/products/featured/x" }), /^prefix: no cached route/);
    assert.match(problemOf({ prefix: "/v1/%zz" }), /^prefix: the prefix is not valid percent-encoding/);
    assert.match(problemOf({ prefix: "/v1/caf%C3" }), /an escape cut short/);
    assert.match(problemOf({ prefix: "v1" }), /^prefix: a prefix is a path that starts with \//);
    assert.match(problemOf({ prefix: "/v1?x" }), /without a query or fragment/);
  });

  it("by tag: every route whose tag fits, with the parameters the tag binds", () => {
    assert.deepEqual(purgesOf({ tag: "products" }), [
      ["GET /v1/products/{id}", {}],
      ["GET /v1/products", {}],
    ]);
    assert.deepEqual(purgesOf({ tag: "product:42" }), [
      ["GET /v1/products/{id}", { id: "42" }],
      ["GET /v2/items/{id}", { id: "42" }],
    ]);
    // Decoded once and encoded once, as a path segment: three spellings, one entry.
    for (const tag of ["product:café", "product:caf%c3%a9", "product:caf%C3%A9"])
      assert.deepEqual(purgesOf({ tag }), [
        ["GET /v1/products/{id}", { id: "caf%C3%A9" }],
        ["GET /v2/items/{id}", { id: "caf%C3%A9" }],
      ]);
    assert.deepEqual(purgesOf({ tag: "file:alice/docs/a.txt" }), [
      ["GET /v1/files/{owner}/{rest+}", { owner: "alice", rest: "docs%2Fa.txt" }],
    ]);
    assert.deepEqual(purgesOf({ tag: "owner:alice" }), [
      ["GET /v1/files/{owner}/{rest+}", { owner: "alice" }],
    ]);
  });

  it("by tag: refuses a tag no route has (listing the tags), an empty value, and %zz", () => {
    assert.equal(
      problemOf({ tag: "nope" }),
      "tag: no cached route has the tag nope; the routes' tags are: products, product:{id}, owner:{owner}, file:{owner}/{rest}, pair:{a}, pair:{b}",
    );
    assert.match(problemOf({ tag: "product:" }), /^tag: no cached route has the tag product:;/);
    assert.equal(
      problemOf({ tag: "product:%zz" }),
      "tag: the tag is not valid percent-encoding (such as %zz)",
    );
  });

  it("by tag: two templates of one route that fit become one tier purge taking either", () => {
    const selection = select({ tag: "pair:1" });
    assert.ok(selection.ok);
    assert.equal(selection.purges.length, 2);
    const tiers = tierPurges(selection.purges);
    assert.equal(tiers.length, 1);
    const [pairs] = tiers;
    assert.deepEqual([pairs?.routeKey, pairs?.params], ["GET /v3/pairs/{a}/{b}", {}]);
    assert.deepEqual(
      [
        { a: "1", b: "2" },
        { a: "2", b: "1" },
        { a: "2", b: "2" },
      ].map((params) => pairs?.where?.(params)),
      [true, true, false],
    );
  });

  it("counts a route that says cache as cached on a stage with caching off: its stored entries can still be purged", () => {
    const off = loadGateway(
      defineGateway(() => ({ ...input, cache: { enabled: false } })),
      "test",
    );
    assert.deepEqual(compilePurgeSelector(off)({ path: "/v1/products/42" }).ok, true);
  });

  it("takes the prefix / even when nothing is cached: everything, which is nothing", () => {
    const bare = loadGateway(
      defineGateway(() => ({ ...input, routes: { "GET /health": { auth: "public", handler: "health" } } })),
      "test",
    );
    const none = compilePurgeSelector(bare);
    assert.deepEqual(none({ prefix: "/" }), {
      ok: true,
      purges: [],
      everything: true,
    });
    assert.match(problemOfWith(none, { prefix: "/v1/" }), /the cached routes are: none$/);
  });
});

describe("tag templates", () => {
  it("reads a tag back unambiguously: a parameter runs to the separator after it, or to the end", () => {
    const parts = parseTagTemplate("a:{x}:b:{y}");
    assert.deepEqual(matchTag(parts, "a:1:b:2:3"), { x: "1", y: "2:3" });
    assert.equal(matchTag(parts, "a:1:c:2"), undefined);
    assert.equal(matchTag(parseTagTemplate("p:{x}:{x}"), "p:1:2"), undefined, "one parameter, one value");
    assert.deepEqual(matchTag(parseTagTemplate("p:{x}:{x}"), "p:1:1"), { x: "1" });
    assert.deepEqual(matchTag(parseTagTemplate("products"), "products"), {});
    assert.equal(matchTag(parseTagTemplate("products"), "products2"), undefined);
  });
});
