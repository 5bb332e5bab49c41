import * as v from "valibot";
import { routeCachePolicy } from "../config/derive.ts";
import type { GatewayConfig } from "../config/gateway.ts";
import { HttpError } from "../errors.ts";
import { compileRouter, type Method, parseTemplate } from "../routing/router.ts";
import type { ParamsFilter } from "./entry.ts";
import { matchTag, parseTagTemplate, type TagPart } from "./tags.ts";

/**
 * Purge selectors (docs/caching.md, "Purging"): what `DELETE /admin/cache` and `npm run cache -- purge`
 * are asked to purge, turned through the gateway config into purges by route and canonical path
 * parameters, or into one problem that says what is wrong. Pure: nothing is read or deleted here.
 *
 * Path parameters are compared as the key holds them (shared/cache/key.ts): the value API Gateway
 * hands the function (decoded), encoded once with `encodeURIComponent`.
 */

/** One purge request: exactly one of these. */
export type PurgeSelector =
  /** A cached route's entries: all of them, or those with these path parameter values (as decoded, `a b`, not `a%20b`). */
  | { route: string; params?: Readonly<Record<string, string>> }
  /** The entries of the one path a client asks for (`/v1/products/42`, percent-encoded as in a URL), every query and caller. */
  | { path: string }
  /** Every entry whose path starts with this (`/v1/products/`); `/` is everything cached. */
  | { prefix: string }
  /** The entries of the routes whose `cache.tags` fit this tag (`product:42`, `products`). */
  | { tag: string };

/** One route's entries to purge. */
export interface Purge {
  routeKey: string;
  /** Canonical path parameters an entry must have; `{}` for every entry of the route. */
  params: Readonly<Record<string, string>>;
  /**
   * A purge by prefix that takes only some of the route's entries: those whose path, rebuilt from
   * the route and their parameters in canonical form (each segment percent-encoded once), starts
   * with this.
   */
  pathPrefix?: string;
}

export type Selection =
  | {
      ok: true;
      purges: Purge[];
      /** The prefix `/`: every cached route, whole. */
      everything: boolean;
    }
  | { ok: false; field: string; message: string };

/** A field's problem, as the admin endpoint lists them (`errors`). */
export interface SelectorProblem {
  field: string;
  message: string;
}

const MAX_PATH = 2_048;
const SELECTORS = ["route", "path", "prefix", "tag"] as const;
const text = (field: string, max: number) =>
  v.pipe(
    v.string(`${field} is a string`),
    v.minLength(1, `${field} is not empty`),
    v.maxLength(max, `${field} is at most ${max} characters`),
  );
const paramName = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "a path parameter's name, such as id"),
);

const NOT_AN_OBJECT = 'a purge is an object such as { "path": "/v1/products/42" }';
const PurgeRequestSchema = v.strictObject(
  {
    route: v.optional(
      v.pipe(
        text("route", 512),
        v.regex(/^[A-Z]+ \/\S*$/, 'route is a route key such as "GET /v1/products/{id}"'),
      ),
    ),
    params: v.optional(
      v.pipe(
        v.record(paramName, text("a parameter's value", 1_024), "params is an object of names and values"),
        v.check((params) => Object.keys(params).length <= 16, "params names at most 16 parameters"),
      ),
    ),
    path: v.optional(text("path", MAX_PATH)),
    prefix: v.optional(text("prefix", MAX_PATH)),
    tag: v.optional(text("tag", 256)),
  },
  (issue) =>
    issue.expected === "never"
      ? `a purge takes route (with params), path, prefix or tag; remove ${String(issue.input)}`
      : NOT_AN_OBJECT,
);

/**
 * A purge request as sent (a JSON body, or the query made into one object), checked: exactly one
 * selector, `params` only with `route`. Every problem comes back, each naming its field.
 */
export function parsePurgeRequest(
  input: unknown,
): { ok: true; selector: PurgeSelector } | { ok: false; errors: SelectorProblem[] } {
  // valibot takes an array for an object; a purge is never one.
  if (typeof input !== "object" || input === null || Array.isArray(input))
    return { ok: false, errors: [{ field: "(request)", message: NOT_AN_OBJECT }] };
  const result = v.safeParse(PurgeRequestSchema, input, { abortEarly: false });
  if (!result.success) {
    return {
      ok: false,
      errors: result.issues.map((issue) => ({
        field: v.getDotPath(issue) ?? "(request)",
        message: issue.message,
      })),
    };
  }
  const request = result.output;
  const named = SELECTORS.filter((name) => request[name] !== undefined);
  const errors: SelectorProblem[] = [];
  if (named.length !== 1) {
    errors.push({
      field: named.length === 0 ? "(request)" : named.join(", "),
      message:
        named.length === 0
          ? "say what to purge: route (with params), path, prefix or tag"
          : `a purge takes exactly one of route, path, prefix or tag; it says ${named.join(" and ")}, so send one per request`,
    });
  }
  if (request.params !== undefined && request.route === undefined) {
    errors.push({ field: "params", message: "params narrows a route; send route with it, or remove params" });
  }
  if (errors.length > 0) return { ok: false, errors };
  const { route, params, path, prefix, tag } = request;
  const selector: PurgeSelector =
    route !== undefined
      ? { route, ...(params ? { params } : {}) }
      : path !== undefined
        ? { path }
        : prefix !== undefined
          ? { prefix }
          : { tag: tag as string };
  return { ok: true, selector };
}

/** A template segment of a cached route. */
type Segment = { literal: string } | { param: string; greedy: boolean };

interface CachedRoute {
  routeKey: string;
  segments: Segment[];
  params: string[];
  tags: { template: string; parts: TagPart[] }[];
}

/** A route key's path as segments, literals in canonical form: `GET /a/{id}` → `[{ literal: "a" }, { param: "id", greedy: false }]`. */
function templateSegments(routeKey: string): Segment[] {
  return parseTemplate(routeKey.slice(routeKey.indexOf(" ") + 1)).map((segment) => {
    const param = /^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$/.exec(segment);
    if (param) return { param: param[1] as string, greedy: param[2] === "+" };
    return { literal: canonicalSegment(segment) ?? segment };
  });
}

/** A path segment in canonical form: decoded once, encoded once. Undefined when it cannot be decoded. */
function canonicalSegment(segment: string): string | undefined {
  try {
    return encodeURIComponent(decodeURIComponent(segment));
  } catch {
    return undefined;
  }
}

/** A value as the key encodes it; undefined for text that cannot be encoded (a lone surrogate). */
function encodeValue(value: string): string | undefined {
  try {
    return encodeURIComponent(value);
  } catch {
    return undefined;
  }
}

/**
 * An entry's path, in canonical form, from its route and its stored (canonical) parameters; a
 * greedy parameter's slashes come back as separators. Undefined when a parameter is missing.
 */
function entryPath(
  segments: readonly Segment[],
  params: Readonly<Record<string, string>>,
): string | undefined {
  const parts: string[] = [];
  for (const segment of segments) {
    if ("literal" in segment) {
      parts.push(segment.literal);
      continue;
    }
    const value = params[segment.param];
    if (value === undefined) return undefined;
    parts.push(segment.greedy ? value.split("%2F").join("/") : value);
  }
  return `/${parts.join("/")}`;
}

/** Whether some path of the route could start with the canonical prefix (its segments, the last one maybe partial). */
function couldStartWith(segments: readonly Segment[], prefix: readonly string[]): boolean {
  for (const [index, wanted] of prefix.entries()) {
    const last = index === prefix.length - 1;
    const segment = segments[index];
    if (!segment) return false;
    if ("param" in segment) {
      if (segment.greedy) return true;
      // A parameter never binds an empty segment, but the prefix may stop before it.
      if (!last && wanted === "") return false;
      continue;
    }
    if (last ? !segment.literal.startsWith(wanted) : segment.literal !== wanted) return false;
  }
  return true;
}

/** The canonical text a prefix's entries must start with, or why the prefix is refused. */
function canonicalPrefix(prefix: string): { canonical: string; segments: string[] } | string {
  if (!prefix.startsWith("/")) return "a prefix is a path that starts with /, such as /v1/products/";
  if (/[?#]/.test(prefix))
    return "a prefix is a path without a query or fragment (every query's entries go with their path); remove from ? or #";
  const segments: string[] = [];
  for (const segment of prefix.slice(1).split("/")) {
    const canonical = canonicalSegment(segment);
    if (canonical === undefined)
      return "the prefix is not valid percent-encoding (such as %zz, or an escape cut short at the end)";
    segments.push(canonical);
  }
  return { canonical: `/${segments.join("/")}`, segments };
}

const listed = (names: readonly string[], none: string) => {
  if (names.length === 0) return none;
  return names.length <= 12
    ? names.join(", ")
    : `${names.slice(0, 12).join(", ")}, … (${names.length} in all)`;
};

/**
 * Compiles the config's cached routes, their templates and tags, once (at cold start); the result
 * turns one selector into purges. A route counts as cached when it says `cache`, even on a stage whose
 * `cache.enabled` is false: entries it stored before the switch are still in the table.
 *
 * Example: `compilePurgeSelector(gateway)({ path: "/v1/products/42" })` →
 * `{ ok: true, purges: [{ routeKey: "GET /v1/products/{id}", params: { id: "42" } }], … }`.
 */
export function compilePurgeSelector(gateway: Pick<GatewayConfig, "cache" | "routes">) {
  const config = { ...gateway, cache: { ...gateway.cache, enabled: true } };
  const cached = new Map<string, CachedRoute>();
  for (const [routeKey, route] of Object.entries(gateway.routes)) {
    const policy = routeCachePolicy(config, routeKey);
    if (!policy) continue;
    const segments = templateSegments(routeKey);
    const tags = "cache" in route && route.cache ? (route.cache.tags ?? []) : [];
    cached.set(routeKey, {
      routeKey,
      segments,
      params: segments.flatMap((segment) => ("param" in segment ? [segment.param] : [])),
      tags: tags.map((template) => ({ template, parts: parseTagTemplate(template) })),
    });
  }
  const cachedKeys = [...cached.keys()];
  const allTags = [
    ...new Set([...cached.values()].flatMap((route) => route.tags.map((tag) => tag.template))),
  ];
  // Every declared route: a path goes to the route API Gateway would give it, cached or not.
  const router = compileRouter(
    Object.keys(gateway.routes).map((key) => {
      const [method, path] = key.split(" ") as [Method | "ANY", string];
      return { method, path, value: key };
    }),
  );

  const problem = (field: string, message: string): Selection => ({ ok: false, field, message });
  const selected = (purges: Purge[], everything = false): Selection => ({ ok: true, purges, everything });

  function byRoute(routeKey: string, params: Readonly<Record<string, string>> = {}): Selection {
    const route = cached.get(routeKey);
    if (!route) {
      return problem(
        "route",
        Object.hasOwn(gateway.routes, routeKey)
          ? `${routeKey} is not a cached route (a GET or HEAD route that says cache); the cached routes are: ${listed(cachedKeys, "none")}`
          : `${routeKey} is not a route of this gateway; the cached routes are: ${listed(cachedKeys, "none")}`,
      );
    }
    const wanted: Record<string, string> = {};
    for (const [name, value] of Object.entries(params)) {
      if (!route.params.includes(name)) {
        return problem(
          `params.${name}`,
          `${routeKey} has no path parameter {${name}} (${route.params.length > 0 ? `it has ${route.params.map((p) => `{${p}}`).join(", ")}` : "it has none"}); name one of those, or leave params out to purge the whole route`,
        );
      }
      const encoded = encodeValue(value);
      if (encoded === undefined)
        return problem(`params.${name}`, "the value is not valid text (a lone surrogate)");
      wanted[name] = encoded;
    }
    return selected([{ routeKey, params: wanted }]);
  }

  function byPath(path: string): Selection {
    if (!path.startsWith("/")) return problem("path", "a path starts with /, such as /v1/products/42");
    if (/[?#]/.test(path))
      return problem(
        "path",
        "a path is purged with every query's entries; send it without the query or fragment (remove from ? or #)",
      );
    let match: ReturnType<typeof router>;
    try {
      match = router("GET", path);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return problem(
        "path",
        error.statusCode === 400
          ? "the path is not valid percent-encoding (such as %zz)"
          : error.statusCode === 405
            ? `no GET route answers ${path} (only ${error.headers.allow ?? "other methods"}), so nothing of it is cached`
            : `no route answers ${path}; the cached routes are: ${listed(cachedKeys, "none")}`,
      );
    }
    const routeKey = match.value;
    if (!cached.has(routeKey))
      return problem("path", `${path} is answered by ${routeKey}, which is not cached`);
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(match.params)) {
      const encoded = encodeValue(value);
      if (encoded === undefined) return problem("path", "the path is not valid text");
      params[name] = encoded;
    }
    return selected([{ routeKey, params }]);
  }

  function byPrefix(prefix: string): Selection {
    const canonical = canonicalPrefix(prefix);
    if (typeof canonical === "string") return problem("prefix", canonical);
    const everything = canonical.canonical === "/";
    const purges: Purge[] = [];
    for (const route of cached.values()) {
      if (everything) {
        purges.push({ routeKey: route.routeKey, params: {} });
        continue;
      }
      if (!couldStartWith(route.segments, canonical.segments)) continue;
      // Up to the first parameter every entry's path is the same: if that much already starts with
      // the prefix, the whole route goes; otherwise each entry's path is looked at.
      const firstParam = route.segments.findIndex((segment) => "param" in segment);
      const head =
        firstParam === -1
          ? entryPath(route.segments, {})
          : `/${route.segments
              .slice(0, firstParam)
              .map((segment) => `${(segment as { literal: string }).literal}/`)
              .join("")}`;
      purges.push(
        head?.startsWith(canonical.canonical)
          ? { routeKey: route.routeKey, params: {} }
          : { routeKey: route.routeKey, params: {}, pathPrefix: canonical.canonical },
      );
    }
    // `/` is never refused: with nothing cached it purges nothing, which is what was asked.
    if (purges.length === 0 && !everything)
      return problem(
        "prefix",
        `no cached route has a path starting with ${prefix}; the cached routes are: ${listed(cachedKeys, "none")}`,
      );
    return selected(purges, everything);
  }

  function byTag(tag: string): Selection {
    const purges = new Map<string, Purge>();
    for (const route of cached.values()) {
      for (const { parts } of route.tags) {
        const bound = matchTag(parts, tag);
        if (!bound) continue;
        const params: Record<string, string> = {};
        for (const [name, raw] of Object.entries(bound)) {
          const encoded = canonicalSegment(raw);
          if (encoded === undefined)
            return problem("tag", "the tag is not valid percent-encoding (such as %zz)");
          params[name] = encoded;
        }
        const purge = { routeKey: route.routeKey, params };
        purges.set(JSON.stringify([route.routeKey, Object.entries(params).sort()]), purge);
      }
    }
    if (purges.size === 0)
      return problem(
        "tag",
        `no cached route has the tag ${tag}; the routes' tags are: ${listed(allTags, "none")}`,
      );
    return selected([...purges.values()]);
  }

  return function selectPurges(selector: PurgeSelector): Selection {
    if ("route" in selector) return byRoute(selector.route, selector.params);
    if ("path" in selector) return byPath(selector.path);
    if ("prefix" in selector) return byPrefix(selector.prefix);
    return byTag(selector.tag);
  };
}

/** What a tier's purge takes for one route: parameters an entry must have, and a test on them. */
export interface TierPurge {
  routeKey: string;
  params: Readonly<Record<string, string>>;
  where?: ParamsFilter;
}

/**
 * The purges of a selection as the tiers take them, one per route (one query of the route's
 * entries, even when several purges name it: a tag that two of its templates fit).
 */
export function tierPurges(purges: readonly Purge[]): TierPurge[] {
  const byRoute = new Map<string, Purge[]>();
  for (const purge of purges) byRoute.set(purge.routeKey, [...(byRoute.get(purge.routeKey) ?? []), purge]);
  return [...byRoute].map(([routeKey, list]) => {
    const segments = templateSegments(routeKey);
    const test = (purge: Purge): ParamsFilter => {
      const wanted = Object.entries(purge.params);
      return (params) =>
        wanted.every(([name, value]) => params[name] === value) &&
        (purge.pathPrefix === undefined ||
          (entryPath(segments, params)?.startsWith(purge.pathPrefix) ?? false));
    };
    const [only] = list;
    if (list.length === 1 && only) {
      const prefix = only.pathPrefix;
      return prefix === undefined
        ? { routeKey, params: only.params }
        : {
            routeKey,
            params: only.params,
            where: (params) => entryPath(segments, params)?.startsWith(prefix) ?? false,
          };
    }
    const tests = list.map(test);
    return { routeKey, params: {}, where: (params) => tests.some((matches) => matches(params)) };
  });
}
