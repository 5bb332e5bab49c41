import { type Identity, optionalIdentity } from "../auth/identity.ts";
import { cachedAnswerHeaders, notModified } from "../cache/http-semantics.ts";
import type { CacheKey } from "../cache/key.ts";
import type { CacheableAnswer, Served, ServeRequest } from "../cache/response-cache.ts";
import type { CacheScope } from "../config/cache.ts";
import { BadGatewayError, BadRequestError, HttpError } from "../errors.ts";
import type { GatehouseContext, HttpEvent, HttpHandler, HttpResult } from "../http.ts";
import { parsedBody } from "../middleware/request-body.ts";
import { recordCount, recordUpstream } from "../middleware/request-metrics.ts";
import { compressForClient } from "../middleware/response-compression.ts";
import { mapsResponseBody, useResponseMap } from "../middleware/response-transform.ts";
import {
  type AcceptedCodings,
  acceptedCodings,
  accepts,
  addVary,
  BodyDecodeError,
  canDecode,
  contentCodings,
  decodeBody,
  GATEWAY_CODINGS,
  recodedHeaders,
  TEXT_MEDIA,
  upstreamAcceptEncoding,
} from "../upstream/encoding.ts";
import {
  clientHeaders,
  clientResponseHeaders,
  type ForwardingContext,
  upstreamRequestHeaders,
} from "../upstream/forwarding.ts";
import {
  refusedByOpenCircuit,
  type UpstreamClient,
  type UpstreamRequest,
  type UpstreamResponse,
} from "../upstream/http-client.ts";
import { mapHeaders, mapQuery, mapRequestBody, onCanary } from "../upstream/transform.ts";
import { runAggregate } from "./aggregate.ts";
import type {
  AggregatePlan,
  CompiledRoute,
  CompiledTarget,
  GatewayTable,
  ProxyPlan,
  RouteCache,
} from "./compile.ts";

/** What every upstream call of the gateway shares: the compiled table's settings and the scheme. */
export interface CallSettings extends Pick<GatewayTable, "versionHeader" | "compression" | "trustedProxy"> {
  /** The scheme clients reach the gateway by: `https` on API Gateway, `http` on the local stack. */
  proto: "http" | "https";
}

/**
 * One request's upstream work, prepared: `fetch` calls the upstream(s) and returns the answer as the
 * cache stores it (status, the headers the client may get, the body in the upstream's coding);
 * `toClient` turns such an answer, fetched now or read from the cache, into this client's response
 * (decoded or compressed for its `Accept-Encoding`). `toClient` never changes the answer it is given:
 * a cached answer is shared.
 */
interface PreparedCall {
  fetch(): Promise<CacheableAnswer>;
  toClient(answer: CacheableAnswer): HttpResult;
}

/** Which target answers a proxied request, and the variant a cache key holds for it. */
export interface ChosenTarget {
  target: CompiledTarget;
  /** `default`, `version:<name>` or `canary`: a version and a canary side are answers of their own. */
  variant: string;
}

/** What the cache step hands the handler of a cached route (on the context, see shared/http.ts). */
export interface CacheLookup {
  /** The target the step chose before keying (the key holds its variant); none on an aggregate. */
  chosen?: ChosenTarget | undefined;
  /** The request's key; undefined when the request is not cacheable (`X-Cache: bypass`). */
  key?: Extract<CacheKey, { cacheable: true }> | undefined;
  /** A client's `max-age=0` or `no-cache` from a caller with the `cache:invalidate` scope. */
  revalidate: boolean;
  /** The handler serves through this; it sets `served` and `refresh` for the step's response side. */
  serve?: ((request: Omit<ServeRequest, "policy" | "keyedHeaders">) => Promise<Served>) | undefined;
  served?: Served | undefined;
}

/**
 * The handler of one route (the last link of its chain): its proxy call or its aggregate. On a cached
 * route the cache step has put a `CacheLookup` on the context: with a key, the answer comes through
 * the cache (shared/gateway/cache-step.ts says how it is served); without one, straight through.
 */
export function routeHandler(route: CompiledRoute, settings: CallSettings): HttpHandler {
  const plan = route.plan;
  const prepare =
    plan.kind === "proxy"
      ? proxyCall(route.key, plan, settings, route.cache)
      : aggregateCall(plan, settings, route.cache);
  return async (event, context) => {
    const lookup = context.cacheLookup;
    const call = prepare(event, context, lookup);
    if (!lookup?.key || !lookup.serve) return call.toClient(await call.fetch());
    return servedResponse(event, context, lookup, call);
  };
}

/** Prepares one request's call; `lookup` is the cache step's decision on a cached route. */
type Prepare = (event: HttpEvent, context: GatehouseContext, lookup: CacheLookup | undefined) => PreparedCall;

/**
 * A cached route's answer: served by the cache (fresh, stale or fetched now), then for this client:
 * a 304 when `If-None-Match` matches the served entry's tag, no body on a HEAD, and `X-Cache` with
 * `Age` on anything read from the cache.
 */
async function servedResponse(
  event: HttpEvent,
  context: GatehouseContext,
  lookup: CacheLookup,
  call: PreparedCall,
): Promise<HttpResult> {
  const method = event.requestContext.http.method.toUpperCase();
  const serve = lookup.serve as NonNullable<CacheLookup["serve"]>;
  const served = await serve({
    key: lookup.key as NonNullable<CacheLookup["key"]>,
    method,
    fetch: () => call.fetch(),
    // An answer a tier would not keep (past its entry size, or DynamoDB's 400 KB item): counted per route.
    onEvent: (cacheEvent) => {
      if (cacheEvent.type === "too-large") recordCount(context, "CacheTooLarge", 1);
    },
    ...(lookup.revalidate ? { revalidate: true } : {}),
  });
  lookup.served = served;
  if (served.status !== "miss") {
    recordCount(context, "CacheMiss", 0);
    recordCount(context, served.status === "hit" ? "CacheHit" : "CacheStale", 1);
  }
  const fromCache = served.status === "hit" || served.status === "stale";
  if (fromCache && served.etag && notModified(event.headers["if-none-match"], served.etag)) {
    return { statusCode: 304, headers: notModifiedHeaders(served), body: "" };
  }
  const result = call.toClient(served.answer);
  const headers = result.headers as Record<string, string>;
  // The tag a later If-None-Match is compared with (made from the body when the upstream sent none),
  // on every answer that is in the cache: the one just stored too.
  if (headers.etag === undefined && served.etag) headers.etag = served.etag;
  if (fromCache) Object.assign(headers, cachedAnswerHeaders({}, served.ageSeconds, served.status as "hit"));
  else headers["x-cache"] = "miss";
  if (method === "HEAD") {
    result.body = "";
    result.isBase64Encoded = false;
  }
  return result;
}

/** RFC 9110 §15.4.5: a 304 carries the headers a 200 would have that describe the entry. */
function notModifiedHeaders(served: Served): Record<string, string> {
  const stored = served.answer.headers;
  const headers: Record<string, string> = {};
  for (const name of ["cache-control", "content-location", "date", "expires", "vary"]) {
    const value = stored[name];
    if (value !== undefined) headers[name] = value;
  }
  headers.etag = served.etag as string;
  return cachedAnswerHeaders(headers, served.ageSeconds, served.status as "hit");
}

function forwardingOf(
  event: HttpEvent,
  context: GatehouseContext,
  settings: CallSettings,
): ForwardingContext & { headers: Record<string, string> } {
  return {
    headers: clientHeaders(event),
    identity: optionalIdentity(event),
    requestId: context.requestId,
    sourceIp: event.requestContext.http.sourceIp,
    proto: settings.proto,
    trusted: settings.trustedProxy,
  };
}

/**
 * A cached route's answer depends on its keyed headers (and only on them, since nothing else is
 * sent): say so to the caches downstream (browsers, CDNs), as the gateway's own cache keys on them.
 */
function varyOnKeyedHeaders(headers: Record<string, string>, cache: RouteCache): void {
  for (const name of cache.keyedHeaders) addVary(headers, name);
}

/** Client headers the gateway reads to rebuild the forwarding headers from its own view. */
const FORWARDING_INPUTS = ["host", "x-forwarded-for", "forwarded"] as const;

/**
 * What a cached route's miss forwards (docs/caching.md, "what is keyed is what is sent"): of the
 * client's headers only the keyed ones, plus what the gateway rebuilds its forwarding headers from;
 * and for a `public` entry no identity at all (no `x-gatehouse-*`, no `Authorization`), so the answer
 * cannot have been built from who asked. Unkeyed inputs (`X-Original-URL`, a cookie, any other
 * header) never reach the upstream, so they cannot change an entry.
 */
function keyedForwarding(
  forwarding: ForwardingContext & { headers: Record<string, string> },
  key: NonNullable<CacheLookup["key"]>,
  scope: CacheScope | undefined,
): ForwardingContext & { headers: Record<string, string> } {
  const headers: Record<string, string> = {};
  for (const name of FORWARDING_INPUTS) {
    const value = forwarding.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  Object.assign(headers, key.headers);
  if (scope === "public") return { ...forwarding, headers, identity: undefined };
  // A per-caller entry may still carry the caller's token to a target that forwards it.
  const authorization = forwarding.headers.authorization;
  return { ...forwarding, headers: authorization === undefined ? headers : { ...headers, authorization } };
}

/** An aggregate route: the calls in parallel, merged. */
function aggregateCall(plan: AggregatePlan, settings: CallSettings, cache: RouteCache | undefined): Prepare {
  return (event, context, lookup) => ({
    async fetch() {
      const forwarding = forwardingOf(event, context, settings);
      // The gateway reads every call's JSON itself; its merged answer is compressed on the way out.
      const headers = {
        ...upstreamRequestHeaders(
          lookup?.key ? keyedForwarding(forwarding, lookup.key, cache?.policy.scope) : forwarding,
        ),
        "accept-encoding": "identity",
      };
      const result = await runAggregate(plan, event.pathParameters ?? {}, headers, (call, request) =>
        timedUpstreamCall(context, call, request),
      );
      const merged = result.headers as Record<string, string>;
      if (cache) varyOnKeyedHeaders(merged, cache);
      return {
        status: result.statusCode ?? 200,
        headers: merged,
        body: Buffer.from(result.body ?? "", result.isBase64Encoded ? "base64" : "utf8"),
        // A partial merge (a call failed) is served, but never kept in place of a complete answer.
        ...(merged["x-gatehouse-complete"] === "false" ? { degraded: true } : {}),
      };
    },
    toClient(answer) {
      const textual = TEXT_MEDIA.test(answer.headers["content-type"] ?? "");
      return {
        statusCode: answer.status,
        headers: { ...answer.headers },
        body: textual ? answer.body.toString("utf8") : answer.body.toString("base64"),
        isBase64Encoded: !textual,
      };
    },
  });
}

/**
 * Which target answers a proxied request: the version the header asks for, else the caller's canary
 * side, else the default. An unknown version or a bad canary header is a 400.
 */
export function targetChooser(
  key: string,
  proxy: ProxyPlan,
  versionHeader: string,
): (event: HttpEvent, identity: Identity | undefined) => ChosenTarget {
  return (event, identity) => {
    const requested = event.headers[versionHeader];
    if (requested !== undefined) {
      const version = proxy.versions.get(requested);
      if (version) return { target: version, variant: `version:${requested}` };
      const known = [...proxy.versions.keys()];
      throw new BadRequestError(
        known.length > 0
          ? `Unknown ${versionHeader} ${JSON.stringify(requested)}; use ${known.join(", ")} or leave it out`
          : `This route has no versions; leave out ${versionHeader}`,
      );
    }
    const canary = proxy.canary;
    if (!canary) return { target: proxy.target, variant: "default" };
    const forced = canary.header === undefined ? undefined : event.headers[canary.header];
    if (forced !== undefined) {
      if (forced !== "always" && forced !== "never")
        throw new BadRequestError(`${canary.header} is "always" or "never"`);
      return forced === "always"
        ? { target: canary.target, variant: "canary" }
        : { target: proxy.target, variant: "default" };
    }
    const caller = identity?.principal ?? event.requestContext.http.sourceIp ?? "";
    return onCanary(key, caller, canary.weight)
      ? { target: canary.target, variant: "canary" }
      : { target: proxy.target, variant: "default" };
  };
}

/** A proxied route: the request to the chosen target, its answer back as the client should get it. */
function proxyCall(
  key: string,
  proxy: ProxyPlan,
  settings: CallSettings,
  cache: RouteCache | undefined,
): Prepare {
  const { compression } = settings;
  const chooseTarget = targetChooser(key, proxy, settings.versionHeader);

  return (event, context, lookup) => {
    const method = event.requestContext.http.method.toUpperCase();
    const forwarding = forwardingOf(event, context, settings);
    const chosen = (lookup?.chosen ?? chooseTarget(event, forwarding.identity)).target;
    const accepted = acceptedCodings(event.headers["accept-encoding"]);
    useResponseMap(context, chosen.response);
    return {
      async fetch() {
        const params = event.pathParameters ?? {};
        const path = chosen.rewrite(params);
        // A body is not keyed, so a cached route's miss sends none (it could shape a shared answer).
        const body = lookup?.key ? undefined : parsedBody(context);
        let upstreamBody = body?.raw; // the raw bytes the body checks passed, not a re-serialisation
        const sent = lookup?.key ? keyedForwarding(forwarding, lookup.key, cache?.policy.scope) : forwarding;
        const headers = upstreamRequestHeaders({
          ...sent,
          headers: mapHeaders(sent.headers, chosen.requestHeaders),
          forwardAuthorization:
            chosen.forwardAuthorization && !(lookup?.key && cache?.policy.scope === "public"),
        });
        if (chosen.requestBody && body && body.json !== undefined) {
          upstreamBody = mapRequestBody(chosen.requestBody, body.json);
          headers["content-type"] = "application/json";
        }
        // A cached answer is served to clients of any coding: ask for what the gateway can decode.
        headers["accept-encoding"] = upstreamAcceptEncoding(lookup?.key ? CACHE_CODINGS : accepted);
        const response = await timedUpstreamCall(context, chosen, {
          method,
          path,
          // What is keyed is what is sent: a cached route's miss sends only the keyed parameters.
          query: mapQuery(lookup?.key ? lookup.key.query : event.rawQueryString, chosen.requestQuery),
          headers,
          params: params as Record<string, string>,
          ...(upstreamBody ? { body: upstreamBody } : {}),
        });
        const responseHeaders = clientResponseHeaders(response.headers, chosen.passHeaders);
        // The answer depends on these request headers: caches must key on them.
        for (const name of proxy.varies) addVary(responseHeaders, name);
        if (cache) varyOnKeyedHeaders(responseHeaders, cache);
        return {
          status: response.status,
          headers: responseHeaders,
          body: response.body,
          ...(response.cookies.length > 0 ? { cookies: response.cookies } : {}),
        };
      },
      toClient(answer) {
        const responseHeaders = { ...answer.headers };
        const mapsBody = mapsResponseBody(chosen.response, answer.status, responseHeaders["content-type"]);
        let { body: bytes, coded } = clientBody(chosen, answer, responseHeaders, accepted, mapsBody);
        // Compressed here, from the bytes, unless a mapping will change the body (the compression step
        // does it then): turning a large body into a string only to turn it back costs more than zlib.
        const compressed =
          !coded && !mapsBody && compression
            ? compressForClient(
                bytes,
                { status: answer.status, method, headers: responseHeaders, accepted },
                compression,
              )
            : undefined;
        if (compressed) [bytes, coded] = [compressed, true];
        const textual = !coded && TEXT_MEDIA.test(responseHeaders["content-type"] ?? "");
        return {
          statusCode: answer.status,
          headers: responseHeaders,
          // Payload 2.0: API Gateway sends each entry as a Set-Cookie header of its own.
          ...(answer.cookies && answer.cookies.length > 0 ? { cookies: [...answer.cookies] } : {}),
          body: textual ? bytes.toString("utf8") : bytes.toString("base64"),
          isBase64Encoded: !textual,
        };
      },
    };
  };
}

/** Every coding the gateway decodes: what a cached route's miss asks the upstream for. */
const CACHE_CODINGS = acceptedCodings(GATEWAY_CODINGS.join(", "));

/**
 * The body the client gets, and whether it is still content-coded. An upstream's coding passes
 * through when the client accepts it (the compressed bytes are smaller in Lambda's answer, base64
 * included); it is decoded when the client does not, or when the route maps the body. A coding the
 * gateway cannot decode and the client does not accept is the upstream's fault: 502.
 */
function clientBody(
  target: { upstream: string; maxResponseBytes: number },
  response: { body: Buffer },
  headers: Record<string, string>,
  accepted: AcceptedCodings,
  mapsBody: boolean,
): { body: Buffer; coded: boolean } {
  const codings = contentCodings(headers["content-encoding"]);
  if (codings.length === 0) {
    delete headers["content-encoding"]; // "identity", if anything
    return { body: response.body, coded: false };
  }
  addVary(headers, "accept-encoding");
  const acceptable = codings.every((coding) => accepts(accepted, coding));
  if (response.body.byteLength === 0) {
    // A HEAD, 204 or 304: nothing to decode; the headers say what a GET would get.
    if (!acceptable) recodedHeaders(headers, undefined);
    return { body: response.body, coded: false };
  }
  if (!mapsBody && acceptable) return { body: response.body, coded: true };
  if (!canDecode(codings)) {
    throw new BadGatewayError(
      `The ${target.upstream} service sent a body in an encoding the client does not accept`,
      {
        cause: new Error(`content-encoding ${codings.join(", ")}`),
      },
    );
  }
  try {
    const body = decodeBody(response.body, codings, target.maxResponseBytes);
    recodedHeaders(headers, undefined);
    return { body, coded: false };
  } catch (error) {
    throw new BadGatewayError(
      error instanceof BodyDecodeError && error.tooLarge
        ? `The ${target.upstream} service sent a response that is too large`
        : `The ${target.upstream} service sent a body that does not match its content-encoding`,
      { cause: error },
    );
  }
}

/** The upstream call, timed for the request's metrics (by upstream and answering target). */
async function timedUpstreamCall(
  context: GatehouseContext,
  chosen: { upstream: string; client: UpstreamClient },
  request: UpstreamRequest,
): Promise<UpstreamResponse> {
  const began = performance.now();
  let response: UpstreamResponse | undefined;
  let sent = true;
  let circuitOpen = false;
  try {
    response = await chosen.client(context.trace ? { ...request, trace: context.trace } : request);
    return response;
  } catch (error) {
    // The client throws a 4XX only for a request it refused before sending: no upstream call to count.
    if (error instanceof HttpError && error.statusCode < 500) sent = false;
    circuitOpen = refusedByOpenCircuit(error);
    throw error;
  } finally {
    if (sent) {
      // 1 when this call (or another of an aggregate's) met only open circuits: the circuit's state,
      // as the requests that needed it saw it.
      recordCount(context, "CircuitOpen", circuitOpen || context.requestCounts?.CircuitOpen === 1 ? 1 : 0);
      recordUpstream(context, {
        upstream: chosen.upstream,
        target: response?.target ?? "none",
        ms: performance.now() - began,
        failed: response === undefined,
      });
    }
  }
}
