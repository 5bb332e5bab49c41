import { createHash } from "node:crypto";
import {
  ArityError,
  EmptyExpressionError,
  IncompleteExpressionError,
  LexerError,
  ParseError,
  search,
  UnknownFunctionError,
  VariadicArityError,
} from "@aws-lambda-powertools/jmespath";
import { BadGatewayError, BadRequestError } from "../errors.ts";

/**
 * Declarative request and response mapping for proxied routes, compiled once per container:
 * header and query maps (rename, then remove, then set), JMESPath body mapping (AWS Powertools'
 * JMESPath), status mapping, and the sticky canary assignment.
 */

export interface NameMap {
  rename: Record<string, string>;
  remove: readonly string[];
  set: Record<string, string>;
}

/** Applies a header map to lower-case headers; returns a new object. */
export function mapHeaders(
  headers: Readonly<Record<string, string>>,
  map: NameMap | undefined,
): Record<string, string> {
  if (!map) return { ...headers };
  const out: Record<string, string> = { ...headers };
  for (const [from, to] of Object.entries(map.rename)) {
    const value = out[from];
    if (value === undefined) continue;
    delete out[from];
    out[to] = value;
  }
  for (const name of map.remove) delete out[name];
  for (const [name, value] of Object.entries(map.set)) out[name] = value;
  return out;
}

/**
 * Applies a header map to an answer's headers and cookies. Payload 2.0 keeps each Set-Cookie apart from
 * the headers (the `cookies` array), so `set-cookie` in the map acts on the cookies: `remove` drops
 * them all and `set` replaces them with its one value; a rename of `set-cookie` moves them into that
 * header, folded with ", " (no longer cookies), and a rename onto it makes that header a cookie.
 */
export function mapResponseHeaders(
  headers: Readonly<Record<string, string>>,
  cookies: readonly string[],
  map: NameMap | undefined,
): { headers: Record<string, string>; cookies: string[] } {
  let outCookies = [...cookies];
  const out: Record<string, string> = { ...headers };
  if (!map) return { headers: out, cookies: outCookies };
  for (const [from, to] of Object.entries(map.rename)) {
    if (from === SET_COOKIE) {
      if (outCookies.length > 0) out[to] = outCookies.join(", ");
      outCookies = [];
      continue;
    }
    const value = out[from];
    if (value === undefined) continue;
    delete out[from];
    if (to === SET_COOKIE) outCookies.push(value);
    else out[to] = value;
  }
  for (const name of map.remove) {
    if (name === SET_COOKIE) outCookies = [];
    else delete out[name];
  }
  for (const [name, value] of Object.entries(map.set)) {
    if (name === SET_COOKIE) outCookies = [value];
    else out[name] = value;
  }
  return { headers: out, cookies: outCookies };
}
const SET_COOKIE = "set-cookie";

/**
 * Applies a query map to a raw query string. Without a map the raw string passes untouched (so its
 * exact encoding reaches the upstream); with one, it is re-encoded (`application/x-www-form-urlencoded`).
 */
export function mapQuery(rawQuery: string, map: NameMap | undefined): string {
  if (!map) return rawQuery;
  const params = new URLSearchParams(rawQuery);
  for (const [from, to] of Object.entries(map.rename)) {
    const values = params.getAll(from);
    if (values.length === 0) continue;
    params.delete(from);
    params.delete(to);
    for (const value of values) params.append(to, value);
  }
  for (const name of map.remove) params.delete(name);
  for (const [name, value] of Object.entries(map.set)) params.set(name, value);
  return params.toString();
}

/**
 * Why a JMESPath expression cannot be used, or undefined when it can. It is parsed by evaluating it
 * against `{}`: syntax errors (and unknown functions or wrong arities the probe reaches) are the
 * expression's fault; a type error on the empty probe document is not.
 */
export function jmespathProblem(expression: string): string | undefined {
  try {
    search(expression, {});
    return undefined;
  } catch (error) {
    const syntax =
      error instanceof LexerError ||
      error instanceof ParseError ||
      error instanceof IncompleteExpressionError ||
      error instanceof EmptyExpressionError ||
      error instanceof UnknownFunctionError ||
      error instanceof ArityError ||
      error instanceof VariadicArityError;
    return syntax ? (error as Error).message : undefined;
  }
}

/**
 * A JMESPath expression over JSON, parsed on its first use (Powertools caches the parse per
 * expression): the config check (`loadGateway`) has parsed it once already, so a cold start does not.
 */
export function compileJmespath(expression: string): (data: unknown) => unknown {
  return (data) => search(expression, data as Parameters<typeof search>[1]);
}

/** Maps a client's JSON body for the upstream; a body the mapping cannot take is the client's 400. */
export function mapRequestBody(mapping: (data: unknown) => unknown, json: unknown): Buffer {
  let mapped: unknown;
  try {
    mapped = mapping(json);
  } catch (error) {
    throw new BadRequestError("The body does not have the shape this route maps", { cause: error });
  }
  return Buffer.from(JSON.stringify(mapped ?? null));
}

/** Maps an upstream's JSON body for the client; an upstream body the mapping cannot take is a 502. */
export function mapResponseBody(mapping: (data: unknown) => unknown, body: string, upstream: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    throw new BadGatewayError(`The ${upstream} service sent a body that is not JSON`, { cause: error });
  }
  try {
    return JSON.stringify(mapping(parsed) ?? null);
  } catch (error) {
    throw new BadGatewayError(`The ${upstream} service sent a body this route cannot map`, { cause: error });
  }
}

/** Buckets per percent point: weights are honoured to 0.01 %. */
const BUCKETS = 10_000;

/**
 * Whether a caller is on the canary. The caller's bucket is a hash of the route and the caller, so it
 * is the same in every container and across deploys; a caller is on the canary when its bucket is
 * under the weight, so raising the weight only ever moves callers onto the canary.
 */
export function onCanary(routeKey: string, caller: string, weightPercent: number): boolean {
  if (weightPercent <= 0) return false;
  if (weightPercent >= 100) return true;
  return canaryBucket(routeKey, caller) < Math.round(weightPercent * (BUCKETS / 100));
}

export function canaryBucket(routeKey: string, caller: string): number {
  const digest = createHash("sha256").update(routeKey).update("\0").update(caller).digest();
  return digest.readUInt32BE(0) % BUCKETS;
}
