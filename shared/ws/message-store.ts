import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { PutCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { decodeTime, encodeTime, monotonicFactory } from "ulid";
import { HISTORY_OVERLAP_MS } from "./protocol.ts";

/**
 * A stored message. `room` is the partition: a room name, or `@<principal>` for that principal's
 * direct-message inbox (`@` cannot start a room name). `messageId` is a ULID, so a partition reads
 * back in time order.
 */
export interface StoredMessage {
  room: string;
  messageId: string;
  from: string;
  text: string;
  data?: Record<string, unknown>;
  /** For direct messages: the principal it was sent to. */
  to?: string;
  sentAt: string;
  expiresAt: number;
}

export const inboxOf = (principal: string) => `@${principal}`;

export interface HistoryPage {
  messages: StoredMessage[];
  /** More messages after the last one returned: ask again with `since` = `cursor`. */
  hasMore: boolean;
  /** Where the next page starts (exclusive): the last message read, or null for an empty room. */
  cursor: string | null;
}

export interface MessageStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** How long history is kept (DynamoDB TTL; reads also skip expired items). */
  retentionDays: number;
  now?: () => number;
}

/** The messages table: history per room and per inbox, written before any fan-out. */
export function messageStore({ client, tableName, retentionDays, now = Date.now }: MessageStoreOptions) {
  // Monotonic within this container: two messages in one millisecond still sort in send order.
  const nextId = monotonicFactory();

  return {
    /** Stores a message and returns it; the id is new and never overwrites another. */
    async append(input: Omit<StoredMessage, "messageId" | "sentAt" | "expiresAt">): Promise<StoredMessage> {
      const nowMs = now();
      const message: StoredMessage = {
        ...input,
        messageId: nextId(nowMs),
        sentAt: new Date(nowMs).toISOString(),
        expiresAt: Math.floor(nowMs / 1000) + retentionDays * 86_400,
      };
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: message,
          ConditionExpression: "attribute_not_exists(messageId)",
        }),
      );
      return message;
    },

    /**
     * Messages of a partition in time order. Without `since`: the latest `limit`. With `since`: from
     * `HISTORY_OVERLAP_MS` before that id's time onwards, `limit` at a time (see protocol.ts).
     */
    async history(
      room: string,
      { since, after, limit }: { since?: string; after?: string; limit: number },
    ): Promise<HistoryPage> {
      const nowSeconds = Math.floor(now() / 1000);
      const unexpired = (items: Record<string, unknown>[] | undefined) =>
        ((items ?? []) as unknown as StoredMessage[]).filter((item) => item.expiresAt > nowSeconds);
      if (since === undefined && after === undefined) {
        const page = await client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: "room = :room",
            ExpressionAttributeValues: { ":room": room },
            ScanIndexForward: false,
            Limit: limit,
            ConsistentRead: true,
          }),
        );
        const messages = unexpired(page.Items).reverse();
        return { messages, hasMore: false, cursor: messages.at(-1)?.messageId ?? null };
      }
      // `after` pages on from exactly there; `since` starts at the lowest id of its overlap window
      // (the window's time part, then the smallest random part).
      const from =
        after ??
        `${encodeTime(Math.max(0, decodeTime(since as string) - HISTORY_OVERLAP_MS), 10)}${"0".repeat(16)}`;
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: `room = :room AND messageId ${after ? ">" : ">="} :from`,
          ExpressionAttributeValues: { ":room": room, ":from": from },
          Limit: limit,
          ConsistentRead: true,
        }),
      );
      const messages = unexpired(page.Items);
      return {
        messages,
        hasMore: page.LastEvaluatedKey !== undefined,
        cursor:
          (page.LastEvaluatedKey?.messageId as string | undefined) ??
          messages.at(-1)?.messageId ??
          after ??
          since ??
          null,
      };
    },
  };
}

export type MessageStore = ReturnType<typeof messageStore>;
