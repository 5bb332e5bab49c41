import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Identity } from "#shared/auth/identity.ts";
import {
  type CacheKey,
  type CacheKeyRequest,
  type CacheKeySpec,
  compileCacheKey,
} from "#shared/cache/key.ts";

const spec = (overrides: Partial<CacheKeySpec> = {}): CacheKeySpec => ({
  routeKey: "GET /things/{id}",
  query: ["page", "sort"],
  headers: ["accept-language"],
  scope: "public",
  ...overrides,
});
const request = (overrides: Partial<CacheKeyRequest> = {}): CacheKeyRequest => ({
  method: "GET",
  pathParameters: { id: "42" },
  rawQueryString: "page=2&sort=name",
  headers: { "accept-language": "en", host: "api.example.com" },
  identity: undefined,
  ...overrides,
});
const alice: Identity = {
  principal: "idp:alice",
  authType: "jwt",
  plan: "free",
  scopes: [],
  tenant: "acme",
  issuer: "idp",
};
const bob: Identity = { ...alice, principal: "idp:bob" };

/** The key's id; fails the test when the request is not cacheable. */
function idOf(key: CacheKey): string {
  assert.ok(key.cacheable, `not cacheable: ${key.cacheable ? "" : key.reason}`);
  return key.id;
}

describe("cache key", () => {
  it("is stable for one request and names the route, parameters, keyed query and headers", () => {
    const keyOf = compileCacheKey(spec());
    const key = keyOf(request());
    assert.ok(key.cacheable);
    assert.equal(key.id, idOf(keyOf(request())));
    assert.match(key.id, /^k1:[A-Za-z0-9_-]{43}$/);
    assert.equal(key.routeKey, "GET /things/{id}");
    assert.deepEqual(key.params, { id: "42" });
    assert.equal(key.query, "page=2&sort=name");
    assert.deepEqual(key.headers, { "accept-language": "en" });
  });

  it("serves HEAD from the GET entry and refuses other methods", () => {
    const keyOf = compileCacheKey(spec());
    assert.equal(idOf(keyOf(request({ method: "HEAD" }))), idOf(keyOf(request())));
    assert.deepEqual(keyOf(request({ method: "POST" })), { cacheable: false, reason: "method" });
  });

  it("tells apart routes, path parameters, variants and keyed values", () => {
    const base = idOf(compileCacheKey(spec())(request()));
    const keyOf = compileCacheKey(spec());
    const others = [
      idOf(compileCacheKey(spec({ routeKey: "GET /other/{id}" }))(request())),
      idOf(keyOf(request({ pathParameters: { id: "43" } }))),
      idOf(keyOf(request({ variant: "canary" }))),
      idOf(keyOf(request({ rawQueryString: "page=3&sort=name" }))),
      idOf(keyOf(request({ headers: { "accept-language": "fr" } }))),
    ];
    assert.equal(new Set([base, ...others]).size, others.length + 1);
  });

  describe("web cache poisoning: unkeyed input never changes the key nor reaches the upstream", () => {
    const keyOf = compileCacheKey(spec());
    const base = keyOf(request());

    it("ignores X-Forwarded-Host, X-Original-URL, X-Rewrite-URL and other unkeyed headers", () => {
      const poisoned = keyOf(
        request({
          headers: {
            "accept-language": "en",
            "X-Forwarded-Host": "evil.example",
            "x-original-url": "/admin",
            "X-Rewrite-URL": "/admin",
            "x-forwarded-scheme": "http",
          },
        }),
      );
      assert.ok(poisoned.cacheable && base.cacheable);
      assert.equal(poisoned.id, base.id);
      assert.deepEqual(poisoned.headers, { "accept-language": "en" }, "only keyed headers are sent upstream");
    });

    it("reads a keyed header in any casing as one field, values trimmed", () => {
      const odd = keyOf(request({ headers: { "ACCEPT-Language": "  en\t" } }));
      assert.equal(idOf(odd), idOf(base));
      const twice = keyOf(request({ headers: { "Accept-Language": "en", "accept-language": "fr" } }));
      assert.ok(twice.cacheable);
      assert.deepEqual(twice.headers, { "accept-language": "en, fr" });
      assert.notEqual(twice.id, idOf(base), "a smuggled second value is keyed, not dropped");
    });

    it("ignores unkeyed query parameters, and query names in another case", () => {
      const poisoned = keyOf(
        request({ rawQueryString: "utm_source=x&page=2&PAGE=9&callback=alert&sort=name&%zz=1" }),
      );
      assert.ok(poisoned.cacheable);
      assert.equal(poisoned.id, idOf(base));
      assert.equal(poisoned.query, "page=2&sort=name");
    });

    it("keeps every value of a repeated parameter, in order", () => {
      const first = keyOf(request({ rawQueryString: "page=1&page=2" }));
      const swapped = keyOf(request({ rawQueryString: "page=2&page=1" }));
      const single = keyOf(request({ rawQueryString: "page=1" }));
      assert.ok(first.cacheable && swapped.cacheable);
      assert.equal(first.query, "page=1&page=2");
      assert.equal(new Set([first.id, swapped.id, idOf(single)]).size, 3);
    });

    it("encodes a value's delimiters, so a cloaked parameter stays inside its value", () => {
      const cloaked = keyOf(request({ rawQueryString: "page=1;sort=evil&sort=name" }));
      assert.ok(cloaked.cacheable);
      assert.equal(cloaked.query, "page=1%3Bsort%3Devil&sort=name");
    });

    it("tells an absent parameter from an empty one and from one without =", () => {
      const ids = ["", "page=", "page"].map((raw) => idOf(keyOf(request({ rawQueryString: raw }))));
      assert.equal(new Set(ids).size, 3);
    });

    it("refuses a keyed value with a malformed escape rather than guess what the upstream reads", () => {
      assert.deepEqual(keyOf(request({ rawQueryString: "page=%zz" })), {
        cacheable: false,
        reason: "malformed-query",
      });
    });

    it("refuses a path parameter that is not well-formed text", () => {
      assert.deepEqual(keyOf(request({ pathParameters: { id: "a\ud800" } })), {
        cacheable: false,
        reason: "malformed-path",
      });
    });

    it("never decodes a path parameter twice", () => {
      const literal = keyOf(request({ pathParameters: { id: "%41" } }));
      const plain = keyOf(request({ pathParameters: { id: "A" } }));
      assert.ok(literal.cacheable);
      assert.deepEqual(literal.params, { id: "%2541" });
      assert.notEqual(literal.id, idOf(plain));
    });
  });

  describe("identity scope", () => {
    it("gives principals A and B different entries, and the same entry each time", () => {
      const keyOf = compileCacheKey(spec({ scope: "principal" }));
      const a = idOf(keyOf(request({ identity: alice })));
      assert.equal(a, idOf(keyOf(request({ identity: alice }))));
      assert.notEqual(a, idOf(keyOf(request({ identity: bob }))));
    });

    it("keeps a JWT principal apart from an API key owner whose principal reads the same", () => {
      const keyOf = compileCacheKey(spec({ scope: "principal" }));
      const jwt: Identity = { ...alice, principal: "key:alice", issuer: "key" };
      const apiKey: Identity = { principal: "key:alice", authType: "apiKey", plan: "free", scopes: [] };
      assert.notEqual(idOf(keyOf(request({ identity: jwt }))), idOf(keyOf(request({ identity: apiKey }))));
    });

    it("shares a tenant's entry between its principals, not with the same tenant name of another issuer", () => {
      const keyOf = compileCacheKey(spec({ scope: "tenant" }));
      const a = idOf(keyOf(request({ identity: alice })));
      assert.equal(a, idOf(keyOf(request({ identity: bob }))));
      assert.notEqual(a, idOf(keyOf(request({ identity: { ...alice, issuer: "other" } }))));
      assert.notEqual(a, idOf(keyOf(request({ identity: { ...alice, tenant: "globex" } }))));
    });

    it("does not cache a caller without a tenant (tenant scope) or without an identity", () => {
      const { tenant: _, ...untenanted } = alice;
      assert.deepEqual(compileCacheKey(spec({ scope: "tenant" }))(request({ identity: untenanted })), {
        cacheable: false,
        reason: "no-tenant",
      });
      assert.deepEqual(compileCacheKey(spec({ scope: "principal" }))(request()), {
        cacheable: false,
        reason: "no-identity",
      });
    });

    it("gives every caller the same public entry", () => {
      const keyOf = compileCacheKey(spec({ scope: "public" }));
      assert.equal(idOf(keyOf(request({ identity: alice }))), idOf(keyOf(request({ identity: bob }))));
    });
  });

  describe("properties", () => {
    const keyOf = compileCacheKey(spec({ headers: ["accept-language", "x-tenant-view"] }));
    const value = fc.string({ maxLength: 20, unit: "grapheme" });
    const unkeyedName = fc
      .stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,20}$/)
      .filter((name) => !["accept-language", "x-tenant-view"].includes(name.toLowerCase()));

    it("unkeyed headers, in any number and casing, never change the key", () => {
      fc.assert(
        fc.property(fc.dictionary(unkeyedName, value, { maxKeys: 8 }), (extra) => {
          const headers = { ...extra, "accept-language": "en" };
          assert.equal(idOf(keyOf(request({ headers }))), idOf(keyOf(request())));
        }),
      );
    });

    it("a keyed header's name casing never changes the key", () => {
      const casing = fc.array(fc.boolean(), { minLength: 15, maxLength: 15 });
      fc.assert(
        fc.property(casing, value, (upper, text) => {
          const name = [..."accept-language"].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join("");
          assert.equal(
            idOf(keyOf(request({ headers: { [name]: text } }))),
            idOf(keyOf(request({ headers: { "accept-language": text } }))),
          );
        }),
      );
    });

    it("a keyed value percent-encoded any way (upper, lower hex, + for space) is one key", () => {
      const encodings = (text: string) => [
        encodeURIComponent(text),
        [...new TextEncoder().encode(text)].map((b) => `%${b.toString(16).padStart(2, "0")}`).join(""),
        [...new TextEncoder().encode(text)]
          .map((b) => `%${b.toString(16).padStart(2, "0").toUpperCase()}`)
          .join(""),
        encodeURIComponent(text).replaceAll("%20", "+"),
      ];
      fc.assert(
        fc.property(fc.string({ maxLength: 12, unit: "grapheme" }), (text) => {
          const ids = encodings(text).map((encoded) =>
            idOf(keyOf(request({ rawQueryString: `page=${encoded}` }))),
          );
          assert.equal(new Set(ids).size, 1);
        }),
      );
    });

    it("different keyed values, parameters or principals never share a key", () => {
      fc.assert(
        fc.property(value, value, (a, b) => {
          fc.pre(a !== b);
          const q = (text: string) => `page=${encodeURIComponent(text)}`;
          assert.notEqual(
            idOf(keyOf(request({ rawQueryString: q(a) }))),
            idOf(keyOf(request({ rawQueryString: q(b) }))),
          );
          assert.notEqual(
            idOf(keyOf(request({ pathParameters: { id: a } }))),
            idOf(keyOf(request({ pathParameters: { id: b } }))),
          );
          const byPrincipal = compileCacheKey(spec({ scope: "principal" }));
          assert.notEqual(
            idOf(byPrincipal(request({ identity: { ...alice, principal: a } }))),
            idOf(byPrincipal(request({ identity: { ...alice, principal: b } }))),
          );
        }),
      );
    });

    it("what a miss sends upstream parses back to the keyed pairs", () => {
      fc.assert(
        fc.property(
          fc.array(fc.tuple(fc.constantFrom("page", "sort", "other"), value), { maxLength: 6 }),
          (pairs) => {
            const raw = pairs.map(([n, v]) => `${n}=${encodeURIComponent(v)}`).join("&");
            const key = keyOf(request({ rawQueryString: raw }));
            assert.ok(key.cacheable);
            const sent = [...new URLSearchParams(key.query)];
            const keyed = ["page", "sort"].flatMap((name) => pairs.filter(([n]) => n === name));
            assert.deepEqual(sent, keyed);
            assert.equal(idOf(keyOf(request({ rawQueryString: key.query }))), key.id, "and keys the same");
          },
        ),
      );
    });
  });
});
