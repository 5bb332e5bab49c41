import { promisify } from "node:util";
import { gunzip, gzip } from "node:zlib";
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { deleteAll, queryAll } from "../clients/dynamodb.ts";
import { type CacheEntry, type CacheHit, freshnessOf, type ParamsFilter, usableUntil } from "./entry.ts";

/**
 * The shared tier (docs/caching.md, "Tiers"): one item per cache key in the cache table, shared by
 * every container of the stage. A hit costs one (eventually consistent) read. Bodies not already
 * content-coded are gzip-compressed; an item that would pass DynamoDB's 400 KB is not stored, and
 * the caller is told so it can count it. `expiresAt` (the TTL attribute, epoch seconds) is the last
 * moment the entry is of any use; deletion by TTL is lazy, so every read checks the times itself.
 */

/** DynamoDB's largest item, in bytes (400 KB), less a margin for the estimate below. */
export const MAX_ITEM_BYTES = 400 * 1_024 - 1_024;

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

interface CacheItem {
  pk: string;
  route: string;
  params: Record<string, string>;
  status: number;
  /** The stored headers as JSON (one attribute: its size is exactly its length). */
  headers: string;
  body: Uint8Array;
  /** `gzip` when this tier compressed the body; `none` when it was stored as it came. */
  bodyCoding: "gzip" | "none";
  etag: string;
  storedAt: number;
  ttlMs: number;
  staleWhileRevalidateMs: number;
  staleIfErrorMs: number;
  expiresAt: number;
}

export interface TableTierOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Epoch milliseconds (tests move it). */
  now?: () => number;
}

export interface TableTier {
  /** The entry under `id` if it is of any use now: one read. */
  get(id: string): Promise<CacheHit | undefined>;
  /** Stores `entry` under `id`, replacing any: one write (a too-large answer deletes the older one instead). */
  set(
    id: string,
    entry: CacheEntry,
  ): Promise<{ stored: true; bytes: number } | { stored: false; reason: "too-large"; bytes: number }>;
  delete(id: string): Promise<void>;
  /**
   * Deletes every entry of `routeKey` whose parameters include all of `params` (and pass `where`,
   * when given): one query of index `byRoute`, then deletes 25 at a time. Returns how many.
   */
  purge(routeKey: string, params?: Readonly<Record<string, string>>, where?: ParamsFilter): Promise<number>;
}

/** Example: `createTableTier({ client, tableName: "gatehouse-dev-cache" })`. */
export function createTableTier({ client, tableName, now = Date.now }: TableTierOptions): TableTier {
  return {
    async get(id) {
      const { Item } = await client.send(new GetCommand({ TableName: tableName, Key: { pk: id } }));
      if (!Item) return undefined;
      const item = Item as CacheItem;
      const entry: CacheEntry = {
        routeKey: item.route,
        params: item.params ?? {},
        status: item.status,
        headers: JSON.parse(item.headers) as Record<string, string>,
        body: item.bodyCoding === "gzip" ? await gunzipAsync(item.body) : Buffer.from(item.body),
        etag: item.etag,
        storedAt: item.storedAt,
        ttlMs: item.ttlMs,
        staleWhileRevalidateMs: item.staleWhileRevalidateMs,
        staleIfErrorMs: item.staleIfErrorMs,
      };
      const { freshness, ageSeconds } = freshnessOf(entry, now());
      return freshness === "expired" ? undefined : { entry, freshness, ageSeconds };
    },

    async set(id, entry) {
      const coded = (entry.headers["content-encoding"] ?? "identity") !== "identity";
      const body = coded ? entry.body : await gzipAsync(entry.body);
      const item: CacheItem = {
        pk: id,
        route: entry.routeKey,
        params: { ...entry.params },
        status: entry.status,
        headers: JSON.stringify(entry.headers),
        body,
        bodyCoding: coded ? "none" : "gzip",
        etag: entry.etag,
        storedAt: entry.storedAt,
        ttlMs: entry.ttlMs,
        staleWhileRevalidateMs: entry.staleWhileRevalidateMs,
        staleIfErrorMs: entry.staleIfErrorMs,
        expiresAt: Math.ceil(usableUntil(entry) / 1_000),
      };
      const bytes = itemBytes(item);
      if (bytes > MAX_ITEM_BYTES) {
        await client.send(new DeleteCommand({ TableName: tableName, Key: { pk: id } }));
        return { stored: false, reason: "too-large", bytes };
      }
      await client.send(new PutCommand({ TableName: tableName, Item: item }));
      return { stored: true, bytes };
    },

    async delete(id) {
      await client.send(new DeleteCommand({ TableName: tableName, Key: { pk: id } }));
    },

    async purge(routeKey, params = {}, where) {
      const wanted = Object.entries(params);
      const found = (await queryAll(client, {
        TableName: tableName,
        IndexName: "byRoute",
        KeyConditionExpression: "#route = :route",
        ExpressionAttributeNames: { "#route": "route" },
        ExpressionAttributeValues: { ":route": routeKey },
      })) as Pick<CacheItem, "pk" | "params">[];
      const keys = found
        .filter(
          (item) =>
            wanted.every(([name, value]) => item.params?.[name] === value) &&
            (where?.(item.params ?? {}) ?? true),
        )
        .map((item) => ({ pk: item.pk }));
      await deleteAll(client, tableName, keys, "cache entry");
      return keys.length;
    },
  };
}

/**
 * An item's size as DynamoDB counts it, from above: attribute names and string values in UTF-8,
 * binary values as bytes, a number as at most 21 bytes, a map's 3 bytes plus 1 per element.
 */
function itemBytes(item: CacheItem): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(item)) {
    bytes += Buffer.byteLength(name);
    if (typeof value === "string") bytes += Buffer.byteLength(value);
    else if (typeof value === "number") bytes += 21;
    else if (value instanceof Uint8Array) bytes += value.byteLength;
    else {
      bytes += 3;
      for (const [key, text] of Object.entries(value as Record<string, string>))
        bytes += Buffer.byteLength(key) + Buffer.byteLength(text) + 1;
    }
  }
  return bytes;
}
