import * as v from "valibot";
import { CHAT_ACTIONS, type ChatAction } from "../ws/protocol.ts";
import { IpRulesSchema, RouteAuthSchema } from "./auth.ts";
import { described, int, scope, strict } from "./fields.ts";

/** WebSocket: who may connect (`$connect`), how many connections a principal holds, and chat rooms. */

const connectEntries = {
  auth: RouteAuthSchema,
  ipRules: described(
    v.optional(IpRulesSchema, { allow: [], deny: [] }),
    "Extra IP rules for `$connect`, on top of the global ones.",
  ),
};
/** `$connect` is answered by the connect function: it takes who may connect, nothing an HTTP route has. */
const ConnectSchema = described(
  v.strictObject(connectEntries, (issue) =>
    issue.expected === "never"
      ? `$connect takes auth and ipRules only (it has no ${String(issue.input)}: message rates are limits.websocket, sizes websocket.chat); remove ${String(issue.input)}`
      : "websocket.connect is { auth, ipRules }",
  ),
  "Who may open a WebSocket (`$connect`): its auth and IP rules.",
);
export type ConnectConfig = v.InferOutput<typeof ConnectSchema>;

/** Scopes each chat action needs (from the token or key the connection was opened with). */
const CHAT_SCOPE_DEFAULTS: Record<ChatAction, string[]> = {
  join: [],
  leave: [],
  send: ["chat:write"],
  direct: ["chat:write"],
  rooms: [],
  members: [],
  history: [],
};
const ChatScopesSchema = v.strictObject(
  Object.fromEntries(
    CHAT_ACTIONS.map((action) => [action, v.optional(v.array(scope), CHAT_SCOPE_DEFAULTS[action])]),
  ) as Record<ChatAction, v.OptionalSchema<v.ArraySchema<typeof scope, undefined>, string[]>>,
);

const ChatSchema = v.strictObject({
  maxMessageBytes: described(
    v.optional(int(256, 127 * 1024), 32 * 1024),
    "The whole incoming JSON message, counted before any other work. API Gateway refuses a WebSocket frame over 128 KB, and a message is sent on wrapped in a frame of about 400 bytes, so it stays under 127 KiB.",
  ),
  maxRoomsPerConnection: described(v.optional(int(1, 100), 20), "Rooms one connection may be in at once."),
  historyDays: described(
    v.optional(int(1, 365), 7),
    "Room and inbox history is kept this long (DynamoDB TTL), then expires.",
  ),
  fanoutConcurrency: described(
    v.optional(int(1, 256), 32),
    "PostToConnection calls in flight at once during one fan-out.",
  ),
  scopes: described(
    v.optional(ChatScopesSchema, CHAT_SCOPE_DEFAULTS),
    "Scopes each action needs, per action (an action left out keeps its default): `send` and `direct` need `chat:write`, the others nothing beyond an admitted connection.",
  ),
});

export const WebSocketSchema = described(
  v.optional(
    strict("websocket", {
      connect: ConnectSchema,
      maxConnectionsPerPrincipal: described(
        v.optional(int(1, 1_000), 10),
        "Live WebSocket connections one principal may hold at once (every tab and device), counted exactly at `$connect`; one more is refused with 429 in the handshake.",
      ),
      chat: described(
        v.optional(ChatSchema, {}),
        "Chat rooms: limits, history and fan-out (the rates are `limits.websocket`).",
      ),
    }),
    {
      connect: { auth: "public", ipRules: { allow: [], deny: [] } },
      maxConnectionsPerPrincipal: 10,
      chat: {},
    },
  ),
  "The WebSocket API: `$connect`, connections and chat.",
);
