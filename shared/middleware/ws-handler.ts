import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { APIGatewayProxyWebsocketEventV2 } from "aws-lambda";
import { toHttpError } from "../errors.ts";
import type { GatehouseContext } from "../http.ts";
import { logger } from "../observability/logger.ts";
import { frame } from "../ws/protocol.ts";
import { requestContext } from "./request-context.ts";
import { tracing } from "./tracing.ts";

/** A WebSocket event as API Gateway sends it; `$connect` also carries the handshake's headers and query. */
export type WsEvent = APIGatewayProxyWebsocketEventV2 & {
  headers?: Record<string, string | undefined>;
  queryStringParameters?: Record<string, string | undefined> | null;
  requestContext: APIGatewayProxyWebsocketEventV2["requestContext"] & {
    identity?: { sourceIp?: string; userAgent?: string };
    authorizer?: { principalId?: string; [key: string]: unknown } | null;
  };
};
export interface WsResult {
  statusCode: number;
  body?: string;
  headers?: Record<string, string>;
}
export type WsHandler = (event: WsEvent, context: GatehouseContext) => Promise<WsResult>;

/** Messages larger than this are not parsed again for the error frame. */
const ECHO_LIMIT_BYTES = 128 * 1024;

/**
 * The `action` and `ref` of the message that failed, when it is a JSON object that has them as
 * strings, so a client can tell which of its messages an error answers.
 */
export function echoed(body: string | undefined): { action?: string; ref?: string } {
  if (!body || body.length > ECHO_LIMIT_BYTES) return {};
  try {
    const { action, ref } = JSON.parse(body) as { action?: unknown; ref?: unknown };
    return {
      ...(typeof action === "string" && action.length <= 64 ? { action } : {}),
      ...(typeof ref === "string" && ref.length <= 64 ? { ref } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * The Middy chain for WebSocket routes. A failure becomes an `error` frame (sent back on routes with a
 * route response; on `$connect` a non-2XX status refuses the handshake). 4XX messages are shown, 5XX
 * generic with the detail logged; an unhandled throw is a 500, never a 200.
 */
export function wsHandler(handler: WsHandler) {
  const wsErrorMapperOnError: middy.MiddlewareFn<WsEvent, WsResult, Error, GatehouseContext> = (request) => {
    const error = toHttpError(request.error);
    if (error.expose) logger.info("message refused", { status: error.statusCode, detail: error.message });
    else logger.error("message failed", { status: error.statusCode, error: error.cause ?? error });
    request.response = {
      statusCode: error.statusCode,
      body: JSON.stringify(
        frame("error", {
          error: {
            code: error.slug,
            status: error.statusCode,
            message: error.expose ? error.message : "The gateway could not handle the message.",
            ...(error.expose ? error.extensions : {}),
          },
          ...echoed(request.event.body),
          requestId: request.context.requestId,
        }),
      ),
    };
  };
  return middy<WsEvent, WsResult, Error, GatehouseContext>(handler)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(requestContext<WsResult>())
    .use(tracing<WsEvent, WsResult>())
    .use({ onError: wsErrorMapperOnError });
}
