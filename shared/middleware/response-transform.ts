import type middy from "@middy/core";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import { mapResponseBody, mapResponseHeaders, type NameMap } from "../upstream/transform.ts";

/** A proxied target's response mapping, compiled once. */
export interface ResponseMap {
  /** Named in errors ("the users service sent…"). */
  upstream: string;
  status: ReadonlyMap<number, number>;
  headers: NameMap | undefined;
  body: ((data: unknown) => unknown) | undefined;
}

/** Called by the handler once it knows which target (version, canary) answers this request. */
export function useResponseMap(context: GatehouseContext, map: ResponseMap | undefined): void {
  context.responseMap = map;
}

const JSON_BODY = /^application\/([\w.+-]+\+)?json\b/i;

/** Whether a map's body mapping applies to an answer: 2XX JSON only (errors keep their shape). */
export function mapsResponseBody(map: ResponseMap | undefined, status: number, contentType = ""): boolean {
  return map?.body !== undefined && status >= 200 && status < 300 && JSON_BODY.test(contentType);
}

/**
 * The response transform step: runs right after the handler, on the upstream's answer (never on the
 * gateway's own errors, which keep their problem+json). In order: the body mapping (2XX JSON answers
 * only), the status mapping, the header mapping.
 */
export function responseTransform(): middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext> {
  const responseTransformAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    const map = request.context.responseMap;
    const response = request.response;
    if (!map || !response) return;
    const status = response.statusCode ?? 200;
    const headers = response.headers as Record<string, string>;
    if (map.body && mapsResponseBody(map, status, headers["content-type"])) {
      response.body = mapResponseBody(map.body, response.body ?? "", map.upstream);
      response.isBase64Encoded = false;
    }
    response.statusCode = map.status.get(status) ?? status;
    const mapped = mapResponseHeaders(headers, response.cookies ?? [], map.headers);
    response.headers = mapped.headers;
    if (mapped.cookies.length > 0) response.cookies = mapped.cookies;
    else delete response.cookies;
  };
  return { after: responseTransformAfter };
}
