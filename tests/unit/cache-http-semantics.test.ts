import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cachedAnswerHeaders,
  entityTag,
  notModified,
  parseCacheControl,
  storeDecision,
  type UpstreamAnswer,
} from "#shared/cache/http-semantics.ts";
import { DEFAULT_CACHE_STATUSES } from "#shared/config/cache.ts";

const policy = {
  statuses: DEFAULT_CACHE_STATUSES,
  ttlSeconds: 300,
  respectUpstreamCacheControl: true,
  staleWhileRevalidateSeconds: 0,
  staleIfErrorSeconds: 0,
};
const answer = (overrides: Partial<UpstreamAnswer> = {}): UpstreamAnswer => ({
  method: "GET",
  status: 200,
  headers: { "content-type": "application/json" },
  ...overrides,
});
const withHeaders = (headers: Record<string, string>) =>
  answer({ headers: { "content-type": "application/json", ...headers } });

describe("cache HTTP semantics", () => {
  describe("Cache-Control", () => {
    it("reads directives case-insensitively, unquotes values, and keeps the first of a duplicate", () => {
      assert.deepEqual(
        [...parseCacheControl('Max-Age=60, private="set-cookie, x-a", no-cache, max-age=5')],
        [
          ["max-age", "60"],
          ["private", "set-cookie, x-a"],
          ["no-cache", true],
        ],
      );
      assert.equal(parseCacheControl(undefined).size, 0);
    });
  });

  describe("what is stored", () => {
    it("stores a listed status for the route's TTL", () => {
      assert.deepEqual(storeDecision(answer(), policy, []), { store: true, ttlMs: 300_000 });
      assert.deepEqual(storeDecision(answer({ status: 404 }), policy, []), { store: true, ttlMs: 300_000 });
    });

    it("never stores a HEAD's answer, an unlisted status, or an answer that sets a cookie", () => {
      assert.deepEqual(storeDecision(answer({ method: "HEAD" }), policy, []), {
        store: false,
        reason: "method",
      });
      assert.deepEqual(storeDecision(answer({ status: 500 }), policy, []), {
        store: false,
        reason: "status",
      });
      assert.deepEqual(storeDecision(answer({ cookies: ["sid=1"] }), policy, []), {
        store: false,
        reason: "set-cookie",
      });
      assert.deepEqual(storeDecision(withHeaders({ "set-cookie": "sid=1" }), policy, []), {
        store: false,
        reason: "set-cookie",
      });
    });

    it("stores a Vary only on keyed headers and accept-encoding; never Vary: *", () => {
      const keyed = ["accept-language"];
      assert.equal(
        storeDecision(withHeaders({ vary: "Accept-Language, accept-encoding" }), policy, keyed).store,
        true,
      );
      assert.deepEqual(
        storeDecision(withHeaders({ vary: "accept-language, X-Forwarded-Host" }), policy, keyed),
        {
          store: false,
          reason: "vary",
        },
      );
      assert.deepEqual(storeDecision(withHeaders({ vary: "*" }), policy, keyed), {
        store: false,
        reason: "vary",
      });
    });

    it("with respectUpstreamCacheControl, honours no-store and private, and lets max-age only shorten", () => {
      assert.deepEqual(storeDecision(withHeaders({ "cache-control": "no-store" }), policy, []), {
        store: false,
        reason: "no-store",
      });
      assert.deepEqual(storeDecision(withHeaders({ "cache-control": "private, max-age=60" }), policy, []), {
        store: false,
        reason: "private",
      });
      assert.deepEqual(storeDecision(withHeaders({ "cache-control": "max-age=60" }), policy, []), {
        store: true,
        ttlMs: 60_000,
      });
      assert.deepEqual(storeDecision(withHeaders({ "cache-control": "max-age=86400" }), policy, []), {
        store: true,
        ttlMs: 300_000,
      });
      assert.deepEqual(
        storeDecision(withHeaders({ "cache-control": "max-age=600, s-maxage=30" }), policy, []),
        {
          store: true,
          ttlMs: 30_000,
        },
      );
    });

    it("stores no-cache or max-age=0 only when a stale window keeps it for something", () => {
      const header = withHeaders({ "cache-control": "no-cache" });
      assert.deepEqual(storeDecision(header, policy, []), { store: false, reason: "expires-at-once" });
      assert.deepEqual(storeDecision(header, { ...policy, staleIfErrorSeconds: 600 }, []), {
        store: true,
        ttlMs: 0,
      });
      assert.deepEqual(storeDecision(withHeaders({ "cache-control": "max-age=0" }), policy, []), {
        store: false,
        reason: "expires-at-once",
      });
    });

    it("ignores the upstream's Cache-Control when the route does not respect it", () => {
      const lax = { ...policy, respectUpstreamCacheControl: false };
      assert.deepEqual(storeDecision(withHeaders({ "cache-control": "private, max-age=1" }), lax, []), {
        store: true,
        ttlMs: 300_000,
      });
    });
  });

  describe("conditional requests", () => {
    it("keeps the upstream's ETag, else makes a weak one from the body", () => {
      assert.equal(entityTag({ etag: '"v7"' }, Buffer.from("x")), '"v7"');
      const made = entityTag({}, Buffer.from("x"));
      assert.match(made, /^W\/"[A-Za-z0-9_-]{27}"$/);
      assert.equal(made, entityTag({}, Buffer.from("x")));
      assert.notEqual(made, entityTag({}, Buffer.from("y")));
    });

    it("answers 304 when If-None-Match names the tag (weak comparison) or is *", () => {
      assert.equal(notModified('"a"', '"a"'), true);
      assert.equal(notModified('W/"a"', '"a"'), true);
      assert.equal(notModified('"b", W/"a"', 'W/"a"'), true);
      assert.equal(notModified("*", '"a"'), true);
      assert.equal(notModified('"b"', '"a"'), false);
      assert.equal(notModified(undefined, '"a"'), false);
      assert.equal(notModified("a", '"a"'), false, "an unquoted tag is not a tag");
    });
  });

  it("marks a served entry with Age and X-Cache", () => {
    assert.deepEqual(cachedAnswerHeaders({ "content-type": "text/plain" }, 42, "stale"), {
      "content-type": "text/plain",
      age: "42",
      "x-cache": "stale",
    });
  });
});
