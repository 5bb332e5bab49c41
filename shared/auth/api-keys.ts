import { randomBytes } from "node:crypto";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { LRUCache } from "lru-cache";
import { ForbiddenError, NotFoundError, UnauthorizedError } from "../errors.ts";
import { hashCredential } from "./token-hash.ts";

/** Keys look like `gh_` + 43 base64url characters (256 random bits). */
const KEY_PATTERN = /^gh_[A-Za-z0-9_-]{20,100}$/;

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
      const key = `gh_${randomBytes(32).toString("base64url")}`;
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

export interface ApiKeyAuthenticatorOptions {
  store: Pick<ApiKeyStore, "findByHash">;
  /** How long a lookup (found or not) is trusted in this container. */
  cacheSeconds: number;
  cacheEntries: number;
  now?: () => number;
}

/**
 * Checks a presented API key: one DynamoDB read per cache miss, none on a hit. Unknown keys are
 * cached too, so a flood of random keys cannot turn into a flood of reads. A revoked key keeps
 * working here for at most `cacheSeconds`.
 */
export function createApiKeyAuthenticator({
  store,
  cacheSeconds,
  cacheEntries,
  now = Date.now,
}: ApiKeyAuthenticatorOptions) {
  const cache =
    cacheSeconds > 0 && cacheEntries > 0
      ? new LRUCache<string, { record: ApiKeyRecord | null }>({ max: cacheEntries, ttl: cacheSeconds * 1000 })
      : undefined;

  return async function authenticateApiKey(key: string): Promise<ApiKeyRecord> {
    if (!KEY_PATTERN.test(key)) throw new UnauthorizedError("API key is malformed");
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
