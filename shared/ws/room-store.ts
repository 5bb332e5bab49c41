import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DeleteCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { deleteAll, queryAll } from "../clients/dynamodb.ts";

/** One connection in one room; it expires with the connection. */
export interface Membership {
  room: string;
  connectionId: string;
  principal: string;
  joinedAt: number;
  /** Epoch seconds, the connection's own expiry. */
  expiresAt: number;
}

export interface RoomSummary {
  room: string;
  lastJoinAt: string;
}

/**
 * The room directory shares the table: partition `$rooms` (not a legal room name), one item per room,
 * sort key the room name, rewritten on every join and kept a day after the last one.
 */
const DIRECTORY = "$rooms";
const DIRECTORY_TTL_SECONDS = 24 * 60 * 60;

export interface RoomStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  now?: () => number;
}

/** The room-members table: partition = room, sort key = connection id (fan-out reads one partition). */
export function roomStore({ client, tableName, now = Date.now }: RoomStoreOptions) {
  return {
    /** Adds the membership (idempotent) and marks the room active in the directory. */
    async join(membership: Membership): Promise<void> {
      const nowMs = now();
      await Promise.all([
        client.send(new PutCommand({ TableName: tableName, Item: membership })),
        client.send(
          new PutCommand({
            TableName: tableName,
            Item: {
              room: DIRECTORY,
              connectionId: membership.room,
              lastJoinAt: new Date(nowMs).toISOString(),
              expiresAt: Math.floor(nowMs / 1000) + DIRECTORY_TTL_SECONDS,
            },
          }),
        ),
      ]);
    },

    async leave(room: string, connectionId: string): Promise<void> {
      await client.send(new DeleteCommand({ TableName: tableName, Key: { room, connectionId } }));
    },

    /** Deletes a connection's memberships in the given rooms (at most 25 per batch; unprocessed retried). */
    async leaveAll(connectionId: string, rooms: Iterable<string>): Promise<void> {
      await deleteAll(
        client,
        tableName,
        [...rooms].map((room) => ({ room, connectionId })),
        "membership",
      );
    },

    /** The live memberships of a room, read consistently (a join just acknowledged is included). */
    async members(room: string): Promise<Membership[]> {
      const nowSeconds = Math.floor(now() / 1000);
      const items = (await queryAll(client, {
        TableName: tableName,
        KeyConditionExpression: "room = :room",
        ExpressionAttributeValues: { ":room": room },
        ConsistentRead: true,
      })) as unknown as Membership[];
      return items.filter((item) => item.expiresAt > nowSeconds);
    },

    /** Rooms someone joined in the last day, most recent first (at most `limit`). */
    async active(limit = 100): Promise<RoomSummary[]> {
      const nowSeconds = Math.floor(now() / 1000);
      const items = await queryAll(client, {
        TableName: tableName,
        KeyConditionExpression: "room = :room",
        ExpressionAttributeValues: { ":room": DIRECTORY },
      });
      return items
        .filter((item) => (item.expiresAt as number) > nowSeconds)
        .map((item) => ({ room: item.connectionId as string, lastJoinAt: item.lastJoinAt as string }))
        .sort((a, b) => b.lastJoinAt.localeCompare(a.lastJoinAt))
        .slice(0, limit);
    },
  };
}

export type RoomStore = ReturnType<typeof roomStore>;
