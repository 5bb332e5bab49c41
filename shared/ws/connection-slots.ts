import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  UpdateCommand,
} from "@aws-sdk/lib-dynamodb";
import { isConditionFailure } from "../clients/dynamodb.ts";
import { CONNECTION_TTL_SECONDS } from "./connection-store.ts";

/**
 * How many WebSocket connections a principal holds at once, counted exactly: one item per principal
 * in the usage table (`pk = conns#<principal>`, `sk = live`) whose `ids` string set holds its
 * connection ids. `$connect` adds the id with one conditional write (`size(ids) < max`), so N
 * handshakes at once for a principal with room for R admit exactly R; `$disconnect` removes it.
 *
 * `$disconnect` is best effort on API Gateway, so a set can hold ids that are gone. When a
 * reservation is refused, the ids are checked against the connections table (one consistent batch
 * read): an id whose record is missing or expired is gone (a 410 on a send deletes records too) and
 * is dropped before one more try. A connection's record is written before its slot is taken, so an
 * id being admitted right now always has its record and is never dropped by another's check.
 */
export interface ConnectionSlotsOptions {
  client: DynamoDBDocumentClient;
  /** The usage table (counters). */
  usageTable: string;
  /** The connections table, to tell live ids from gone ones. */
  connectionsTable: string;
  now?: () => number;
}

/** The principal already holds its maximum of live connections. */
export class TooManyConnectionsError extends Error {
  override readonly name = "TooManyConnectionsError";
  constructor(readonly max: number) {
    super(`This user already has ${max} open connections (the most allowed); close one first`);
  }
}

export function connectionSlots({
  client,
  usageTable,
  connectionsTable,
  now = Date.now,
}: ConnectionSlotsOptions) {
  const key = (principal: string) => ({ pk: `conns#${principal}`, sk: "live" });

  /** One conditional add; resolves with the ids held after it, or undefined when it is full. */
  async function tryAdd(principal: string, connectionId: string, max: number): Promise<string[] | undefined> {
    try {
      const { Attributes } = await client.send(
        new UpdateCommand({
          TableName: usageTable,
          Key: key(principal),
          UpdateExpression: "ADD #ids :id SET #e = :e",
          ConditionExpression: "attribute_not_exists(#ids) OR size(#ids) < :max OR contains(#ids, :name)",
          ExpressionAttributeNames: { "#ids": "ids", "#e": "expiresAt" },
          ExpressionAttributeValues: {
            ":id": new Set([connectionId]),
            ":name": connectionId,
            ":max": max,
            ":e": Math.floor(now() / 1000) + CONNECTION_TTL_SECONDS,
          },
          ReturnValues: "ALL_NEW",
        }),
      );
      return [...((Attributes?.ids as Set<string> | undefined) ?? [])];
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw error;
    }
  }

  /** The ids counted for a principal now. */
  async function held(principal: string): Promise<string[]> {
    const { Item } = await client.send(
      new GetCommand({ TableName: usageTable, Key: key(principal), ConsistentRead: true }),
    );
    return [...((Item?.ids as Set<string> | undefined) ?? [])].sort();
  }

  /** The ids in the principal's set whose connection record is missing or expired. */
  async function goneIds(principal: string): Promise<string[]> {
    const ids = await held(principal);
    if (ids.length === 0) return [];
    const live = new Set<string>();
    // At most `max` ids (1,000 at the very most): batches of 100, as BatchGetItem takes.
    for (let i = 0; i < ids.length; i += 100) {
      const batch = await client.send(
        new BatchGetCommand({
          RequestItems: {
            [connectionsTable]: {
              Keys: ids.slice(i, i + 100).map((connectionId) => ({ connectionId })),
              ConsistentRead: true,
              ProjectionExpression: "connectionId, expiresAt",
            },
          },
        }),
      );
      for (const item of batch.Responses?.[connectionsTable] ?? []) {
        if (typeof item.expiresAt === "number" && item.expiresAt * 1000 > now())
          live.add(String(item.connectionId));
      }
      // Unprocessed keys count as live: when in doubt, the slot is kept (refusing, not over-admitting).
      for (const unprocessed of batch.UnprocessedKeys?.[connectionsTable]?.Keys ?? [])
        live.add(String(unprocessed.connectionId));
    }
    return ids.filter((id) => !live.has(id));
  }

  return {
    /**
     * Takes a slot for `connectionId` (its record must already be written). Throws
     * `TooManyConnectionsError` when the principal's `max` live connections are all in use.
     */
    async reserve(principal: string, connectionId: string, max: number): Promise<void> {
      if (await tryAdd(principal, connectionId, max)) return;
      const gone = await goneIds(principal);
      if (gone.length > 0) {
        await this.release(principal, ...gone);
        if (await tryAdd(principal, connectionId, max)) return;
      }
      throw new TooManyConnectionsError(max);
    },

    /** Frees the slots of these connections (closed, or found gone). */
    async release(principal: string, ...connectionIds: string[]): Promise<void> {
      if (connectionIds.length === 0) return;
      await client.send(
        new UpdateCommand({
          TableName: usageTable,
          Key: key(principal),
          UpdateExpression: "DELETE #ids :ids",
          ExpressionAttributeNames: { "#ids": "ids" },
          ExpressionAttributeValues: { ":ids": new Set(connectionIds) },
        }),
      );
    },

    /** The connection ids counted for a principal now (admin and tests). */
    held,
  };
}

export type ConnectionSlots = ReturnType<typeof connectionSlots>;
