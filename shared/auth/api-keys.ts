import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { LRUCache } from "lru-cache";
import type { GatewayConfig } from "../config/gateway.ts";
import { ForbiddenError, NotFoundError, UnauthorizedError } from "../errors.ts";
import { hashCredential } from "./token-hash.ts";

/**
 * Keys are `ghk_` + 43 base62 characters (256 random bits) + 6 base62 characters of checksum: the
 * CRC-32 of everything before it (GitHub's token format). The checksum lets the authorizer refuse a
 * mistyped or made-up key before hashing it or reading DynamoDB. It is public, so it filters random
 * keys, not a forger: the per-IP miss budget is what bounds a forger's reads.
 */
export const API_KEY_PREFIX = "ghk_";
/** Keys issued before the checksum: `gh_` + 43 base64url characters. See `auth.apiKeys.legacyKeys`. */
export const LEGACY_API_KEY_PREFIX = "gh_";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LENGTH = 43; // 62^43 > 2^256
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32
const KEY_PATTERN = /^ghk_[0-9A-Za-z]{49}$/;
const LEGACY_KEY_PATTERN = /^gh_[A-Za-z0-9_-]{20,100}$/;

/** Fixed-width base62, most significant digit first, padded with `0`. */
function base62(value: bigint, width: number): string {
  let digits = "";
  for (let rest = value; rest > 0n; rest /= 62n) digits = BASE62[Number(rest % 62n)] + digits;
  return digits.padStart(width, "0");
}

const checksumOf = (payload: string) => base62(BigInt(crc32(payload)), CHECKSUM_LENGTH);

/** A new key: `ghk_` + 256 random bits in base62 + its checksum. */
export function issueApiKey(): string {
  const payload = `${API_KEY_PREFIX}${base62(BigInt(`0x${randomBytes(32).toString("hex")}`), BODY_LENGTH)}`;
  return `${payload}${checksumOf(payload)}`;
}

/**
 * What a presented key looks like, from its text alone: `current` (the `ghk_` format, checksum
 * right), `badChecksum`, `legacy` (the old `gh_` format, which has no checksum) or `malformed`.
 */
export function apiKeyShape(key: string): "current" | "badChecksum" | "legacy" | "malformed" {
  if (KEY_PATTERN.test(key)) {
    const split = key.length - CHECKSUM_LENGTH;
    return checksumOf(key.slice(0, split)) === key.slice(split) ? "current" : "badChecksum";
  }
  return LEGACY_KEY_PATTERN.test(key) ? "legacy" : "malformed";
}

/** Whether a credential is meant as an API key (either format), e.g. among WebSocket subprotocols. */
export const hasApiKeyPrefix = (value: string) =>
  value.startsWith(API_KEY_PREFIX) || value.startsWith(LEGACY_API_KEY_PREFIX);

export interface ApiKeyRecord {
  /** SHA-256 (hex) of the key: the table's key. The key itself is never stored. */
  keyHash: string;
  keyId: string;
  owner: string;
  plan: string;
  scopes: string[];
  status: "active" | "revoked";
  tenant?: string;
  /** ISO time. */
  createdAt: string;
  revokedAt?: string;
  /** Epoch seconds; the key stops working then (and DynamoDB TTL removes it later). */
  expiresAt?: number;
  /** `ghk` on keys issued with a checksum; absent on keys of the old `gh_` format. */
  format?: "ghk";
}

export interface NewApiKey {
  owner: string;
  plan: string;
  scopes?: string[];
  tenant?: string;
  /** Epoch seconds. */
  expiresAt?: number;
}

export interface ApiKeyStoreOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  now?: () => number;
}

/** The API keys table. Every read is one `GetItem` by hash; admin reads use the `byKeyId` index. */
export function apiKeyStore({ client, tableName, now = Date.now }: ApiKeyStoreOptions) {
  let reads = 0;
  const byKeyId = async (keyId: string): Promise<ApiKeyRecord> => {
    const { Items = [] } = await client.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: "byKeyId",
        KeyConditionExpression: "keyId = :keyId",
        ExpressionAttributeValues: { ":keyId": keyId },
      }),
    );
    const record = Items[0] as ApiKeyRecord | undefined;
    if (!record) throw new NotFoundError(`No API key with id ${keyId}`);
    return record;
  };

  return {
    /** DynamoDB reads made by `findByHash` so far (for the bench and tests). */
    get reads() {
      return reads;
    },

    /** Creates a key; the clear key is returned here once and never again. */
    async create(input: NewApiKey): Promise<{ key: string; record: ApiKeyRecord }> {
      const key = issueApiKey();
      const record: ApiKeyRecord = {
        keyHash: hashCredential(key),
        keyId: `key_${randomBytes(9).toString("base64url")}`,
        owner: input.owner,
        plan: input.plan,
        scopes: input.scopes ?? [],
        status: "active",
        tenant: input.tenant,
        createdAt: new Date(now()).toISOString(),
        expiresAt: input.expiresAt,
        format: "ghk",
      };
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: record,
          ConditionExpression: "attribute_not_exists(keyHash)",
        }),
      );
      return { key, record };
    },

    async findByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
      reads++;
      const { Item } = await client.send(new GetCommand({ TableName: tableName, Key: { keyHash } }));
      return Item as ApiKeyRecord | undefined;
    },

    get: byKeyId,

    /** Every key, newest first (admin listing; the table holds one small item per key). */
    async list(): Promise<ApiKeyRecord[]> {
      const records: ApiKeyRecord[] = [];
      let ExclusiveStartKey: Record<string, unknown> | undefined;
      do {
        const page = await client.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey }));
        records.push(...((page.Items ?? []) as ApiKeyRecord[]));
        ExclusiveStartKey = page.LastEvaluatedKey;
      } while (ExclusiveStartKey);
      return records.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    },

    /** Marks a key revoked (kept for the audit trail). Revoking twice is not an error. */
    async revoke(keyId: string): Promise<ApiKeyRecord> {
      const record = await byKeyId(keyId);
      const revokedAt = record.revokedAt ?? new Date(now()).toISOString();
      await client.send(
        new UpdateCommand({
          TableName: tableName,
          Key: { keyHash: record.keyHash },
          UpdateExpression: "SET #status = :revoked, revokedAt = :at",
          ConditionExpression: "attribute_exists(keyHash)",
          ExpressionAttributeNames: { "#status": "status" },
          ExpressionAttributeValues: { ":revoked": "revoked", ":at": revokedAt },
        }),
      );
      return { ...record, status: "revoked", revokedAt };
    },

    /** A new key with the same owner, plan and scopes; the old one is revoked. */
    async rotate(keyId: string): Promise<{ key: string; record: ApiKeyRecord; revoked: ApiKeyRecord }> {
      const old = await byKeyId(keyId);
      if (old.status !== "active") throw new ForbiddenError(`API key ${keyId} is revoked; create a new one`);
      const created = await this.create({
        owner: old.owner,
        plan: old.plan,
        scopes: old.scopes,
        tenant: old.tenant,
        expiresAt: old.expiresAt,
      });
      const revoked = await this.revoke(keyId);
      return { ...created, revoked };
    },
  };
}

export type ApiKeyStore = ReturnType<typeof apiKeyStore>;

/** `auth.apiKeys` of the gateway config (every field has its default there). */
export type ApiKeysConfig = GatewayConfig["auth"]["apiKeys"];

export interface ApiKeyAuthenticatorOptions extends ApiKeysConfig {
  store: Pick<ApiKeyStore, "findByHash">;
  now?: () => number;
}

/**
 * Checks a presented API key: a key that is malformed, fails its checksum, or is in the old format
 * while `legacyKeys` is `refuse` is refused with no read; otherwise one DynamoDB read per cache miss,
 * none on a hit. Unknown keys are cached too. A revoked key keeps working here for at most
 * `cacheSeconds`.
 */
export function createApiKeyAuthenticator({
  store,
  cacheSeconds,
  cacheEntries,
  legacyKeys,
  now = Date.now,
}: ApiKeyAuthenticatorOptions) {
  const cache =
    cacheSeconds > 0 && cacheEntries > 0
      ? new LRUCache<string, { record: ApiKeyRecord | null }>({ max: cacheEntries, ttl: cacheSeconds * 1000 })
      : undefined;

  return async function authenticateApiKey(key: string): Promise<ApiKeyRecord> {
    // Refused on its text alone: no hash, no read.
    switch (apiKeyShape(key)) {
      case "malformed":
        throw new UnauthorizedError("API key is malformed");
      case "badChecksum":
        throw new UnauthorizedError("API key fails its checksum");
      case "legacy":
        if (legacyKeys === "refuse") {
          throw new UnauthorizedError(
            "API key is in the old gh_ format, which auth.apiKeys.legacyKeys refuses",
          );
        }
    }
    const keyHash = hashCredential(key);
    let entry = cache?.get(keyHash);
    if (!entry) {
      entry = { record: (await store.findByHash(keyHash)) ?? null };
      cache?.set(keyHash, entry);
    }
    const { record } = entry;
    if (!record) throw new UnauthorizedError("API key is unknown");
    if (record.status !== "active") throw new ForbiddenError(`API key ${record.keyId} is revoked`);
    if (record.expiresAt !== undefined && record.expiresAt * 1000 <= now()) {
      throw new ForbiddenError(`API key ${record.keyId} has expired`);
    }
    return record;
  };
}
