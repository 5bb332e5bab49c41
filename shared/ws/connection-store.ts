import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { isConditionFailure, queryAll } from "../clients/dynamodb.ts";

/** API Gateway closes a WebSocket after 2 hours; the record lives a little longer, then expires. */
export const CONNECTION_TTL_SECONDS = 2 * 60 * 60 + 10 * 60;

export interface Connection {
  connectionId: string;
  principal: string;
  connectedAt: number;
  /** Epoch seconds; DynamoDB TTL deletes lazily (up to ~48 h late), so reads check it too. */
  expiresAt: number;
  sourceIp?: string;
  userAgent?: string;
  /** The scopes of the token or key the connection was opened with (what chat actions may need). */
  scopes?: string[];
  /** The rooms this connection has joined (a string set; absent when none). */
  rooms?: Set<string>;
}

export interface ConnectionStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Clock in milliseconds; injectable for tests. */
  now?: () => number;
}

/** The connection has no live record (never had one, closed, or expired). */
export class ConnectionGoneError extends Error {
  override readonly name = "ConnectionGoneError";
}

/** Joining one more room would pass the connection's limit. */
export class RoomLimitError extends Error {
  override readonly name = "RoomLimitError";
  constructor(readonly max: number) {
    super(`A connection may be in at most ${max} rooms; leave one first`);
  }
}

/**
 * The connections table: one item per open WebSocket, keyed by connection id, with the set of rooms
 * it has joined. The `byPrincipal` index finds a user's connections for direct messages.
 */
export function connectionStore({ client, tableName, now = Date.now }: ConnectionStoreOptions) {
  const live = (connection: Connection | undefined) =>
    connection && connection.expiresAt * 1000 > now() ? connection : undefined;

  /** The live record, or undefined if there is none or it has expired. */
  async function get(connectionId: string): Promise<Connection | undefined> {
    const { Item } = await client.send(
      new GetCommand({ TableName: tableName, Key: { connectionId }, ConsistentRead: true }),
    );
    return live(Item as Connection | undefined);
  }

  return {
    get,

    /** Records a new connection. A second record for the same id is refused, not overwritten. */
    async put(input: Omit<Connection, "connectedAt" | "expiresAt" | "rooms">): Promise<Connection> {
      const connectedAt = now();
      const item: Connection = {
        ...input,
        connectedAt,
        expiresAt: Math.floor(connectedAt / 1000) + CONNECTION_TTL_SECONDS,
      };
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: item,
          ConditionExpression: "attribute_not_exists(connectionId)",
        }),
      );
      return item;
    },

    /**
     * Adds `room` to the connection's rooms in one conditional write: the record must be live and
     * either already hold the room or hold fewer than `max`. Returns the rooms after the change.
     */
    async addRoom(connectionId: string, room: string, max: number): Promise<string[]> {
      try {
        const { Attributes } = await client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { connectionId },
            UpdateExpression: "ADD #rooms :room",
            ConditionExpression:
              "attribute_exists(connectionId) AND expiresAt > :now AND " +
              "(attribute_not_exists(#rooms) OR contains(#rooms, :name) OR size(#rooms) < :max)",
            ExpressionAttributeNames: { "#rooms": "rooms" },
            ExpressionAttributeValues: {
              ":room": new Set([room]),
              ":name": room,
              ":max": max,
              ":now": Math.floor(now() / 1000),
            },
            ReturnValues: "ALL_NEW",
          }),
        );
        return [...((Attributes as Connection).rooms ?? [])].sort();
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        // The refusal does not say which condition failed; one read tells "gone" from "full".
        if (!(await get(connectionId))) throw new ConnectionGoneError("The connection is closed");
        throw new RoomLimitError(max);
      }
    },

    /** Removes `room` from the connection's rooms; returns the rooms left (none if the record is gone). */
    async removeRoom(connectionId: string, room: string): Promise<string[]> {
      try {
        const { Attributes } = await client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { connectionId },
            UpdateExpression: "DELETE #rooms :room",
            ConditionExpression: "attribute_exists(connectionId)",
            ExpressionAttributeNames: { "#rooms": "rooms" },
            ExpressionAttributeValues: { ":room": new Set([room]) },
            ReturnValues: "ALL_NEW",
          }),
        );
        return [...((Attributes as Connection).rooms ?? [])].sort();
      } catch (error) {
        if (isConditionFailure(error)) return [];
        throw error;
      }
    },

    /** The live connections of a principal (all its tabs and devices). */
    async ofPrincipal(principal: string): Promise<Connection[]> {
      const items = await queryAll(client, {
        TableName: tableName,
        IndexName: "byPrincipal",
        KeyConditionExpression: "principal = :p",
        ExpressionAttributeValues: { ":p": principal },
      });
      return items.flatMap((item) => live(item as unknown as Connection) ?? []);
    },

    /** Deletes the record; returns it as it was (with its rooms), or undefined if there was none. */
    async remove(connectionId: string): Promise<Connection | undefined> {
      const { Attributes } = await client.send(
        new DeleteCommand({ TableName: tableName, Key: { connectionId }, ReturnValues: "ALL_OLD" }),
      );
      return Attributes as Connection | undefined;
    },
  };
}

export type ConnectionStore = ReturnType<typeof connectionStore>;
