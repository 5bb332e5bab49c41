import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Identity } from "#shared/auth/identity.ts";
import { type CacheKey, compileCacheKey } from "#shared/cache/key.ts";
import { createMemoryTier } from "#shared/cache/memory.ts";
import {
  type CacheableAnswer,
  type CacheEvent,
  createResponseCache,
  type ServeRequest,
} from "#shared/cache/response-cache.ts";
import { DEFAULT_CACHE_STATUSES } from "#shared/config/cache.ts";
import type { CachePolicy } from "#shared/config/derive.ts";

const T0 = Date.UTC(2026, 10, 30, 9, 0, 0);
const policy: CachePolicy = {
  ttlSeconds: 60,
  statuses: DEFAULT_CACHE_STATUSES,
  respectUpstreamCacheControl: false,
  staleWhileRevalidateSeconds: 0,
  staleIfErrorSeconds: 0,
  scope: "public",
  key: { query: [], headers: [] },
};

const keyOf = compileCacheKey({ routeKey: "GET /things/{id}", query: [], headers: [], scope: "principal" });
const alice: Identity = { principal: "idp:alice", authType: "jwt", plan: "free", scopes: [] };
const bob: Identity = { ...alice, principal: "idp:bob" };
function keyFor(identity: Identity = alice): Extract<CacheKey, { cacheable: true }> {
  const key = keyOf({ method: "GET", pathParameters: { id: "1" }, headers: {}, identity });
  assert.ok(key.cacheable);
  return key;
}

const ok = (text: string, headers: Record<string, string> = {}): CacheableAnswer => ({
  status: 200,
  headers: { "content-type": "text/plain", ...headers },
  body: Buffer.from(text),
});

/** A cache over a real container tier, a clock the test moves, and the events it reported. */
function setup() {
  let now = T0;
  const events: CacheEvent["type"][] = [];
  const cache = createResponseCache({
    memory: createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 100_000, now: () => now }),
    now: () => now,
    onEvent: (event) => events.push(event.type),
  });
  /** An upstream that answers from `answers` in turn and counts its calls. */
  const upstream = (...answers: Array<CacheableAnswer | Error>) => {
    const state = { calls: 0 };
    const fetch = async () => {
      const answer = answers[Math.min(state.calls, answers.length - 1)];
      state.calls += 1;
      if (answer instanceof Error) throw answer;
      return answer as CacheableAnswer;
    };
    return { state, fetch };
  };
  const request = (fetch: ServeRequest["fetch"], overrides: Partial<ServeRequest> = {}): ServeRequest => ({
    key: keyFor(),
    policy,
    keyedHeaders: [],
    method: "GET",
    fetch,
    ...overrides,
  });
  return {
    cache,
    events,
    upstream,
    request,
    at(ms: number) {
      now = T0 + ms;
    },
  };
}

const text = (served: { answer: CacheableAnswer }) => served.answer.body.toString();

describe("response cache", () => {
  it("answers a miss from the upstream, then hits with its age, without calling again", async () => {
    const { cache, events, upstream, request, at } = setup();
    const { state, fetch } = upstream(ok("v1"));
    const first = await cache.serve(request(fetch));
    assert.deepEqual([first.status, text(first), first.ageSeconds], ["miss", "v1", 0]);
    at(30_000);
    const second = await cache.serve(request(fetch));
    assert.deepEqual([second.status, text(second), second.ageSeconds], ["hit", "v1", 30]);
    assert.match(second.etag ?? "", /^W\/"/);
    assert.equal(state.calls, 1);
    assert.deepEqual(events, ["miss", "hit"]);
  });

  it("never gives principal B the entry stored for principal A", async () => {
    const { cache, upstream, request } = setup();
    await cache.serve(request(upstream(ok("for alice")).fetch, { key: keyFor(alice) }));
    const forBob = await cache.serve(request(upstream(ok("for bob")).fetch, { key: keyFor(bob) }));
    assert.deepEqual([forBob.status, text(forBob)], ["miss", "for bob"]);
  });

  it("does not store an answer that sets a cookie: the next request asks again", async () => {
    const { cache, upstream, request } = setup();
    const { state, fetch } = upstream({ ...ok("private"), cookies: ["sid=1"] });
    await cache.serve(request(fetch));
    assert.equal((await cache.serve(request(fetch))).status, "miss");
    assert.equal(state.calls, 2);
  });

  it("coalesces concurrent misses of one key into one upstream call", async () => {
    const { cache, upstream, request } = setup();
    const { state, fetch } = upstream(ok("v1"));
    const served = await Promise.all([1, 2, 3, 4].map(() => cache.serve(request(fetch))));
    assert.equal(state.calls, 1);
    assert.deepEqual(served.map(text), ["v1", "v1", "v1", "v1"]);
  });

  it("a request whose table read outlasts another's whole call uses that call's answer, not a second call", async () => {
    // The bench's race: B's table read starts before A's write and ends after A's call is done.
    const memory = createMemoryTier({ maxBytes: 1_000_000, maxEntryBytes: 100_000, now: () => T0 });
    let releaseRead: () => void = () => {};
    const slowRead = new Promise<void>((resolve) => {
      releaseRead = resolve;
    });
    let reads = 0;
    const table = {
      get: async () => {
        reads += 1;
        if (reads === 2) await slowRead; // B's read
        return undefined;
      },
      set: async () => ({ stored: true as const, bytes: 1 }),
      delete: async () => {},
      purge: async () => 0,
    };
    const cache = createResponseCache({ memory, table, now: () => T0 });
    let calls = 0;
    const fetch = async () => {
      calls += 1;
      return ok("v1");
    };
    const serveRequest: ServeRequest = { key: keyFor(), policy, keyedHeaders: [], method: "GET", fetch };
    const a = cache.serve(serveRequest);
    const b = cache.serve(serveRequest);
    assert.equal((await a).status, "miss");
    releaseRead();
    const served = await b;
    assert.deepEqual([served.status, text(served), calls], ["hit", "v1", 1]);
  });

  it("inside stale-while-revalidate, serves the stale entry and refreshes it once", async () => {
    const { cache, events, upstream, request, at } = setup();
    const { state, fetch } = upstream(ok("v1"), ok("v2"));
    const swr = { ...policy, staleWhileRevalidateSeconds: 30 };
    await cache.serve(request(fetch, { policy: swr }));
    at(70_000);
    const stale = await cache.serve(request(fetch, { policy: swr }));
    assert.deepEqual([stale.status, text(stale), stale.ageSeconds], ["stale", "v1", 70]);
    await stale.refresh;
    const fresh = await cache.serve(request(fetch, { policy: swr }));
    assert.deepEqual([fresh.status, text(fresh), fresh.ageSeconds], ["hit", "v2", 0]);
    assert.equal(state.calls, 2);
    assert.deepEqual(events, ["miss", "stale", "hit"]);
  });

  it("inside stale-if-error, serves the stale entry when the upstream throws or answers 5XX", async () => {
    const { cache, upstream, request, at } = setup();
    const sie = { ...policy, staleIfErrorSeconds: 600 };
    await cache.serve(request(upstream(ok("last good")).fetch, { policy: sie }));
    at(120_000);
    const down = await cache.serve(request(upstream(new Error("ECONNREFUSED")).fetch, { policy: sie }));
    assert.deepEqual([down.status, text(down), down.ageSeconds], ["stale", "last good", 120]);
    const failing = await cache.serve(
      request(upstream({ status: 503, headers: {}, body: Buffer.from("") }).fetch, { policy: sie }),
    );
    assert.deepEqual([failing.status, text(failing)], ["stale", "last good"]);
    const back = await cache.serve(request(upstream(ok("new")).fetch, { policy: sie }));
    assert.deepEqual([back.status, text(back)], ["miss", "new"]);
  });

  it("past every stale window, passes the upstream's failure on", async () => {
    const { cache, upstream, request, at } = setup();
    const sie = { ...policy, staleIfErrorSeconds: 600 };
    await cache.serve(request(upstream(ok("old")).fetch, { policy: sie }));
    at(660_000);
    await assert.rejects(cache.serve(request(upstream(new Error("down")).fetch, { policy: sie })), /down/);
  });

  it("on revalidate, asks the upstream despite a fresh entry, and stores the new answer", async () => {
    const { cache, upstream, request } = setup();
    const { state, fetch } = upstream(ok("v1"), ok("v2"));
    await cache.serve(request(fetch));
    const refreshed = await cache.serve(request(fetch, { revalidate: true }));
    assert.deepEqual([refreshed.status, text(refreshed)], ["miss", "v2"]);
    assert.deepEqual(text(await cache.serve(request(fetch))), "v2");
    assert.equal(state.calls, 2);
  });

  it("does not store a HEAD's answer", async () => {
    const { cache, upstream, request } = setup();
    const { state, fetch } = upstream(ok(""));
    await cache.serve(request(fetch, { method: "HEAD" }));
    await cache.serve(request(fetch, { method: "HEAD" }));
    assert.equal(state.calls, 2);
  });

  it("purges an entry only when its parameters pass the filter, and counts what it dropped", async () => {
    const { cache, upstream, request } = setup();
    const { state, fetch } = upstream(ok("v1"), ok("v2"));
    await cache.serve(request(fetch));
    assert.equal(await cache.purge("GET /things/{id}", {}, (params) => params.id === "2"), 0);
    assert.equal((await cache.serve(request(fetch))).status, "hit");
    assert.equal(await cache.purge("GET /things/{id}", {}, (params) => params.id === "1"), 1);
    assert.equal((await cache.serve(request(fetch))).status, "miss");
    assert.equal(state.calls, 2);
  });
});
