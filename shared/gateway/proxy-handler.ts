import { type Identity, optionalIdentity } from "../auth/identity.ts";
import { compileIpRules } from "../auth/ip-rules.ts";
import { limiterDocumentClient } from "../clients/dynamodb.ts";
import { env } from "../config/env.ts";
import { type GatewayConfig, type RouteConfig, routeWorstCaseMs } from "../config/gateway.ts";
import { BadGatewayError, BadRequestError, HttpError, MethodNotAllowedError } from "../errors.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import { type CorsRules, corsByRoute } from "../middleware/cors.ts";
import { deprecation } from "../middleware/deprecation.ts";
import { httpHandler } from "../middleware/http-handler.ts";
import { type BodyRules, compileBodySchema, parsedBody, requestBody } from "../middleware/request-body.ts";
import { recordUpstream, requestMetrics } from "../middleware/request-metrics.ts";
import { compressForClient, responseCompression } from "../middleware/response-compression.ts";
import { responseSize } from "../middleware/response-size.ts";
import { mapsResponseBody, responseTransform, useResponseMap } from "../middleware/response-transform.ts";
import { usageLimits } from "../middleware/usage-limits.ts";
import { createLimitPolicy } from "../quota/limit-policy.ts";
import { createLimiter, type Limiter } from "../quota/limiter.ts";
import { createLocalLimiter } from "../quota/local-limiter.ts";
import { createMetering, type Metering } from "../quota/metering.ts";
import { compileRouter, METHODS, type Method, routeKeyCandidates } from "../routing/router.ts";
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
import { clientHeaders, clientResponseHeaders, upstreamRequestHeaders } from "../upstream/forwarding.ts";
import {
  createUpstreamClient,
  type UpstreamClient,
  type UpstreamRequest,
  type UpstreamResponse,
} from "../upstream/http-client.ts";
import { createLambdaUpstreamClient } from "../upstream/lambda-client.ts";
import { compilePathRewrite } from "../upstream/rewrite.ts";
import { compileJmespath, mapHeaders, mapQuery, mapRequestBody, onCanary } from "../upstream/transform.ts";
import { compileAggregate, runAggregate } from "./aggregate.ts";

type ProxyTarget = NonNullable<RouteConfig["proxy"]>["versions"][string];

/**
 * The gateway function: every proxied and aggregate route of the config, and API Gateway's catch-all.
 * Clients, path rewrites, mappings and schemas are built once per container. On the catch-all the
 * router only tells 404 from 405 (it never proxies there: that route has no authorizer).
 */
export interface GatewayDependencies {
  /** The usage limiter and metering (by default on the usage table, when the config has `limits`). */
  limiter?: Limiter;
  metering?: Metering;
  /** Clock of the in-memory limits used while the usage table is unreachable (tests). */
  now?: () => number;
}

export function createGatewayHandler(gateway: GatewayConfig, dependencies: GatewayDependencies = {}) {
  const clients = new Map<string, UpstreamClient>(
    Object.entries(gateway.upstreams).map(([name, upstream]) => [
      name,
      upstream.kind === "lambda"
        ? createLambdaUpstreamClient({ name, ...upstream })
        : createUpstreamClient({ name, ...upstream }),
    ]),
  );
  const clientOf = (key: string, upstream: string) => {
    const client = clients.get(upstream);
    if (!client) throw new Error(`route ${key}: no upstream ${upstream}`);
    return client;
  };
  const compileTarget = (key: string, target: ProxyTarget) => {
    const { upstream, path, forwardAuthorization, request, response } = target;
    return {
      upstream,
      forwardAuthorization,
      client: clientOf(key, upstream),
      maxResponseBytes: gateway.upstreams[upstream]?.maxResponseBytes ?? 0,
      passHeaders: response?.passHeaders ?? [],
      rewrite: compilePathRewrite(path),
      requestHeaders: request?.headers,
      requestQuery: request?.query,
      requestBody: request?.body === undefined ? undefined : compileJmespath(request.body),
      response: response && {
        upstream,
        status: new Map(Object.entries(response.status).map(([from, to]) => [Number(from), to])),
        headers: response.headers,
        body: response.body === undefined ? undefined : compileJmespath(response.body),
      },
    };
  };
  type CompiledTarget = ReturnType<typeof compileTarget>;
  const routes = new Map(
    Object.entries(gateway.routes).flatMap(([key, route]) => {
      if (!route.proxy && !route.aggregate) return [];
      const body: BodyRules = route.body; // the config schema fills in the defaults
      let validate: ReturnType<typeof compileBodySchema> | undefined;
      try {
        validate = body.schema ? compileBodySchema(body.schema) : undefined;
      } catch (error) {
        throw new Error(`route ${key}: body.schema is not a valid JSON Schema: ${String(error)}`);
      }
      const proxy = route.proxy && {
        target: compileTarget(key, route.proxy),
        versions: new Map<string, CompiledTarget>(
          Object.entries(route.proxy.versions).map(([version, target]) => [
            version,
            compileTarget(key, target),
          ]),
        ),
        canary: route.proxy.canary && {
          target: compileTarget(key, route.proxy.canary),
          weight: route.proxy.canary.weight,
          header: route.proxy.canary.header,
        },
      };
      const aggregate = route.aggregate && {
        calls: compileAggregate(
          route.aggregate.calls,
          (upstream) => clientOf(key, upstream),
          (upstream) => gateway.upstreams[upstream]?.maxResponseBytes ?? 0,
        ),
        merge: route.aggregate.merge === undefined ? undefined : compileJmespath(route.aggregate.merge),
        onFailure: route.aggregate.onFailure,
      };
      return [[key, { key, proxy, aggregate, body, validate }] as const];
    }),
  );
  const router = compileRouter(
    Object.keys(gateway.routes).map((key) => {
      const [method, path] = key.split(" ") as [Method | "ANY", string];
      return { method, path, value: key };
    }),
  );

  // Every step asks for the route; it is worked out once per event.
  const routeKeys = new WeakMap<HttpEvent, string | null>();
  const routeKeyOf = (event: HttpEvent): string | undefined => {
    let key = routeKeys.get(event);
    if (key === undefined) {
      // The route API Gateway matched, as declared (exact first, then ANY): a declared route that is
      // not the gateway's (the preflight OPTIONS route beside an ANY route) is not the ANY route.
      const declared = routeKeyCandidates(event.routeKey).find((candidate) =>
        Object.hasOwn(gateway.routes, candidate),
      );
      key = declared !== undefined && routes.has(declared) ? declared : null;
      routeKeys.set(event, key);
    }
    return key ?? undefined;
  };
  const routeOf = (event: HttpEvent) => {
    const key = routeKeyOf(event);
    return key === undefined ? undefined : routes.get(key);
  };
  /** A CORS preflight reaches the catch-all: the route it asks about, by path and requested method. */
  const preflightKeyOf = (event: HttpEvent): string | undefined => {
    const requested = event.headers["access-control-request-method"];
    if (event.requestContext.http.method.toUpperCase() !== "OPTIONS" || !requested || !event.headers.origin)
      return;
    try {
      return router(requested.toUpperCase(), event.rawPath).value;
    } catch {
      return undefined;
    }
  };
  const corsRoutes = new Map<string, { rules: CorsRules; methods: string[] }>(
    Object.entries(gateway.routes).flatMap(([key, route]) => {
      const rules = route.cors === false ? undefined : (route.cors ?? gateway.cors);
      if (!routes.has(key) || !rules) return [];
      const method = key.split(" ")[0] as string;
      return [[key, { rules, methods: method === "ANY" ? [...METHODS] : [method] }] as const];
    }),
  );
  const corsStep = corsByRoute(corsRoutes, (event) => routeKeyOf(event) ?? preflightKeyOf(event));
  const metricsStep = requestMetrics(routeKeyOf);
  const deprecationStep = deprecation(
    new Map(
      Object.entries(gateway.routes).flatMap(([key, route]) =>
        route.deprecated ? [[key, route.deprecated]] : [],
      ),
    ),
    routeKeyOf,
  );
  const usage = gateway.limits
    ? usageLimits({
        limits: gateway.limits,
        routes: gateway.routes,
        routeKeyOf,
        policy: createLimitPolicy({
          limiter:
            dependencies.limiter ??
            createLimiter({ client: limiterDocumentClient(), tableName: env.usageTable }),
          onStoreFailure: gateway.limits.onStoreFailure,
          what: "Usage limits",
          local: createLocalLimiter(dependencies.now ? { now: dependencies.now } : {}),
        }),
        metering:
          dependencies.metering ??
          createMetering({ client: limiterDocumentClient(), tableName: env.usageTable }),
        // The check leaves the route's upstream attempts their time.
        reserveMs: (key) => {
          const route = gateway.routes[key];
          return route ? routeWorstCaseMs(gateway, route) + 1_000 : 0;
        },
      })
    : undefined;
  // API Gateway is HTTPS only; serverless-offline (the local stack) serves plain HTTP.
  const proto: "http" | "https" = env.isOffline ? "http" : "https";
  const trustedRanges = compileIpRules({ allow: gateway.trustedProxies, deny: [] });
  const trustedProxy = (ip: string | undefined) =>
    gateway.trustedProxies.length > 0 && trustedRanges(ip).allowed;
  const bodyStep = requestBody((event) => {
    const route = routeOf(event);
    return route && { rules: route.body, ...(route.validate ? { validate: route.validate } : {}) };
  });

  /** Which target answers: the version the header asks for, else the caller's canary side, else the default. */
  const chooseTarget = (
    proxy: NonNullable<NonNullable<ReturnType<typeof routeOf>>["proxy"]>,
    key: string,
    event: HttpEvent,
    identity: Identity | undefined,
  ): CompiledTarget => {
    const requested = event.headers[gateway.versionHeader];
    if (requested !== undefined) {
      const version = proxy.versions.get(requested);
      if (version) return version;
      const known = [...proxy.versions.keys()];
      throw new BadRequestError(
        known.length > 0
          ? `Unknown ${gateway.versionHeader} ${JSON.stringify(requested)}; use ${known.join(", ")} or leave it out`
          : `This route has no versions; leave out ${gateway.versionHeader}`,
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

  return httpHandler(
    async (event, context): Promise<HttpResult> => {
      const method = event.requestContext.http.method.toUpperCase();
      const route = routeOf(event);
      if (!route) {
        const preflight = preflightKeyOf(event);
        if (preflight && corsRoutes.has(preflight)) return { statusCode: 204, headers: {} }; // the CORS step fills it in
        const match = router(method, event.rawPath); // throws 404, 405 or 400
        const declared = match.value.split(" ")[0] as string;
        const allowed = declared === "ANY" ? [...METHODS] : [declared];
        throw new MethodNotAllowedError(`${method} is not allowed on ${event.rawPath}`, allowed);
      }
      const identity = optionalIdentity(event);
      const params = event.pathParameters ?? {};
      const headersIn = clientHeaders(event);
      const forwarding = {
        headers: headersIn,
        identity,
        requestId: context.requestId,
        sourceIp: event.requestContext.http.sourceIp,
        proto,
        trusted: trustedProxy,
      };
      const timed = (call: { upstream: string; client: UpstreamClient }, request: UpstreamRequest) =>
        timedUpstreamCall(context, call, request);

      if (route.aggregate) {
        // The gateway reads every call's JSON itself; its merged answer is compressed on the way out.
        const headers = { ...upstreamRequestHeaders(forwarding), "accept-encoding": "identity" };
        return runAggregate(route.aggregate, params, headers, timed);
      }
      const proxy = route.proxy;
      if (!proxy) throw new Error(`route ${route.key} has neither proxy nor aggregate`);
      const chosen = chooseTarget(proxy, route.key, event, identity);
      const path = chosen.rewrite(params);
      const body = parsedBody(context);
      let upstreamBody = body?.raw; // the raw bytes the body checks passed, not a re-serialisation
      const headers = upstreamRequestHeaders({
        ...forwarding,
        headers: mapHeaders(headersIn, chosen.requestHeaders),
        forwardAuthorization: chosen.forwardAuthorization,
      });
      if (chosen.requestBody && body && body.json !== undefined) {
        upstreamBody = mapRequestBody(chosen.requestBody, body.json);
        headers["content-type"] = "application/json";
      }
      const accepted = acceptedCodings(event.headers["accept-encoding"]);
      headers["accept-encoding"] = upstreamAcceptEncoding(accepted);
      useResponseMap(context, chosen.response);
      const response = await timed(chosen, {
        method,
        path,
        query: mapQuery(event.rawQueryString, chosen.requestQuery),
        headers,
        params: params as Record<string, string>,
        ...(upstreamBody ? { body: upstreamBody } : {}),
      });
      const responseHeaders = clientResponseHeaders(response.headers, chosen.passHeaders);
      // The answer depends on these request headers: caches must key on them.
      const varies = [
        ...(proxy.versions.size > 0 ? [gateway.versionHeader] : []),
        ...(proxy.canary?.header ? [proxy.canary.header] : []),
      ];
      for (const name of varies) addVary(responseHeaders, name);
      const mapsBody = mapsResponseBody(chosen.response, response.status, responseHeaders["content-type"]);
      let { body: bytes, coded } = clientBody(chosen, response, responseHeaders, accepted, mapsBody);
      // Compressed here, from the bytes, unless a mapping will change the body (the compression step
      // does it then): turning a large body into a string only to turn it back costs more than zlib.
      const compressed =
        !coded && !mapsBody && gateway.compression
          ? compressForClient(
              bytes,
              { status: response.status, method, headers: responseHeaders, accepted },
              gateway.compression,
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
    },
    {
      request: [metricsStep.start, ...(usage ? [usage.check] : []), bodyStep],
      // Middy runs these in reverse: the mapping, compression of the final body, deprecation and CORS
      // headers, the size of the whole answer, then metering and metrics (so they see its 502).
      response: [
        metricsStep.publish,
        ...(usage ? [usage.meter] : []),
        responseSize(),
        corsStep,
        deprecationStep,
        ...(gateway.compression ? [responseCompression(gateway.compression)] : []),
        responseTransform(),
      ],
    },
  );
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
