import type { GatewayConfig } from "../config/gateway.ts";
import type { Connection, ConnectionStore } from "./connection-store.ts";
import { type FanoutKind, type FanoutReport, fanOut, type PostToConnection } from "./fanout.ts";
import { inboxOf, type MessageStore, type StoredMessage } from "./message-store.ts";
import type { ServerFrame } from "./protocol.ts";
import type { RoomStore } from "./room-store.ts";

type ChatConfig = GatewayConfig["websocket"]["chat"];

export interface ChatDependencies {
  connections: ConnectionStore;
  rooms: RoomStore;
  messages: MessageStore;
  post: PostToConnection;
  config: ChatConfig;
  now?: () => number;
}

export interface Published {
  message: StoredMessage;
  report: FanoutReport;
}

/**
 * The frame a stored message goes out as, live and in history alike: its `id` is the message id, so a
 * client that gets it twice (history overlap, a retried delivery) can tell.
 */
export function messageFrame(message: StoredMessage): ServerFrame {
  const { room, messageId, from, to, text, data, sentAt } = message;
  return to === undefined
    ? { type: "message", id: messageId, at: sentAt, room, messageId, from, text, data, sentAt }
    : { type: "direct", id: messageId, at: sentAt, to, messageId, from, text, data, sentAt };
}

/**
 * Forgets a connection: its record, and its memberships in the rooms the record lists plus `alsoRoom`
 * (where a fan-out just found it gone, in case the record itself is already gone). Used by
 * `$disconnect` and by fan-out on a 410.
 */
export async function forgetConnection(
  { connections, rooms }: { connections: ConnectionStore; rooms: RoomStore },
  connectionId: string,
  alsoRoom?: string,
): Promise<Connection | undefined> {
  const old = await connections.remove(connectionId);
  const roomsOf = new Set(old?.rooms ?? []);
  if (alsoRoom) roomsOf.add(alsoRoom);
  await rooms.leaveAll(connectionId, roomsOf);
  return old;
}

/**
 * Rooms, direct messages and history over the three chat tables. Every message is stored before it is
 * sent to anyone, so a recipient that misses the live frame finds it in history.
 */
export function createChat({ connections, rooms, messages, post, config, now = Date.now }: ChatDependencies) {
  const removeConnection = async (connectionId: string, alsoRoom?: string) => {
    await forgetConnection({ connections, rooms }, connectionId, alsoRoom);
  };

  return {
    /** Joins `room` (idempotent); refused past `maxRoomsPerConnection`. Returns the rooms joined. */
    async join(connection: Connection, room: string): Promise<string[]> {
      const joined = await connections.addRoom(connection.connectionId, room, config.maxRoomsPerConnection);
      await rooms.join({
        room,
        connectionId: connection.connectionId,
        principal: connection.principal,
        joinedAt: now(),
        expiresAt: connection.expiresAt,
      });
      return joined;
    },

    async leave(connectionId: string, room: string): Promise<string[]> {
      const left = await connections.removeRoom(connectionId, room);
      await rooms.leave(room, connectionId);
      return left;
    },

    /** Stores a message in a room's history, then sends it to every live member (the sender too). */
    async publish(
      room: string,
      input: { from: string; text: string; data?: Record<string, unknown> | undefined },
      { kind = "room", signal }: { kind?: FanoutKind; signal?: AbortSignal } = {},
    ): Promise<Published> {
      const message = await messages.append({ room, ...input });
      const members = await rooms.members(room);
      const report = await fanOut({
        post,
        connectionIds: members.map((member) => member.connectionId),
        payload: JSON.stringify(messageFrame(message)),
        concurrency: config.fanoutConcurrency,
        removeGone: (connectionId) => removeConnection(connectionId, room),
        kind,
        ...(signal ? { signal } : {}),
      });
      return { message, report };
    },

    /** Stores a direct message in the recipient's inbox, then sends it to each of their connections. */
    async direct(
      input: { from: string; to: string; text: string; data?: Record<string, unknown> | undefined },
      { signal }: { signal?: AbortSignal } = {},
    ): Promise<Published> {
      const message = await messages.append({ room: inboxOf(input.to), ...input });
      const targets = await connections.ofPrincipal(input.to);
      const report = await fanOut({
        post,
        connectionIds: targets.map((target) => target.connectionId),
        payload: JSON.stringify(messageFrame(message)),
        concurrency: config.fanoutConcurrency,
        removeGone: (connectionId) => removeConnection(connectionId),
        kind: "direct",
        ...(signal ? { signal } : {}),
      });
      return { message, report };
    },

    /** A room's members, one entry per principal with its number of connections. */
    async members(room: string): Promise<{ principal: string; connections: number }[]> {
      const counts = new Map<string, number>();
      for (const member of await rooms.members(room)) {
        counts.set(member.principal, (counts.get(member.principal) ?? 0) + 1);
      }
      return [...counts]
        .map(([principal, count]) => ({ principal, connections: count }))
        .sort((a, b) => a.principal.localeCompare(b.principal));
    },

    activeRooms: () => rooms.active(),

    history: (
      partition: string,
      options: { since?: string | undefined; after?: string | undefined; limit: number },
    ) =>
      messages.history(partition, {
        limit: options.limit,
        ...(options.since ? { since: options.since } : {}),
        ...(options.after ? { after: options.after } : {}),
      }),
  };
}

export type Chat = ReturnType<typeof createChat>;
