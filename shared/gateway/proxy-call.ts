import { type Identity, optionalIdentity } from "../auth/identity.ts";
import { BadGatewayError, BadRequestError, HttpError } from "../errors.ts";
import type { GatehouseContext, HttpEvent, HttpHandler, HttpResult } from "../http.ts";
import { parsedBody } from "../middleware/request-body.ts";
import { recordUpstream } from "../middleware/request-metrics.ts";
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
import type { UpstreamClient, UpstreamRequest, UpstreamResponse } from "../upstream/http-client.ts";
import { mapHeaders, mapQuery, mapRequestBody, onCanary } from "../upstream/transform.ts";
import { runAggregate } from "./aggregate.ts";
import type { AggregatePlan, CompiledRoute, CompiledTarget, GatewayTable, ProxyPlan } from "./compile.ts";

/** What every upstream call of the gateway shares: the compiled table's settings and the scheme. */
export interface CallSettings extends Pick<GatewayTable, "versionHeader" | "compression" | "trustedProxy"> {
  /** The scheme clients reach the gateway by: `https` on API Gateway, `http` on the local stack. */
  proto: "http" | "https";
}

/** The handler of one route (the last link of its chain): its proxy call or its aggregate. */
export function routeHandler(route: CompiledRoute, settings: CallSettings): HttpHandler {
  const plan = route.plan;
  return plan.kind === "proxy" ? proxyHandler(route.key, plan, settings) : aggregateHandler(plan, settings);
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

/** An aggregate route: the calls in parallel, merged. */
function aggregateHandler(plan: AggregatePlan, settings: CallSettings): HttpHandler {
  return async (event, context) => {
    // The gateway reads every call's JSON itself; its merged answer is compressed on the way out.
    const headers = {
      ...upstreamRequestHeaders(forwardingOf(event, context, settings)),
      "accept-encoding": "identity",
    };
    return runAggregate(plan, event.pathParameters ?? {}, headers, (call, request) =>
      timedUpstreamCall(context, call, request),
    );
  };
}

/** A proxied route: the request to the chosen target, its answer back as the client should get it. */
function proxyHandler(key: string, proxy: ProxyPlan, settings: CallSettings): HttpHandler {
  const { versionHeader, compression } = settings;
  /** Which target answers: the version the header asks for, else the caller's canary side, else the default. */
  const chooseTarget = (event: HttpEvent, identity: Identity | undefined): CompiledTarget => {
    const requested = event.headers[versionHeader];
    if (requested !== undefined) {
      const version = proxy.versions.get(requested);
      if (version) return version;
      const known = [...proxy.versions.keys()];
      throw new BadRequestError(
        known.length > 0
          ? `Unknown ${versionHeader} ${JSON.stringify(requested)}; use ${known.join(", ")} or leave it out`
          : `This route has no versions; leave out ${versionHeader}`,
      );
    }
    const canary = proxy.canary;
    if (!canary) return proxy.target;
    const forced = canary.header === undefined ? undefined : event.headers[canary.header];
    if (forced !== undefined) {
      if (forced !== "always" && forced !== "never")
        throw new BadRequestError(`${canary.header} is "always" or "never"`);
      return forced === "always" ? canary.target : proxy.target;
    }
    const caller = identity?.principal ?? event.requestContext.http.sourceIp ?? "";
    return onCanary(key, caller, canary.weight) ? canary.target : proxy.target;
  };

  return async (event, context): Promise<HttpResult> => {
    const method = event.requestContext.http.method.toUpperCase();
    const forwarding = forwardingOf(event, context, settings);
    const params = event.pathParameters ?? {};
    const chosen = chooseTarget(event, forwarding.identity);
    const path = chosen.rewrite(params);
    const body = parsedBody(context);
    let upstreamBody = body?.raw; // the raw bytes the body checks passed, not a re-serialisation
    const headers = upstreamRequestHeaders({
      ...forwarding,
      headers: mapHeaders(forwarding.headers, chosen.requestHeaders),
      forwardAuthorization: chosen.forwardAuthorization,
    });
    if (chosen.requestBody && body && body.json !== undefined) {
      upstreamBody = mapRequestBody(chosen.requestBody, body.json);
      headers["content-type"] = "application/json";
    }
    const accepted = acceptedCodings(event.headers["accept-encoding"]);
    headers["accept-encoding"] = upstreamAcceptEncoding(accepted);
    useResponseMap(context, chosen.response);
    const response = await timedUpstreamCall(context, chosen, {
      method,
      path,
      query: mapQuery(event.rawQueryString, chosen.requestQuery),
      headers,
      params: params as Record<string, string>,
      ...(upstreamBody ? { body: upstreamBody } : {}),
    });
    const responseHeaders = clientResponseHeaders(response.headers, chosen.passHeaders);
    // The answer depends on these request headers: caches must key on them.
    for (const name of proxy.varies) addVary(responseHeaders, name);
    const mapsBody = mapsResponseBody(chosen.response, response.status, responseHeaders["content-type"]);
    let { body: bytes, coded } = clientBody(chosen, response, responseHeaders, accepted, mapsBody);
    // Compressed here, from the bytes, unless a mapping will change the body (the compression step
    // does it then): turning a large body into a string only to turn it back costs more than zlib.
    const compressed =
      !coded && !mapsBody && compression
        ? compressForClient(
            bytes,
            { status: response.status, method, headers: responseHeaders, accepted },
            compression,
          )
        : undefined;
    if (compressed) [bytes, coded] = [compressed, true];
    const textual = !coded && TEXT_MEDIA.test(responseHeaders["content-type"] ?? "");
    return {
      statusCode: response.status,
      headers: responseHeaders,
      // Payload 2.0: API Gateway sends each entry as a Set-Cookie header of its own.
      ...(response.cookies.length > 0 ? { cookies: [...response.cookies] } : {}),
      body: textual ? bytes.toString("utf8") : bytes.toString("base64"),
      isBase64Encoded: !textual,
    };
  };
}

/**
 * The body the client gets, and whether it is still content-coded. An upstream's coding passes
 * through when the client accepts it (the compressed bytes are smaller in Lambda's answer, base64
 * included); it is decoded when the client does not, or when the route maps the body. A coding the
 * gateway cannot decode and the client does not accept is the upstream's fault: 502.
 */
function clientBody(
  target: { upstream: string; maxResponseBytes: number },
  response: UpstreamResponse,
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
  try {
    response = await chosen.client(request);
    return response;
  } catch (error) {
    // The client throws a 4XX only for a request it refused before sending: no upstream call to count.
    if (error instanceof HttpError && error.statusCode < 500) sent = false;
    throw error;
  } finally {
    if (sent) {
      recordUpstream(context, {
        upstream: chosen.upstream,
        target: response?.target ?? "none",
        ms: performance.now() - began,
        failed: response === undefined,
      });
    }
  }
}
