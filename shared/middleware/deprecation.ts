import type middy from "@middy/core";
import type { GatewayConfig } from "../config/gateway.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";

type Deprecation = NonNullable<GatewayConfig["routes"][string]["deprecated"]>;

/** The headers of a deprecated route: `Deprecation` (RFC 9745), `Sunset` (RFC 8594), and `Link`. */
export function deprecationHeaders(deprecation: Deprecation): Record<string, string> {
  const links = [
    ...(deprecation.link ? [`<${deprecation.link}>; rel="deprecation"`] : []),
    ...(deprecation.link && deprecation.sunset ? [`<${deprecation.link}>; rel="sunset"`] : []),
  ];
  return {
    deprecation: `@${Math.floor(Date.parse(deprecation.since) / 1000)}`,
    ...(deprecation.sunset ? { sunset: new Date(deprecation.sunset).toUTCString() } : {}),
    ...(links.length > 0 ? { link: links.join(", ") } : {}),
  };
}

/** Adds a deprecated route's headers to all its responses, errors included (computed once, at cold start). */
export function deprecation(
  deprecated: Deprecation,
): middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext> {
  const headers = deprecationHeaders(deprecated);
  const deprecationAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (request) => {
    if (request.response) request.response.headers = { ...request.response.headers, ...headers };
  };
  return { after: deprecationAfter, onError: deprecationAfter };
}
