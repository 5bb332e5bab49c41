import { createHash } from "node:crypto";
import type { CachePolicy } from "../config/derive.ts";

/**
 * The HTTP rules of the cache (docs/caching.md, "HTTP semantics"), pure: whether an upstream answer
 * may be stored and for how long, `If-None-Match` against a stored `ETag`, and the headers a cached
 * answer carries. The chain step applies them; nothing here sends or stores.
 */

/** `X-Cache` values. */
export type CacheStatus = "hit" | "miss" | "stale" | "bypass";

/** Headers an answer may vary on without being per-caller: the gateway negotiates the coding per client. */
const GATEWAY_VARY = new Set(["accept-encoding"]);

/**
 * `Cache-Control` directives by lower-case name; a value without `=` is `true`, a quoted one unquoted.
 * Example: `parseCacheControl('max-age=60, private="set-cookie"')` → `{ "max-age": "60", private: "set-cookie" }`.
 */
export function parseCacheControl(value: string | undefined): Map<string, string | true> {
  const directives = new Map<string, string | true>();
  if (!value) return directives;
  for (const match of value.matchAll(/([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:=("(?:[^"\\]|\\.)*"|[^,\s]*))?/g)) {
    const name = (match[1] as string).toLowerCase();
    const raw = match[2];
    if (directives.has(name)) continue; // RFC 9111 §4.2.1: the first of a duplicated directive counts
    directives.set(
      name,
      raw === undefined ? true : raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw,
    );
  }
  return directives;
}

/** A delta-seconds value, or undefined when it is not one (RFC 9111 §1.2.2). */
const deltaSeconds = (value: string | true | undefined) =>
  typeof value === "string" && /^\d+$/.test(value) ? Number(value) : undefined;

export interface UpstreamAnswer {
  /** The request's method (a HEAD's answer has no body to store). */
  method: string;
  status: number;
  /** Response headers, lower-case names. */
  headers: Readonly<Record<string, string>>;
  /** Payload 2.0 cookies (each one a `Set-Cookie`). */
  cookies?: readonly string[] | undefined;
}

type NotStoredReason =
  | "method"
  | "status"
  | "set-cookie"
  | "vary"
  | "no-store"
  | "private"
  | "expires-at-once";

export type StoreDecision = { store: true; ttlMs: number } | { store: false; reason: NotStoredReason };

/**
 * Whether an upstream answer may be stored for a route, and its TTL. Never stored: a HEAD's answer, a
 * status the route does not list, any `Set-Cookie`, `Vary: *` or a `Vary` naming a header outside the
 * key (the entry would be handed to callers who sent something else). With
 * `respectUpstreamCacheControl`: `no-store` and `private` are not stored, `no-cache` is a TTL of 0,
 * and `s-maxage`, else `max-age`, can shorten the TTL but never lengthen it. An answer fresh for no
 * time and kept for no stale window is not stored.
 */
export function storeDecision(
  answer: UpstreamAnswer,
  policy: Pick<
    CachePolicy,
    | "statuses"
    | "ttlSeconds"
    | "respectUpstreamCacheControl"
    | "staleIfErrorSeconds"
    | "staleWhileRevalidateSeconds"
  >,
  keyedHeaders: readonly string[],
): StoreDecision {
  if (answer.method.toUpperCase() !== "GET") return { store: false, reason: "method" };
  if (!policy.statuses.includes(answer.status)) return { store: false, reason: "status" };
  if ((answer.cookies?.length ?? 0) > 0 || answer.headers["set-cookie"] !== undefined)
    return { store: false, reason: "set-cookie" };
  const keyed = new Set(keyedHeaders.map((name) => name.toLowerCase()));
  const vary = (answer.headers.vary ?? "")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  if (vary.some((name) => name === "*" || !(keyed.has(name) || GATEWAY_VARY.has(name))))
    return { store: false, reason: "vary" };

  let ttlSeconds = policy.ttlSeconds;
  if (policy.respectUpstreamCacheControl) {
    const directives = parseCacheControl(answer.headers["cache-control"]);
    if (directives.has("no-store")) return { store: false, reason: "no-store" };
    if (directives.has("private")) return { store: false, reason: "private" };
    if (directives.has("no-cache")) ttlSeconds = 0;
    const upstreamTtl = deltaSeconds(directives.get("s-maxage")) ?? deltaSeconds(directives.get("max-age"));
    if (upstreamTtl !== undefined) ttlSeconds = Math.min(ttlSeconds, upstreamTtl);
  }
  if (ttlSeconds === 0 && policy.staleIfErrorSeconds === 0 && policy.staleWhileRevalidateSeconds === 0)
    return { store: false, reason: "expires-at-once" };
  return { store: true, ttlMs: ttlSeconds * 1_000 };
}

/**
 * The entity tag a stored answer is known by: the upstream's own, else a weak one made from the body
 * (weak: the gateway may send the bytes in another content coding).
 */
export function entityTag(headers: Readonly<Record<string, string>>, body: Buffer): string {
  return headers.etag ?? `W/"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
}

/**
 * Whether `If-None-Match` matches a stored entity tag, so the answer is 304 (RFC 9110 §13.1.2: weak
 * comparison, `*` matches any). Example: `notModified('W/"a", "b"', '"a"')` → true.
 */
export function notModified(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  if (ifNoneMatch.trim() === "*") return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  const wanted = opaque(etag);
  return (ifNoneMatch.match(/(W\/)?"[^"]*"/g) ?? []).some((tag) => opaque(tag) === wanted);
}

/** The headers of an answer served from the cache: the stored ones, `Age` and `X-Cache`. */
export function cachedAnswerHeaders(
  stored: Readonly<Record<string, string>>,
  ageSeconds: number,
  status: Extract<CacheStatus, "hit" | "stale">,
): Record<string, string> {
  return { ...stored, age: String(ageSeconds), "x-cache": status };
}
