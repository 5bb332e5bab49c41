import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { APIGatewayProxyWebsocketEventV2 } from "aws-lambda";
import { toHttpError } from "../errors.ts";
import type { GatehouseContext } from "../http.ts";
import { logger } from "../observability/logger.ts";
import { frame } from "../ws/protocol.ts";
import { requestContext } from "./request-context.ts";

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
          },
          requestId: request.context.requestId,
        }),
      ),
    };
  };
  return middy<WsEvent, WsResult, Error, GatehouseContext>(handler)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(requestContext<WsResult>())
    .use({ onError: wsErrorMapperOnError });
}
