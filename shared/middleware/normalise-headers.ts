import type middy from "@middy/core";
import type { HttpEvent } from "../http.ts";

/**
 * Header names lower-cased and `headers` always present. API Gateway's payload 2.0 already lower-cases
 * them; hand-written events, `invoke local` and other callers do not.
 */
export function normaliseHeaders<TResult>(): middy.MiddlewareObj<HttpEvent, TResult> {
  const normaliseHeadersBefore: middy.MiddlewareFn<HttpEvent, TResult> = (request) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.event.headers ?? {})) {
      if (value === undefined) continue;
      const key = name.toLowerCase();
      headers[key] = key in headers ? `${headers[key]},${value}` : value;
    }
    request.event.headers = headers;
  };
  return { before: normaliseHeadersBefore };
}
