import { requestIdentity } from "#shared/auth/identity.ts";
import { createDocumentClient, createLimiterDocumentClient } from "#shared/clients/dynamodb.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";
import type { GatewayConfig } from "#shared/config/parse.ts";
import { BadRequestError } from "#shared/errors.ts";
import { type HttpEvent, json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";
import { lazyBodySchema, parsedBody, requestBody } from "#shared/middleware/request-body.ts";
import { routeTable } from "#shared/middleware/route-table.ts";
import { routeLimitSteps } from "#shared/middleware/usage-limits.ts";
import { createLimiter, type Limiter } from "#shared/quota/limiter.ts";
import { createMetering, type Metering } from "#shared/quota/metering.ts";
import { type Chat, messageFrame } from "#shared/ws/chat.ts";
import { createChatRuntime } from "#shared/ws/chat-runtime.ts";
import { managementEndpoint } from "#shared/ws/endpoint.ts";
import { broadcastBudget } from "#shared/ws/fanout.ts";
import { MESSAGE_ID, ROOM_NAME } from "#shared/ws/protocol.ts";

const PUBLISH = "POST /rooms/{room}/messages";
const HISTORY = "GET /rooms/{room}/messages";

/** What a backend service posts: the same `text` and optional `data` a WebSocket client sends. */
const PUBLISH_SCHEMA = {
  type: "object",
  required: ["text"],
  additionalProperties: false,
  properties: {
    text: { type: "string", minLength: 1 },
    data: { type: "object" },
  },
};

/**
 * The HTTP→WebSocket bridge, for backend services that notify connected clients:
 *   POST /rooms/{room}/messages  { text, data? }  stores the message in the room's history and sends
 *                                it to the room's connections; 201 with the message and delivery counts
 *   GET  /rooms/{room}/messages  ?since=&after=&limit=  the room's history (see shared/ws/protocol.ts)
 * The sender is the caller's principal (`key:<owner>` for an API key).
 */
/** The bridge is limited and metered unless its routes say `limit: false` (cost 1 by default). */
const BRIDGE_DEFAULT_LIMIT = { cost: 1 };

export function createRoomsHandler({
  gateway,
  chat,
  limiter,
  metering,
}: {
  gateway: GatewayConfig;
  chat: Chat;
  limiter: Limiter;
  metering: Metering;
}) {
  const usage = routeLimitSteps({
    gateway,
    limiter,
    metering,
    defaultLimit: (key) => (key === PUBLISH || key === HISTORY ? BRIDGE_DEFAULT_LIMIT : undefined),
    // A publish's fan-out keeps most of the invocation's time.
    reserveMs: () => 10_000,
  });
  const rules = {
    rules: { maxBytes: gateway.websocket.chat.maxMessageBytes, contentTypes: ["application/json"] },
    validate: lazyBodySchema(PUBLISH_SCHEMA),
  };
  const roomOf = (event: HttpEvent) => {
    const room = event.pathParameters?.room ?? "";
    if (!ROOM_NAME.test(room)) {
      throw new BadRequestError(
        "A room is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
      );
    }
    return room;
  };
  const routes = routeTable("rooms", gateway.routes, {
    [PUBLISH]: async (event, context) => {
      const caller = requestIdentity(event);
      const room = roomOf(event);
      const body = parsedBody(context)?.json as { text: string; data?: Record<string, unknown> };
      const { message, report } = await chat.publish(
        room,
        { from: caller.principal, text: body.text, data: body.data },
        { kind: "bridge", signal: broadcastBudget(context) },
      );
      return json(
        201,
        {
          ...messageFrame(message),
          recipients: report.recipients,
          delivered: report.delivered,
          gone: report.gone.length,
          failed: report.failed,
          skipped: report.skipped,
        },
        { location: `/rooms/${room}/messages?since=${message.messageId}` },
      );
    },
    [HISTORY]: async (event) => {
      requestIdentity(event); // a caller the authorizer admitted, or 401
      const room = roomOf(event);
      const query = event.queryStringParameters ?? {};
      for (const name of ["since", "after"] as const) {
        const value = query[name];
        if (value !== undefined && !MESSAGE_ID.test(value))
          throw new BadRequestError(`${name} must be a message id`);
      }
      if (query.since !== undefined && query.after !== undefined) {
        throw new BadRequestError("Give since or after, not both");
      }
      const limit = query.limit === undefined ? 50 : Number(query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
        throw new BadRequestError("limit is a whole number from 1 to 100");
      }
      const page = await chat.history(room, { since: query.since, after: query.after, limit });
      return json(200, {
        room,
        messages: page.messages.map(messageFrame),
        hasMore: page.hasMore,
        cursor: page.cursor,
      });
    },
  });
  return httpHandler(routes, {
    request: [...usage.request, requestBody((event) => (event.routeKey === PUBLISH ? rules : undefined))],
    response: usage.response,
  });
}

const gateway = gatewayAtStart(env.stage);
const usageClient = createLimiterDocumentClient();
export const handler = createRoomsHandler({
  gateway,
  chat: createChatRuntime({
    gateway,
    client: createDocumentClient(),
    tables: {
      connections: env.connectionsTable,
      roomMembers: env.roomMembersTable,
      messages: env.messagesTable,
    },
    endpoint: managementEndpoint({
      given: env.websocketEndpoint,
      region: env.region,
      apiId: env.websocketApiId,
      stage: env.stage,
    }),
  }).chat,
  limiter: createLimiter({ client: usageClient, tableName: env.usageTable }),
  metering: createMetering({ client: usageClient, tableName: env.usageTable }),
});
