import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DeleteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";

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
}

export interface ConnectionStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Clock in milliseconds; injectable for tests. */
  now?: () => number;
}

/** The connections table: one item per open WebSocket, keyed by connection id. */
export function connectionStore({ client, tableName, now = Date.now }: ConnectionStoreOptions) {
  return {
    /** Records a new connection. A second record for the same id is refused, not overwritten. */
    async put(input: Omit<Connection, "connectedAt" | "expiresAt">): Promise<Connection> {
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

    /** The live record, or undefined if there is none or it has expired. */
    async get(connectionId: string): Promise<Connection | undefined> {
      const { Item } = await client.send(
        new GetCommand({ TableName: tableName, Key: { connectionId }, ConsistentRead: true }),
      );
      const connection = Item as Connection | undefined;
      if (!connection || connection.expiresAt * 1000 <= now()) return undefined;
      return connection;
    },

    /** Deletes the record; returns whether there was one. */
    async remove(connectionId: string): Promise<boolean> {
      const { Attributes } = await client.send(
        new DeleteCommand({ TableName: tableName, Key: { connectionId }, ReturnValues: "ALL_OLD" }),
      );
      return Attributes !== undefined;
    },
  };
}

export type ConnectionStore = ReturnType<typeof connectionStore>;
