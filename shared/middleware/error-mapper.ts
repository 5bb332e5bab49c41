import type middy from "@middy/core";
import { toHttpError } from "../errors.ts";
import type { GatehouseContext, HttpResult } from "../http.ts";
import { logger } from "../observability/logger.ts";

interface EventWithPath {
  rawPath?: string;
}

/**
 * The one place errors become responses: an `application/problem+json` body (RFC 9457) carrying the
 * request id. A 4XX shows its message; a 5XX shows a generic one and logs the detail with its cause.
 * Anything that is not an `HttpError` is a 500, so an unhandled throw never becomes a 200.
 */
export function errorMapper(): middy.MiddlewareObj<EventWithPath, HttpResult, Error, GatehouseContext> {
  const errorMapperOnError: middy.MiddlewareFn<EventWithPath, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    const error = toHttpError(request.error);
    const requestId = request.context.requestId ?? request.context.awsRequestId;
    if (error.expose) {
      logger.info("request refused", {
        status: error.statusCode,
        problem: error.slug,
        detail: error.message,
      });
    } else {
      logger.error("request failed", {
        status: error.statusCode,
        problem: error.slug,
        error: error.cause instanceof Error ? error.cause : error,
      });
    }
    const problem = {
      type: `urn:gatehouse:problem:${error.slug}`,
      title: error.title,
      status: error.statusCode,
      detail: error.expose
        ? error.message
        : "The gateway could not complete the request. Quote the request id.",
      ...(request.event?.rawPath ? { instance: request.event.rawPath } : {}),
      requestId,
      ...(error.expose ? error.extensions : {}),
    };
    request.response = {
      statusCode: error.statusCode,
      headers: { ...error.headers, "content-type": "application/problem+json" },
      body: JSON.stringify(problem),
    };
  };
  return { onError: errorMapperOnError };
}
