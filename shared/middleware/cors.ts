import type middy from "@middy/core";
import httpCors from "@middy/http-cors";
import type { GatewayConfig } from "../config/gateway.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";

export type CorsRules = Exclude<GatewayConfig["routes"][string]["cors"], false | undefined>;
type Middleware = middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;

/**
 * CORS per route through @middy/http-cors: one instance per route, built at cold start, applied to
 * every response of that route (errors too, so a browser can read the problem). Origins are exact,
 * or `https://*.example.com`, which http-cors anchors so that `example.com.evil.net` never matches.
 */
export function corsByRoute(
  routes: ReadonlyMap<string, { rules: CorsRules; methods: readonly string[] }>,
  routeKeyOf: (event: HttpEvent) => string | undefined,
): Middleware {
  const instances = new Map<string, Middleware>(
    [...routes].map(([key, { rules, methods }]) => [
      key,
      httpCors({
        origins: rules.origins,
        credentials: rules.credentials,
        headers: rules.headers.join(","),
        exposeHeaders: rules.exposeHeaders.join(","),
        methods: [...new Set([...methods, "OPTIONS"])].join(","),
        maxAge: rules.maxAgeSeconds,
      }) as Middleware,
    ]),
  );
  const corsAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = async (request) => {
    const key = routeKeyOf(request.event);
    const instance = key === undefined ? undefined : instances.get(key);
    if (instance?.after && request.response) await instance.after(request);
  };
  return { after: corsAfter, onError: corsAfter };
}
