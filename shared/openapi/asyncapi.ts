import { toJsonSchema } from "@valibot/to-json-schema";
import type { GatewayConfig } from "../config/gateway.ts";
import { ACTIONS, type Action, ChatMessageSchema, HISTORY_OVERLAP_MS } from "../ws/protocol.ts";

/**
 * The WebSocket API as an AsyncAPI 3.0 document, made from the protocol (shared/ws/protocol.ts) and
 * the config (who may connect, the scopes each action needs, the message rates). A pure function.
 *
 * The client's messages are the protocol's own valibot schemas, converted to JSON Schema; the
 * server's frames are described here from the protocol's comment (they have no schema of their own).
 * One channel (the API's root; API Gateway routes on `action`), one `send` operation per action with
 * its reply, and two `receive` operations for the frames the server sends unasked.
 *
 * Example: `asyncApiDocument(loadGateway(definition, "local"), { title: "gatehouse", version: "1.0.0" })`.
 */

type Json = Record<string, unknown>;
type Config = Pick<GatewayConfig, "websocket" | "limits">;

export interface AsyncApiOptions {
  title: string;
  version: string;
  description?: string;
  /** Where clients connect: `{ host, pathname?, protocol }` by name (AsyncAPI 3.0 server objects). */
  servers?: Record<string, Json>;
}

const ref = (path: string) => ({ $ref: `#/${path}` });
const CHANNEL = "channels/gateway";
const msg = (name: string) => ref(`${CHANNEL}/messages/${name}`);

/** A client message's JSON Schema, from its valibot schema (checks across fields stay in the text). */
function clientPayload(action: Action): Json {
  if (action === "ping") {
    return {
      type: "object",
      properties: { action: { const: "ping" } },
      required: ["action"],
      additionalProperties: false,
    };
  }
  const option = ChatMessageSchema.options.find((schema) => {
    const object = "pipe" in schema ? schema.pipe[0] : schema;
    return object.entries.action.literal === action;
  });
  if (!option) throw new Error(`no schema for the ${action} action`);
  const { $schema: _, ...schema } = toJsonSchema(option, { errorMode: "ignore" }) as Json;
  const properties = schema.properties as Record<string, Json>;
  // `data` is a v.custom check the converter cannot see into: any JSON object.
  if (properties.data)
    properties.data = { type: "object", description: "Any JSON object, passed on as it is." };
  return schema;
}

const FRAME_BASE = {
  type: "object",
  required: ["type", "id", "at"],
  properties: {
    id: { type: "string", description: "Unique per frame; a message's id for message and direct frames." },
    at: { type: "string", description: "When the frame was made (ISO-8601)." },
    ref: { type: "string", description: "The ref of the message this answers, when it had one." },
  },
};

const messageObject = {
  type: "object",
  required: ["messageId", "from", "text", "sentAt"],
  properties: {
    messageId: { type: "string", description: "A ULID: time-ordered, the history cursor." },
    room: { type: "string" },
    to: { type: "string" },
    from: { type: "string", description: "The sender's principal." },
    text: { type: "string" },
    data: { type: "object" },
    sentAt: { type: "string" },
  },
};

/** A server frame's schema: the common members plus its own. */
function frame(type: string, own: Record<string, Json>, required: string[] = []): Json {
  return {
    ...FRAME_BASE,
    required: [...FRAME_BASE.required, ...required],
    properties: { type: { const: type }, ...FRAME_BASE.properties, ...own },
  };
}

const delivery = {
  messageId: { type: "string" },
  recipients: { type: "integer", description: "Connections the message was sent to." },
  delivered: { type: "integer", description: "Connections that took it." },
};

const SERVER_FRAMES: Record<string, Json> = {
  pong: frame("pong", { requestId: { type: "string" } }),
  joined: frame("joined", { room: { type: "string" }, rooms: { type: "array", items: { type: "string" } } }, [
    "room",
    "rooms",
  ]),
  left: frame("left", { room: { type: "string" }, rooms: { type: "array", items: { type: "string" } } }, [
    "room",
    "rooms",
  ]),
  sent: frame("sent", { room: { type: "string" }, to: { type: "string" }, ...delivery }, ["messageId"]),
  rooms: frame(
    "rooms",
    {
      joined: { type: "array", items: { type: "string" } },
      active: {
        type: "array",
        items: { type: "object", properties: { room: { type: "string" }, lastJoinAt: { type: "string" } } },
      },
    },
    ["joined", "active"],
  ),
  members: frame(
    "members",
    {
      room: { type: "string" },
      members: {
        type: "array",
        items: {
          type: "object",
          properties: { principal: { type: "string" }, connections: { type: "integer" } },
        },
      },
    },
    ["room", "members"],
  ),
  history: frame(
    "history",
    {
      room: { type: "string" },
      inbox: { const: true },
      messages: { type: "array", items: messageObject },
      hasMore: { type: "boolean", description: "Ask again with `after` = `cursor` for the next page." },
      cursor: { type: "string" },
    },
    ["messages", "hasMore"],
  ),
  message: frame("message", messageObject.properties, [...messageObject.required, "room"]),
  direct: frame("direct", messageObject.properties, [...messageObject.required, "to"]),
  error: frame(
    "error",
    {
      error: {
        type: "object",
        required: ["code", "status", "message"],
        properties: { code: { type: "string" }, status: { type: "integer" }, message: { type: "string" } },
      },
      action: { type: "string" },
      requestId: { type: "string" },
    },
    ["error"],
  ),
};

/** The reply frame of each action. */
const REPLY: Record<Action, string> = {
  ping: "pong",
  join: "joined",
  leave: "left",
  send: "sent",
  direct: "sent",
  rooms: "rooms",
  members: "members",
  history: "history",
};

const SUMMARY: Record<Action, string> = {
  ping: "Check the connection.",
  join: "Join a room: its messages arrive as message frames.",
  leave: "Leave a room.",
  send: "Send a message to a room's connections.",
  direct: "Send a message to every connection of a principal.",
  rooms: "The rooms this connection joined, and the active ones.",
  members: "Who is in a room.",
  history: `A room's (or the inbox's) messages: the latest, or from \`since\` (starting ${HISTORY_OVERLAP_MS / 1000} s before it: drop repeats by id), or \`after\` a cursor.`,
};

export function asyncApiDocument(config: Config, options: AsyncApiOptions): Json {
  const connect = config.websocket.connect.auth;
  const scopes = (action: Action): string[] =>
    action === "ping" ? [] : [...(config.websocket.chat.scopes[action] ?? [])];
  const rates = config.limits?.websocket;
  const rateText = [
    rates?.perConnection &&
      `${rates.perConnection.perSecond}/s (burst ${rates.perConnection.burst}) per connection`,
    rates?.perPrincipal &&
      `${rates.perPrincipal.perSecond}/s (burst ${rates.perPrincipal.burst}) per principal`,
  ]
    .filter(Boolean)
    .join(", ");

  const messages: Json = {};
  for (const action of ACTIONS) {
    messages[action] = { name: action, title: `${action} (client)`, payload: clientPayload(action) };
  }
  for (const [type, payload] of Object.entries(SERVER_FRAMES)) {
    messages[`${type}Frame`] = { name: type, title: `${type} (server)`, payload };
  }

  const operations: Json = {};
  for (const action of ACTIONS) {
    const needed = scopes(action);
    operations[action] = {
      action: "send",
      channel: ref(CHANNEL),
      summary: SUMMARY[action],
      ...(needed.length > 0
        ? {
            description: `Needs the scope${needed.length > 1 ? "s" : ""} ${needed.join(", ")}.`,
            "x-gatehouse-scopes": needed,
          }
        : {}),
      messages: [msg(action)],
      reply: { channel: ref(CHANNEL), messages: [msg(`${REPLY[action]}Frame`), msg("errorFrame")] },
    };
  }
  operations.receiveMessage = {
    action: "receive",
    channel: ref(CHANNEL),
    summary: "A message in a room this connection joined.",
    messages: [msg("messageFrame")],
  };
  operations.receiveDirect = {
    action: "receive",
    channel: ref(CHANNEL),
    summary: "A direct message to this connection's principal.",
    messages: [msg("directFrame")],
  };

  const security =
    connect === "public"
      ? []
      : [ref("components/securitySchemes/queryToken"), ref("components/securitySchemes/bearerHeader")];
  const servers = Object.fromEntries(
    Object.entries(options.servers ?? {}).map(([name, server]) => [name, { ...server, security }]),
  );
  return {
    asyncapi: "3.0.0",
    info: {
      title: `${options.title} WebSocket API`,
      version: options.version,
      description: [
        options.description ?? "",
        "Generated from shared/ws/protocol.ts and gateway.config.ts. Send JSON objects with an `action`; every frame the server sends has `type`, `id` and `at`.",
        `Opening a connection ${connect === "public" ? "needs no credential" : "needs a credential: a JWT in the `token` query parameter, as a subprotocol beside `gatehouse.v1` (browsers), or in `Authorization`; or an API key in `x-api-key`"}. A principal holds at most ${config.websocket.maxConnectionsPerPrincipal} connections (429 in the handshake past that).`,
        rateText ? `Messages are limited to ${rateText}; past that the answer is an error frame (429).` : "",
        `A message is at most ${config.websocket.chat.maxMessageBytes} bytes.`,
      ]
        .filter(Boolean)
        .join("\n\n"),
    },
    defaultContentType: "application/json",
    ...(options.servers ? { servers } : {}),
    channels: {
      gateway: {
        address: "/",
        title: "The WebSocket API (API Gateway routes each message on its `action`)",
        messages,
      },
    },
    operations,
    components: {
      securitySchemes: {
        queryToken: {
          type: "httpApiKey",
          name: "token",
          in: "query",
          description: "A JWT (or an API key) in the `token` query parameter of the handshake.",
        },
        bearerHeader: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "A JWT in the handshake's Authorization header (not for browsers).",
        },
      },
    },
  };
}
