import type { Context } from "aws-lambda";
import * as v from "valibot";
import { createDocumentClient, createLimiterDocumentClient } from "#shared/clients/dynamodb.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";
import type { GatewayConfig } from "#shared/config/parse.ts";
import {
  BadRequestError,
  ForbiddenError,
  GoneError,
  PayloadTooLargeError,
  RateLimitedError,
} from "#shared/errors.ts";
import type { GatehouseContext } from "#shared/http.ts";
import { annotateCaller } from "#shared/middleware/tracing.ts";
import { type WsEvent, type WsResult, wsHandler } from "#shared/middleware/ws-handler.ts";
import { createLimitPolicy } from "#shared/quota/limit-policy.ts";
import { createLimiter, type Limiter } from "#shared/quota/limiter.ts";
import { checkWebSocketMessage } from "#shared/quota/ws-limits.ts";
import { type Chat, messageFrame, type Published } from "#shared/ws/chat.ts";
import { createChatRuntime } from "#shared/ws/chat-runtime.ts";
import { type ConnectionStore, RoomLimitError } from "#shared/ws/connection-store.ts";
import { managementEndpoint } from "#shared/ws/endpoint.ts";
import { broadcastBudget } from "#shared/ws/fanout.ts";
import { inboxOf, type StoredMessage } from "#shared/ws/message-store.ts";
import { ChatMessageSchema, frame } from "#shared/ws/protocol.ts";

/** A route response travels as one WebSocket message: API Gateway's limit is 128 KB. */
const REPLY_BUDGET_BYTES = 120 * 1024;
const DEFAULT_HISTORY_LIMIT = 50;

class RoomLimitReachedError extends ForbiddenError {
  override readonly slug = "room-limit";
}
class NotAMemberError extends ForbiddenError {
  override readonly slug = "not-a-member";
}
class MissingScopeError extends ForbiddenError {
  override readonly slug = "missing-scope";
}

/**
 * The chat actions (`join`, `leave`, `send`, `direct`, `rooms`, `members`, `history`; see
 * shared/ws/protocol.ts). Each message is checked in this order, cheapest first: its size (before it
 * is even parsed), its shape, the sender's connection record, the sender's rates (per connection, then
 * per principal); then the action runs and its answer is the route response.
 */
export function createChatHandler({
  gateway,
  chat,
  connections,
  limiter,
}: {
  gateway: GatewayConfig;
  chat: Chat;
  connections: ConnectionStore;
  limiter: Limiter | undefined;
}) {
  const { maxMessageBytes } = gateway.websocket.chat;
  const limits = gateway.limits;
  const policy =
    limiter && limits
      ? createLimitPolicy({ limiter, onStoreFailure: limits.onStoreFailure, what: "Message limits" })
      : undefined;

  async function checkRate(connectionId: string, principal: string, leftMs: number): Promise<void> {
    if (!policy || !limits) return;
    // The action (a fan-out, at most) keeps the rest of the invocation's time.
    const budgetMs = Math.min(limits.timeoutMs, leftMs / 2);
    const decision = await checkWebSocketMessage(
      policy,
      limits.websocket,
      { connectionId, principal },
      budgetMs,
    );
    if (decision && !decision.admitted) {
      const retryAfter = decision.retryAfterSeconds ?? 1;
      throw new RateLimitedError(`Too many messages; retry in ${retryAfter} s`, retryAfter, {
        extensions: { retryAfter },
      });
    }
  }

  return wsHandler(async (event, context): Promise<WsResult> => {
    const body = event.body ?? "";
    const bytes = Buffer.byteLength(body, "utf8");
    if (bytes > maxMessageBytes) {
      throw new PayloadTooLargeError(`The message is ${bytes} bytes; the limit is ${maxMessageBytes}`, {
        extensions: { limit: maxMessageBytes },
      });
    }
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new BadRequestError("The message is not valid JSON");
    }
    const parsed = v.safeParse(ChatMessageSchema, json);
    if (!parsed.success) {
      throw new BadRequestError(
        parsed.issues.map((issue) => `${v.getDotPath(issue) ?? "message"}: ${issue.message}`).join("; "),
      );
    }
    const message = parsed.output;
    const { connectionId } = event.requestContext;
    const connection = await connections.get(connectionId);
    if (!connection) throw new GoneError("This connection is not registered any more; reconnect");
    // The plan is the $connect authorizer's, which API Gateway hands every message of the connection.
    const plan = event.requestContext.authorizer?.plan;
    annotateCaller(context, {
      principal: connection.principal,
      ...(typeof plan === "string" ? { plan } : {}),
    });
    // The scopes the action needs (websocket.chat.scopes), from the token or key of the handshake.
    const granted = new Set(connection.scopes ?? []);
    const missing = gateway.websocket.chat.scopes[message.action].filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      throw new MissingScopeError(
        `${message.action} needs the scope(s) ${missing.join(" ")}; reconnect with them`,
        {
          extensions: { missing },
        },
      );
    }
    await checkRate(connectionId, connection.principal, context.getRemainingTimeInMillis?.() ?? 28_000);

    const reply = (type: string, data: Record<string, unknown>): WsResult => ({
      statusCode: 200,
      body: JSON.stringify(frame(type, { ...data, ...(message.ref ? { ref: message.ref } : {}) })),
    });

    switch (message.action) {
      case "join": {
        try {
          const rooms = await chat.join(connection, message.room);
          return reply("joined", { room: message.room, rooms });
        } catch (error) {
          if (error instanceof RoomLimitError) throw new RoomLimitReachedError(error.message);
          throw error;
        }
      }
      case "leave": {
        const rooms = await chat.leave(connectionId, message.room);
        return reply("left", { room: message.room, rooms });
      }
      case "send": {
        if (!connection.rooms?.has(message.room)) {
          throw new NotAMemberError(`Join ${message.room} before sending to it`);
        }
        const published = await chat.publish(
          message.room,
          { from: connection.principal, text: message.text, data: message.data },
          { signal: broadcastBudget(context) },
        );
        return reply("sent", { room: message.room, ...delivery(published) });
      }
      case "direct": {
        const published = await chat.direct(
          { from: connection.principal, to: message.to, text: message.text, data: message.data },
          { signal: broadcastBudget(context) },
        );
        return reply("sent", { to: message.to, ...delivery(published) });
      }
      case "rooms":
        return reply("rooms", {
          joined: [...(connection.rooms ?? [])].sort(),
          active: await chat.activeRooms(),
        });
      case "members":
        return reply("members", { room: message.room, members: await chat.members(message.room) });
      case "history": {
        const partition = message.room ?? inboxOf(connection.principal);
        const page = await chat.history(partition, {
          since: message.since,
          after: message.after,
          limit: message.limit ?? DEFAULT_HISTORY_LIMIT,
        });
        const where = message.room ? { room: message.room } : { inbox: true };
        return reply("history", { ...where, ...fitReply(page.messages, page.hasMore, page.cursor) });
      }
    }
  });
}

/** What a `sent` answer tells the sender: the stored message's id and how far it got. */
const delivery = ({ message, report }: Published) => ({
  messageId: message.messageId,
  recipients: report.recipients,
  delivered: report.delivered,
});

/**
 * History frames, as many as fit in one WebSocket message: past the budget the page ends early, with
 * `hasMore` and a cursor at the last message included.
 */
function fitReply(messages: StoredMessage[], hasMore: boolean, cursor: string | null) {
  const frames = [];
  let bytes = 512;
  for (const message of messages) {
    const item = messageFrame(message);
    bytes += Buffer.byteLength(JSON.stringify(item)) + 1;
    if (bytes > REPLY_BUDGET_BYTES && frames.length > 0) {
      return { messages: frames, hasMore: true, cursor: frames.at(-1)?.messageId as string };
    }
    frames.push(item);
  }
  return { messages: frames, hasMore, cursor };
}

const gateway = gatewayAtStart(env.stage);
const limiter = gateway.limits
  ? createLimiter({ client: createLimiterDocumentClient(), tableName: env.usageTable })
  : undefined;
const client = createDocumentClient();
/** One chain per management endpoint: in practice one, the API this function serves. */
const handlers = new Map<string, ReturnType<typeof createChatHandler>>();
function handlerFor(endpoint: string) {
  let handler = handlers.get(endpoint);
  if (!handler) {
    // Read here, not at import: the tables are needed only once a message comes.
    const tables = {
      connections: env.connectionsTable,
      roomMembers: env.roomMembersTable,
      messages: env.messagesTable,
    };
    const { chat, connections } = createChatRuntime({ gateway, client, tables, endpoint });
    handler = createChatHandler({ gateway, chat, connections, limiter });
    handlers.set(endpoint, handler);
  }
  return handler;
}

/** The endpoint comes from the event's API id and stage (see shared/ws/endpoint.ts). */
export const handler = (event: WsEvent, context: Context) =>
  handlerFor(
    managementEndpoint({
      given: env.websocketEndpoint,
      region: env.region,
      ...(event.requestContext as { apiId: string; stage: string }),
    }),
  )(event, context as GatehouseContext);
