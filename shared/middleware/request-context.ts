import type middy from "@middy/core";
import type { GatehouseContext } from "../http.ts";
import { logger } from "../observability/logger.ts";

/** A caller-supplied request id is kept only if it is short and plain, so it is safe in logs and headers. */
export const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** serverless-offline gives every HTTP request this same placeholder, so locally the Lambda id is used. */
const OFFLINE_PLACEHOLDER_ID = "offlineContext_";

interface EventWithRequestId {
  headers?: Record<string, string | undefined> | null;
  requestContext?: { requestId?: string };
}

/**
 * Correlation id: take the caller's `x-request-id` (or `x-correlation-id`) when it is safe, else
 * API Gateway's request id; put it on the context and the logger, and echo it as `x-request-id`.
 */
export function requestContext<TResult>(): middy.MiddlewareObj<
  EventWithRequestId,
  TResult,
  Error,
  GatehouseContext
> {
  const requestContextBefore: middy.MiddlewareFn<EventWithRequestId, TResult, Error, GatehouseContext> = (
    request,
  ) => {
    const headers = request.event.headers ?? {};
    const supplied = headers["x-request-id"] ?? headers["x-correlation-id"];
    const gatewayId = request.event.requestContext?.requestId;
    const requestId =
      supplied !== undefined && SAFE_REQUEST_ID.test(supplied)
        ? supplied
        : gatewayId && !gatewayId.startsWith(OFFLINE_PLACEHOLDER_ID)
          ? gatewayId
          : request.context.awsRequestId;
    request.context.requestId = requestId;
    logger.appendKeys({ requestId });
  };
  const requestContextAfter: middy.MiddlewareFn<EventWithRequestId, TResult, Error, GatehouseContext> = (
    request,
  ) => {
    const response = request.response as { headers?: Record<string, unknown> } | undefined;
    if (response && typeof response === "object" && request.context.requestId) {
      response.headers = { ...response.headers, "x-request-id": request.context.requestId };
    }
  };
  return { before: requestContextBefore, after: requestContextAfter, onError: requestContextAfter };
}
