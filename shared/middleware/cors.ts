import type middy from "@middy/core";
import httpCors from "@middy/http-cors";
import type { GatewayConfig } from "../config/gateway.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";

export type CorsRules = Exclude<GatewayConfig["routes"][string]["cors"], false | undefined>;
type Middleware = middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;

/**
 * A route's CORS through @middy/http-cors, built once at cold start and applied to every response
 * of that route (errors too, so a browser can read the problem). Origins are exact, or
 * `https://*.example.com`, which http-cors anchors so that `example.com.evil.net` never matches.
 */
export function routeCors(rules: CorsRules, methods: readonly string[]): Middleware {
  const instance = httpCors({
    origins: rules.origins,
    credentials: rules.credentials,
    headers: rules.headers.join(","),
    exposeHeaders: rules.exposeHeaders.join(","),
    methods: [...new Set([...methods, "OPTIONS"])].join(","),
    maxAge: rules.maxAgeSeconds,
  }) as Middleware;
  const corsAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (request) => {
    if (instance.after && request.response) await instance.after(request);
  };
  return { after: corsAfter, onError: corsAfter };
}

/**
 * CORS for a chain that serves several routes (the gateway's catch-all answers preflights for all of
 * them): the step of the route `routeKeyOf` names, none when it names no route with CORS.
 */
export function corsByRoute(
  steps: ReadonlyMap<string, Middleware>,
  routeKeyOf: (event: HttpEvent) => string | undefined,
): Middleware {
  const corsAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (request) => {
    const key = routeKeyOf(request.event);
    const step = key === undefined ? undefined : steps.get(key);
    if (step?.after) await step.after(request);
  };
  return { after: corsAfter, onError: corsAfter };
}
