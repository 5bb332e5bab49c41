import { randomUUID } from "node:crypto";
import * as v from "valibot";

/**
 * The WebSocket protocol. Clients send JSON objects `{ "action": "...", ... }`; API Gateway routes on
 * `$request.body.action`. Every action here has a route of the same name in serverless.yml (a test
 * keeps the two in step); anything else lands on `$default`, which answers an `error` frame listing
 * these actions.
 *
 * Client → server (`ref` is optional everywhere: a string the reply echoes, to match answers to asks):
 *   { action: "ping" }                                      → pong
 *   { action: "join",    room }                             → joined   { room, rooms }
 *   { action: "leave",   room }                             → left     { room, rooms }
 *   { action: "send",    room, text, data? }                → sent     { room, messageId, recipients, delivered }
 *   { action: "direct",  to, text, data? }                  → sent     { to, messageId, recipients, delivered }
 *   { action: "rooms" }                                     → rooms    { joined: [room], active: [{ room, lastJoinAt }] }
 *   { action: "members", room }                             → members  { room, members: [{ principal, connections }] }
 *   { action: "history", room | inbox: true, since? | after?, limit? }
 *                                                         → history  { room | inbox, messages: [message], hasMore, cursor }
 *
 * Server → client, unasked:
 *   message { room, messageId, from, text, data?, sentAt }  a message in a room this connection joined
 *   direct  { to, messageId, from, text, data?, sentAt }    a direct message to this connection's principal
 *
 * Every frame has `type`, a unique `id` and `at` (ISO-8601). For `message` and `direct` frames, `id`
 * is the message id, the same for every recipient and in history, so a client drops a frame it has
 * already shown. Errors are `{ type: "error", error: { code, status, message }, action?, ref?, requestId }`.
 *
 * Catch-up: message ids are ULIDs (time-ordered). A client remembers the last id it saw per room and,
 * after a reconnect, sends `history` with `since` = that id. The answer starts a few seconds before
 * the cursor (`HISTORY_OVERLAP_MS`: messages written by another container whose clock is a little
 * behind sort before ids already delivered), so it may repeat messages the client has; drop them by id.
 * `hasMore` means ask again with `after` = `cursor` (exclusive, no overlap) for the next page.
 * Without `since` or `after`, `history` answers the latest `limit` messages (default 50).
 */
export const ACTIONS = ["ping", "join", "leave", "send", "direct", "rooms", "members", "history"] as const;
export type Action = (typeof ACTIONS)[number];

/** The chat actions, handled by one function (`wsChat`); `ping` has its own. */
export const CHAT_ACTIONS = ["join", "leave", "send", "direct", "rooms", "members", "history"] as const;
export type ChatAction = (typeof CHAT_ACTIONS)[number];

/** How far before a `since` cursor a history read starts (see above). */
export const HISTORY_OVERLAP_MS = 5_000;

/** A server event: every frame the server sends has a type, a unique id and a timestamp. */
export interface ServerFrame {
  type: string;
  id: string;
  at: string;
  [key: string]: unknown;
}

/** Example: `frame("pong", { requestId })` → `{ type: "pong", id: "…", at: "2026-…Z", requestId }`. */
export function frame(type: string, data: Record<string, unknown> = {}): ServerFrame {
  return { ...data, type, id: randomUUID(), at: new Date().toISOString() };
}

/** Room names: what a URL path segment and a DynamoDB key take without escaping. */
export const ROOM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const roomName = v.pipe(
  v.string("room must be a string"),
  v.regex(ROOM_NAME, "room is 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"),
);
const principal = v.pipe(
  v.string("to must be a string"),
  v.minLength(1, "to must name a principal"),
  v.maxLength(256, "to is at most 256 characters"),
);
const ref = v.optional(v.pipe(v.string(), v.maxLength(64, "ref is at most 64 characters")));
const text = v.pipe(v.string("text must be a string"), v.minLength(1, "text must not be empty"));
// v.custom, not v.record: a record schema would take an array and turn it into an object.
const data = v.optional(
  v.custom<Record<string, unknown>>(
    (value) => typeof value === "object" && value !== null && !Array.isArray(value),
    "data must be a JSON object",
  ),
);
/** A message id (a ULID): the history cursors `since` and `after`. */
export const MESSAGE_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const messageId = v.pipe(v.string(), v.regex(MESSAGE_ID, "a cursor is a message id"));
const limit = v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)));

/** The body of each chat action, after `action` has routed it. Unknown members are refused. */
export const ChatMessageSchema = v.variant("action", [
  v.strictObject({ action: v.literal("join"), room: roomName, ref }),
  v.strictObject({ action: v.literal("leave"), room: roomName, ref }),
  v.strictObject({ action: v.literal("send"), room: roomName, text, data, ref }),
  v.strictObject({ action: v.literal("direct"), to: principal, text, data, ref }),
  v.strictObject({ action: v.literal("rooms"), ref }),
  v.strictObject({ action: v.literal("members"), room: roomName, ref }),
  v.pipe(
    v.strictObject({
      action: v.literal("history"),
      room: v.optional(roomName),
      inbox: v.optional(v.literal(true)),
      since: v.optional(messageId),
      after: v.optional(messageId),
      limit,
      ref,
    }),
    v.check(
      (m) => (m.room === undefined) !== (m.inbox === undefined),
      "history takes a room, or inbox: true",
    ),
    v.check((m) => m.since === undefined || m.after === undefined, "history takes since or after, not both"),
  ),
]);
