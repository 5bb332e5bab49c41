import { createHash } from "node:crypto";
import type { Identity } from "../auth/identity.ts";
import type { CacheScope } from "../config/cache.ts";

/**
 * Cache keys (docs/caching.md, "Key derivation"). Pure: a key is derived from the method, the route,
 * its path parameters, only the query parameters and headers the route names, the variant that
 * answers, and the identity scope; nothing else of the request can reach it. The canonical query and
 * headers come back with the key so that a miss sends the upstream exactly what was keyed.
 */

/** Bumped when the derivation changes, so old entries (in the shared table) are never read as new. */
const CACHE_KEY_VERSION = "k1";

/** What a route keys on: compiled once per route (`compileCacheKey`). */
export interface CacheKeySpec {
  /** The declared route key, `GET /things/{id}`. */
  routeKey: string;
  /** Query parameter names, as written (names are case-sensitive). */
  query: readonly string[];
  /** Header names; the route's own (version, canary) headers belong here too. */
  headers: readonly string[];
  scope: CacheScope;
}

/** The parts of a request a key may depend on. */
export interface CacheKeyRequest {
  method: string;
  pathParameters?: Record<string, string | undefined> | undefined;
  /** The query as the client sent it (payload 2.0 `rawQueryString`, no leading `?`). */
  rawQueryString?: string | undefined;
  /** The client's headers, in any casing. */
  headers: Record<string, string | undefined>;
  identity: Identity | undefined;
  /** Which target answers: the default, a version or the canary side (a canary splits callers). */
  variant?: string | undefined;
}

type UncacheableReason = "method" | "malformed-path" | "malformed-query" | "no-identity" | "no-tenant";

export type CacheKey =
  | {
      cacheable: true;
      /** `k1:` and the SHA-256 (base64url) of `material`. */
      id: string;
      routeKey: string;
      /** Path parameters, canonically encoded: what invalidation by parameter matches on. */
      params: Readonly<Record<string, string>>;
      /** The keyed query parameters only, canonically encoded: what a miss sends upstream. */
      query: string;
      /** The keyed headers only (lower-case names): the client headers a miss sends upstream. */
      headers: Readonly<Record<string, string>>;
      /** The unambiguous JSON the id hashes (for logs and tests; may hold the principal). */
      material: string;
    }
  | { cacheable: false; reason: UncacheableReason };

/** One query parameter: its decoded name and value (`null`: the name came without `=`). */
type QueryPair = readonly [name: string, value: string | null];

/**
 * Compiles a route's key derivation. Example:
 * `const keyOf = compileCacheKey({ routeKey: "GET /things/{id}", query: ["page"], headers: [], scope: "public" })`.
 */
export function compileCacheKey(spec: CacheKeySpec): (request: CacheKeyRequest) => CacheKey {
  const queryNames = [...new Set(spec.query)].sort(byCodeUnit);
  const keyedQuery = new Set(queryNames);
  const headerNames = [...new Set(spec.headers.map((name) => name.toLowerCase()))].sort(byCodeUnit);
  const keyedHeaders = new Set(headerNames);

  return function cacheKeyOf(request) {
    const method = request.method.toUpperCase();
    // A HEAD is answered from the GET entry (without its body): one key for both.
    if (method !== "GET" && method !== "HEAD") return { cacheable: false, reason: "method" };
    const scope = scopeOf(spec.scope, request.identity);
    if (typeof scope === "string") return { cacheable: false, reason: scope };
    const pairs = parseQuery(request.rawQueryString ?? "", keyedQuery);
    if (!pairs) return { cacheable: false, reason: "malformed-query" };

    const params = canonicalParams(request.pathParameters ?? {});
    if (!params) return { cacheable: false, reason: "malformed-path" };
    // Names in key order; one name's values in the order they came (upstreams differ on which wins).
    const query = queryNames.flatMap((name) => pairs.filter(([n]) => n === name));
    const headers = keyedHeaderValues(request.headers, keyedHeaders);
    const material = JSON.stringify([
      CACHE_KEY_VERSION,
      "GET",
      spec.routeKey,
      request.variant ?? "",
      Object.entries(params),
      query,
      headerNames.map((name) => [name, headers[name] ?? null]),
      scope,
    ]);
    return {
      cacheable: true,
      id: `${CACHE_KEY_VERSION}:${createHash("sha256").update(material).digest("base64url")}`,
      routeKey: spec.routeKey,
      params,
      query: query
        .map(([name, value]) =>
          value === null
            ? encodeURIComponent(name)
            : `${encodeURIComponent(name)}=${encodeURIComponent(value)}`,
        )
        .join("&"),
      headers,
      material,
    };
  };
}

/**
 * Path parameters sorted by name, each encoded once: API Gateway has decoded them already, so they
 * are never decoded again (`%2541` stays apart from `A`). Undefined for a value that is not text
 * (a lone surrogate cannot be encoded).
 */
function canonicalParams(parameters: Record<string, string | undefined>): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  const names = Object.keys(parameters).sort(byCodeUnit);
  for (const name of names) {
    const value = parameters[name];
    if (value === undefined) continue;
    try {
      out[name] = encodeURIComponent(value);
    } catch {
      return undefined; // URIError: a lone surrogate
    }
  }
  return out;
}

/**
 * The identity part of a key. Tenant entries are kept apart by auth type and issuer too: two
 * issuers (or an issuer and the API keys) may each have a tenant called `acme`. A principal is kept
 * with its auth type, since a JWT issuer's id may read like the API keys' `key:` prefix.
 */
function scopeOf(
  scope: CacheScope,
  identity: Identity | undefined,
): readonly string[] | "no-identity" | "no-tenant" {
  switch (scope) {
    case "public":
      return ["public"];
    case "tenant":
      if (!identity) return "no-identity";
      if (!identity.tenant) return "no-tenant";
      return ["tenant", identity.authType, identity.issuer ?? "", identity.tenant];
    case "principal":
      if (!identity || identity.authType === "public") return "no-identity";
      return ["principal", identity.authType, identity.principal];
  }
}

/**
 * The keyed parameters of a raw query, decoded once (`+` is a space); undefined when a keyed
 * parameter's value has a malformed escape (`%zz`: what it means is the upstream's guess).
 */
function parseQuery(raw: string, keyed: ReadonlySet<string>): QueryPair[] | undefined {
  const pairs: QueryPair[] = [];
  if (keyed.size === 0 || raw === "") return pairs;
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    const rawName = equals === -1 ? part : part.slice(0, equals);
    const name = decodeComponent(rawName);
    // A name that cannot be decoded is no keyed name: skipped and never sent, like any unkeyed one
    // (refusing the request instead would let anyone bypass the cache with `%zz`).
    if (name === undefined || !keyed.has(name)) continue;
    if (equals === -1) {
      pairs.push([name, null]);
      continue;
    }
    const value = decodeComponent(part.slice(equals + 1));
    if (value === undefined) return undefined;
    pairs.push([name, value]);
  }
  return pairs;
}

function decodeComponent(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return undefined;
  }
}

/**
 * The keyed headers, names lower-cased. Two spellings of one name (`Accept-Language` and
 * `accept-language`) are one field: their values are joined with ", " in the order they came, as
 * HTTP combines repeated fields. Values lose surrounding whitespace (RFC 9110 §5.5).
 */
function keyedHeaderValues(
  headers: Record<string, string | undefined>,
  keyed: ReadonlySet<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, rawValue] of Object.entries(headers)) {
    if (rawValue === undefined) continue;
    const name = rawName.toLowerCase();
    if (!keyed.has(name)) continue;
    const value = rawValue.replace(/^[ \t]+|[ \t]+$/g, "");
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}

const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
