import * as v from "valibot";
import { TAG_SEPARATORS, TAG_TEMPLATE, tagTemplateProblems } from "../cache/tags.ts";
import { CACHEABLE_METHODS, methodOf, routeCachePolicy } from "./derive.ts";
import { type ConfigProblem, described, headerName, int, strict } from "./fields.ts";
import type { GatewayConfig } from "./gateway.ts";

/**
 * Cache: response caching for proxied and aggregate GET routes (docs/caching.md). A stage-wide
 * `cache` gives the defaults and the container tier's size; a route caches only when it says `cache`.
 */

/** Statuses a route may cache: final answers that do not depend on the caller's credentials or rate. */
const CACHEABLE_STATUSES = [200, 203, 204, 300, 301, 302, 307, 308, 404, 405, 410, 414, 501] as const;
/** RFC 9110 §15.1's heuristically cacheable statuses, less the ones Gatehouse does not cache (206, 405, 414, 501). */
export const DEFAULT_CACHE_STATUSES = [200, 203, 204, 300, 301, 404, 410];
const CACHE_SCOPES = ["public", "tenant", "principal"] as const;
export type CacheScope = (typeof CACHE_SCOPES)[number];

const MiB = 1_048_576;
const STALE_MAX_SECONDS = 86_400;
const WRITE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Credentials and the gateway's identity headers: identity belongs in `scope`, never in the key. */
const IDENTITY_HEADER = /^(authorization|proxy-authorization|x-api-key|cookie|x-gatehouse-.*)$/;
const keyHeader = v.pipe(
  headerName,
  v.check(
    (name) => !IDENTITY_HEADER.test(name),
    'credentials and the gateway\'s identity headers are not key material; remove it and say scope: "principal" (or "tenant")',
  ),
);
const keyQuery = v.pipe(
  v.string(),
  v.minLength(1, "a query parameter name is not empty"),
  v.maxLength(128, "a query parameter name is at most 128 characters"),
);
const statusCode = v.pipe(
  v.number(),
  v.check(
    (status) => (CACHEABLE_STATUSES as readonly number[]).includes(status),
    `a cacheable status is one of ${CACHEABLE_STATUSES.join(", ")} (206 ranges, 304, and answers about the caller such as 401, 403 and 429 are never cached)`,
  ),
);

const ttlSeconds = (text: string) => described(int(0, 3_600), text);
const statuses = v.pipe(v.array(statusCode), v.minLength(1, "list at least one status, or remove cache"));
const staleSeconds = int(0, STALE_MAX_SECONDS);

const POLICY_TEXT = {
  ttlSeconds:
    "Seconds an answer is fresh (0 to 3600). 0 keeps nothing fresh: with `staleIfErrorSeconds` the last good answer is still kept for outages.",
  statuses: "Upstream statuses that are stored.",
  respectUpstreamCacheControl:
    "Honour the upstream's `Cache-Control`: `no-store` and `private` are not stored; `s-maxage`, else `max-age`, shortens the TTL (never lengthens it).",
  staleWhileRevalidateSeconds:
    "Seconds past the TTL an entry is still served (`X-Cache: stale`) while one call refreshes it.",
  staleIfErrorSeconds:
    "Seconds past the TTL an entry is served (`X-Cache: stale`) when the upstream fails, times out or its circuit is open.",
};

const CacheDefaultsSchema = strict("cache.defaults", {
  ttlSeconds: described(v.optional(int(0, 3_600), 60), POLICY_TEXT.ttlSeconds),
  statuses: described(v.optional(statuses, DEFAULT_CACHE_STATUSES), POLICY_TEXT.statuses),
  respectUpstreamCacheControl: described(
    v.optional(v.boolean(), false),
    POLICY_TEXT.respectUpstreamCacheControl,
  ),
  staleWhileRevalidateSeconds: described(
    v.optional(staleSeconds, 0),
    POLICY_TEXT.staleWhileRevalidateSeconds,
  ),
  staleIfErrorSeconds: described(v.optional(staleSeconds, 0), POLICY_TEXT.staleIfErrorSeconds),
});

/** The stage-wide `cache` section. */
export const CacheSchema = described(
  v.optional(
    strict("cache", {
      enabled: described(
        v.optional(v.boolean(), true),
        "`false` turns every route's cache off for this stage (they answer `X-Cache: bypass`).",
      ),
      defaults: described(
        v.optional(CacheDefaultsSchema, {}),
        "What a route's `cache` uses for a field it leaves out. A default never turns caching on: a route caches only when it says `cache`.",
      ),
      memory: described(
        v.optional(
          strict("cache.memory", {
            maxBytes: described(
              v.optional(int(0, 1_024 * MiB), 16 * MiB),
              "Bytes the container tier holds (bodies, headers and keys); the least recently used go first. 0 turns the tier off.",
            ),
            maxEntryBytes: described(
              v.optional(int(1, 64 * MiB), MiB),
              "The largest answer the container tier keeps.",
            ),
            purgeCheckSeconds: described(
              v.optional(int(1, 3_600), 5),
              "Seconds a container may go on serving, from memory, an entry purged elsewhere (by `DELETE /admin/cache`, the CLI or another container's write route): it reads the purge record at most this often, one read each time, and only while it serves cached routes.",
            ),
          }),
          {},
        ),
        "The in-container tier: an LRU bounded by bytes, per container.",
      ),
    }),
    {},
  ),
  "Response caching: stage-wide defaults and the container tier (docs/caching.md).",
);

/** A route's `cache`. A GET or HEAD route says how it is cached; a write route only what it invalidates. */
export const RouteCacheSchema = strict("cache", {
  ttlSeconds: v.optional(ttlSeconds(`${POLICY_TEXT.ttlSeconds} Default \`cache.defaults.ttlSeconds\`.`)),
  key: described(
    v.optional(
      strict("cache.key", {
        query: described(
          v.optional(v.pipe(v.array(keyQuery), v.maxLength(32, "at most 32 query parameters")), []),
          "Query parameters the answer depends on; every other one is ignored and not sent upstream.",
        ),
        headers: described(
          v.optional(v.pipe(v.array(keyHeader), v.maxLength(16, "at most 16 headers")), []),
          "Request headers (lower case) the answer depends on; the client's other headers are not sent upstream. The version and canary headers are keyed anyway.",
        ),
      }),
      {},
    ),
    "What besides the method, route and path parameters tells answers apart.",
  ),
  scope: described(
    v.optional(v.picklist(CACHE_SCOPES, 'scope is "public", "tenant" or "principal"')),
    "Who shares an entry: `public` (everyone), `tenant` (callers of one tenant; a caller without one is not cached) or `principal` (one caller). Default: `public` on a public route, `principal` behind an authorizer.",
  ),
  sameForEveryCaller: described(
    v.optional(v.literal(true, "sameForEveryCaller is true or left out")),
    'Required with `scope: "public"` on a route behind an authorizer: states that the answer does not depend on who calls. The upstream is then asked without the identity headers and `Authorization`.',
  ),
  statuses: described(v.optional(statuses), `${POLICY_TEXT.statuses} Default \`cache.defaults.statuses\`.`),
  respectUpstreamCacheControl: described(
    v.optional(v.boolean()),
    `${POLICY_TEXT.respectUpstreamCacheControl} Default \`cache.defaults.respectUpstreamCacheControl\`.`,
  ),
  staleWhileRevalidateSeconds: described(
    v.optional(staleSeconds),
    `${POLICY_TEXT.staleWhileRevalidateSeconds} Default \`cache.defaults.staleWhileRevalidateSeconds\`.`,
  ),
  staleIfErrorSeconds: described(
    v.optional(staleSeconds),
    `${POLICY_TEXT.staleIfErrorSeconds} Default \`cache.defaults.staleIfErrorSeconds\`.`,
  ),
  tags: described(
    v.optional(
      v.pipe(
        v.array(
          v.pipe(
            v.string(),
            v.maxLength(128, "a tag is at most 128 characters"),
            v.regex(
              TAG_TEMPLATE,
              `a tag is letters, digits, . _ ~ - ! * ' ( ), the separators ${TAG_SEPARATORS.split("").join(" ")} and {param}, such as "products" or "product:{id}"; percent-encode anything else`,
            ),
          ),
        ),
        v.minLength(1, "list at least one tag, or remove tags"),
        v.maxLength(16, "at most 16 tags"),
      ),
    ),
    `Names for purging this route's entries together (a purge by tag, docs/caching.md): \`products\` tags every entry; \`product:{id}\` tags each entry with its \`{id}\`, which must be a path parameter of the route and be followed by a separator (${TAG_SEPARATORS.split("").join(" ")}) or the end of the tag.`,
  ),
  invalidates: described(
    v.optional(
      v.pipe(
        v.array(
          v.pipe(
            v.string(),
            v.regex(/^(GET|HEAD) \/\S*$/, 'a cached route\'s key, such as "GET /things/{id}"'),
          ),
        ),
        v.minLength(1, "list at least one cached route, or remove invalidates"),
      ),
    ),
    "On a write route (POST, PUT, PATCH, DELETE): the cached routes a 2XX answer purges, by the path parameters both routes have (else the whole route).",
  ),
});

type RouteCacheConfig = v.InferOutput<typeof RouteCacheSchema>;

/** The members a write route's cache may not have (everything but `invalidates`). */
const READ_MEMBERS = [
  "ttlSeconds",
  "key",
  "scope",
  "sameForEveryCaller",
  "statuses",
  "respectUpstreamCacheControl",
  "staleWhileRevalidateSeconds",
  "staleIfErrorSeconds",
  "tags",
] as const;

/** Path parameter names of a route key: `GET /files/{id}/{rest+}` → `["id", "rest"]`. */
const pathParamsOf = (routeKey: string) =>
  [...routeKey.matchAll(/\{([A-Za-z_][A-Za-z0-9_]*)\+?\}/g)].map((match) => match[1] as string);

/**
 * Only GET and HEAD routes cache; a write route only invalidates cached routes; the scope fits the
 * route's auth (`public` behind an authorizer needs `sameForEveryCaller`); a cache stores something.
 */
export function checkCache(config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [key, route] of Object.entries(config.routes)) {
    if (!("cache" in route) || !route.cache) continue;
    const cache = route.cache;
    const where = `routes.${key}.cache`;
    const method = methodOf(key);
    if (WRITE_METHODS.has(method)) {
      for (const member of READ_MEMBERS) {
        if (cache[member] !== undefined && !(member === "key" && isEmptyKey(cache.key))) {
          problems.push(
            `${where}.${member}: a ${method} route is never cached (only GET and HEAD are); a write route's cache says only invalidates, so remove ${member}`,
          );
        }
      }
      if (!cache.invalidates) {
        problems.push(
          `${where}: a ${method} route is never cached; say invalidates: ["GET /…"] to purge the routes it changes, or remove cache`,
        );
      }
      for (const [index, target] of (cache.invalidates ?? []).entries()) {
        if (!routeCachePolicy({ ...config, cache: { ...config.cache, enabled: true } }, target)) {
          problems.push(
            `${where}.invalidates.${index}: "${target}" is not a cached route; give it a cache or remove it from the list`,
          );
        }
      }
      continue;
    }
    if (!CACHEABLE_METHODS.has(method)) {
      problems.push(
        method === "ANY"
          ? `${where}: an ANY route also takes writes, and only GET and HEAD answers are cached; declare "GET ${key.slice(4)}" beside it with the cache`
          : `${where}: only GET and HEAD answers are cached; remove cache`,
      );
      continue;
    }
    if (cache.invalidates) {
      problems.push(
        `${where}.invalidates: a ${method} route is cached, it invalidates nothing; move invalidates to the write route that changes this one`,
      );
    }
    const isPublic = route.auth === "public";
    if (isPublic && (cache.scope === "tenant" || cache.scope === "principal")) {
      problems.push(
        `${where}.scope: a public route has no caller identity to keep entries apart by ${cache.scope}; use "public", or put the route behind auth`,
      );
    }
    if (!isPublic && cache.scope === "public" && cache.sameForEveryCaller !== true) {
      problems.push(
        `${where}.scope: "public" behind an authorizer gives every caller the first caller's answer; if the answer does not depend on who calls, add sameForEveryCaller: true, else use "tenant" or "principal"`,
      );
    }
    if (cache.sameForEveryCaller && (isPublic || cache.scope !== "public")) {
      problems.push(
        isPublic
          ? `${where}.sameForEveryCaller: a public route's entries are shared anyway; remove it`
          : `${where}.sameForEveryCaller: only means something with scope: "public"; remove it or say scope: "public"`,
      );
    }
    const params = pathParamsOf(key);
    for (const [index, tag] of (cache.tags ?? []).entries()) {
      for (const problem of tagTemplateProblems(tag, params))
        problems.push(`${where}.tags.${index}: ${problem}`);
    }
    const policy = routeCachePolicy({ ...config, cache: { ...config.cache, enabled: true } }, key);
    if (policy && policy.ttlSeconds === 0 && policy.staleIfErrorSeconds === 0) {
      problems.push(
        `${where}.ttlSeconds: 0 with no staleIfErrorSeconds stores nothing; raise ttlSeconds, set staleIfErrorSeconds, or remove cache`,
      );
    }
  }
  return problems;
}

const isEmptyKey = (key: RouteCacheConfig["key"]) => key.query.length === 0 && key.headers.length === 0;
