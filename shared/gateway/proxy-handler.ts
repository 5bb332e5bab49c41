import { type Identity, requestIdentity } from "../auth/identity.ts";
import type { GatewayConfig } from "../config/gateway.ts";
import { BadRequestError, MethodNotAllowedError } from "../errors.ts";
import type { HttpEvent, HttpResult } from "../http.ts";
import { type CorsRules, corsByRoute } from "../middleware/cors.ts";
import { deprecation } from "../middleware/deprecation.ts";
import { httpHandler } from "../middleware/http-handler.ts";
import { type BodyRules, compileBodySchema, parsedBody, requestBody } from "../middleware/request-body.ts";
import { recordUpstream, requestMetrics } from "../middleware/request-metrics.ts";
import { compileRouter, METHODS, type Method, routeKeyCandidates } from "../routing/router.ts";
import { clientResponseHeaders, upstreamRequestHeaders } from "../upstream/forwarding.ts";
import {
  createUpstreamClient,
  type UpstreamClient,
  type UpstreamRequest,
  type UpstreamResponse,
} from "../upstream/http-client.ts";
import { compilePathRewrite } from "../upstream/rewrite.ts";

const TEXTUAL =
  /^(text\/|application\/(json|problem\+json|xml|javascript|x-www-form-urlencoded)|[^;]*\+json|[^;]*\+xml)/i;

/**
 * The gateway function: every proxied route of the config, and API Gateway's catch-all. Clients and
 * path rewrites are built once per container. On the catch-all the router only tells 404 from 405
 * (it never proxies there: that route has no authorizer).
 */
export function createGatewayHandler(gateway: GatewayConfig) {
  const clients = new Map<string, UpstreamClient>(
    Object.entries(gateway.upstreams).map(([name, upstream]) => [
      name,
      createUpstreamClient({ name, ...upstream }),
    ]),
  );
  const compileTarget = (
    key: string,
    target: { upstream: string; path: string; forwardAuthorization: boolean },
  ) => {
    const client = clients.get(target.upstream);
    if (!client) throw new Error(`route ${key}: no upstream ${target.upstream}`);
    const { upstream, path, forwardAuthorization } = target;
    return { upstream, forwardAuthorization, client, rewrite: compilePathRewrite(path) };
  };
  const proxied = new Map(
    Object.entries(gateway.routes).flatMap(([key, route]) => {
      if (!route.proxy) return [];
      const body: BodyRules = route.body; // the config schema fills in the defaults
      let validate: ReturnType<typeof compileBodySchema> | undefined;
      try {
        validate = body.schema ? compileBodySchema(body.schema) : undefined;
      } catch (error) {
        throw new Error(`route ${key}: body.schema is not a valid JSON Schema: ${String(error)}`);
      }
      const versions = new Map(
        Object.entries(route.proxy.versions).map(([version, target]) => [
          version,
          compileTarget(key, target),
        ]),
      );
      return [[key, { target: compileTarget(key, route.proxy), versions, body, validate }] as const];
    }),
  );
  const router = compileRouter(
    Object.keys(gateway.routes).map((key) => {
      const [method, path] = key.split(" ") as [Method | "ANY", string];
      return { method, path, value: key };
    }),
  );

  const proxiedKeyOf = (event: HttpEvent) =>
    routeKeyCandidates(event.routeKey).find((key) => proxied.has(key));
  const routeOf = (event: HttpEvent) => {
    const key = proxiedKeyOf(event);
    return key === undefined ? undefined : proxied.get(key);
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
      if (!route.proxy || !rules) return [];
      const method = key.split(" ")[0] as string;
      return [[key, { rules, methods: method === "ANY" ? [...METHODS] : [method] }] as const];
    }),
  );
  const corsStep = corsByRoute(corsRoutes, (event) => proxiedKeyOf(event) ?? preflightKeyOf(event));
  const metricsStep = requestMetrics(proxiedKeyOf);
  const deprecationStep = deprecation(
    new Map(
      Object.entries(gateway.routes).flatMap(([key, route]) =>
        route.deprecated ? [[key, route.deprecated]] : [],
      ),
    ),
    proxiedKeyOf,
  );
  const bodyStep = requestBody((event) => {
    const target = routeOf(event);
    return target && { rules: target.body, ...(target.validate ? { validate: target.validate } : {}) };
  });

  return httpHandler(
    async (event, context): Promise<HttpResult> => {
      const method = event.requestContext.http.method.toUpperCase();
      const target = routeOf(event);
      if (!target) {
        const preflight = preflightKeyOf(event);
        if (preflight && corsRoutes.has(preflight)) return { statusCode: 204, headers: {} }; // the CORS step fills it in
        const match = router(method, event.rawPath); // throws 404, 405 or 400
        const declared = match.value.split(" ")[0] as string;
        const allowed = declared === "ANY" ? [...METHODS] : [declared];
        throw new MethodNotAllowedError(`${method} is not allowed on ${event.rawPath}`, allowed);
      }

      // A route's other versions are picked by header; without the header, the default.
      const requested = event.headers[gateway.versionHeader];
      const chosen = requested === undefined ? target.target : target.versions.get(requested);
      if (!chosen) {
        const known = [...target.versions.keys()];
        throw new BadRequestError(
          known.length > 0
            ? `Unknown ${gateway.versionHeader} ${JSON.stringify(requested)}; use ${known.join(", ")} or leave it out`
            : `This route has no versions; leave out ${gateway.versionHeader}`,
        );
      }
      const path = chosen.rewrite(event.pathParameters ?? {});
      const body = parsedBody(context);
      const response = await timedUpstreamCall(proxiedKeyOf(event) ?? event.routeKey, chosen, {
        method,
        path,
        query: event.rawQueryString,
        headers: upstreamRequestHeaders({
          headers: event.headers,
          identity: identityOf(event),
          requestId: context.requestId,
          sourceIp: event.requestContext.http.sourceIp,
          forwardAuthorization: chosen.forwardAuthorization,
        }),
        // The raw bytes the body checks passed (not a re-serialisation).
        ...(body ? { body: body.raw } : {}),
      });
      const headers = clientResponseHeaders(response.headers);
      if (target.versions.size > 0)
        headers.vary = headers.vary ? `${headers.vary}, ${gateway.versionHeader}` : gateway.versionHeader;
      const textual = TEXTUAL.test(headers["content-type"] ?? "");
      return {
        statusCode: response.status,
        headers,
        body: textual ? response.body.toString("utf8") : response.body.toString("base64"),
        isBase64Encoded: !textual,
      };
    },
    { request: [bodyStep], response: [metricsStep, corsStep, deprecationStep] },
  );
}

/** The upstream call, timed by route, upstream and answering target (`none` when nobody answered). */
async function timedUpstreamCall(
  route: string,
  chosen: { upstream: string; client: UpstreamClient },
  request: UpstreamRequest,
): Promise<UpstreamResponse> {
  const began = performance.now();
  let response: UpstreamResponse | undefined;
  try {
    response = await chosen.client(request);
    return response;
  } finally {
    recordUpstream({
      route,
      upstream: chosen.upstream,
      target: response?.target ?? "none",
      ms: performance.now() - began,
      failed: response === undefined,
    });
  }
}

/** The caller's identity when an authorizer ran (a public route has none). */
function identityOf(event: HttpEvent): Identity | undefined {
  try {
    return requestIdentity(event);
  } catch {
    return undefined;
  }
}
