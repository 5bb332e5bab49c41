import type middy from "@middy/core";

/** Headers for a JSON API that never renders HTML (OWASP REST Security Cheat Sheet). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "strict-transport-security": "max-age=63072000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

/** The names of the gateway's security headers (an upstream's copies are dropped unless a route passes them). */
export const SECURITY_HEADER_NAMES: readonly string[] = Object.keys(SECURITY_HEADERS);

/**
 * Adds the security headers to every response, success or error; a handler's own values win (the
 * proxy handler keeps an upstream's only where the route's `response.passHeaders` says so).
 */
export function securityHeaders<TEvent, TResult>(): middy.MiddlewareObj<TEvent, TResult> {
  const securityHeadersAfter: middy.MiddlewareFn<TEvent, TResult> = (request) => {
    const response = request.response as { headers?: Record<string, unknown> } | undefined;
    if (response && typeof response === "object") {
      response.headers = { ...SECURITY_HEADERS, ...response.headers };
    }
  };
  return { after: securityHeadersAfter, onError: securityHeadersAfter };
}
