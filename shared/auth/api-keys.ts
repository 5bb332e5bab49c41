import { randomBytes } from "node:crypto";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { GetCommand, PutCommand, QueryCommand, ScanCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { GatewayConfig } from "../config/gateway.ts";
import { ForbiddenError, NotFoundError } from "../errors.ts";
import { declaredPlan, declaredPlanNames } from "../quota/plans.ts";
import { type ApiKeyRecord, issueApiKey } from "./api-key-check.ts";
import { hashCredential } from "./token-hash.ts";

// The key format and the check of a presented key live in api-key-check.ts, which the authorizers
// import without the SDK; what key management uses of it is re-exported here.
export {
  type ApiKeyRecord,
  type ApiKeysConfig,
  apiKeyShape,
  createApiKeyAuthenticator,
} from "./api-key-check.ts";

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

/**
 * Why a new key may not have `plan`, or undefined if it may. A plan must be declared in the config's
 * `limits.plans` (its own keys: `constructor` is not a plan); a config without `limits` takes any.
 *
 * Example: `undeclaredPlan(loadGateway(definition, stage).limits, "gold")`.
 */
export function undeclaredPlan(limits: GatewayConfig["limits"], plan: string): string | undefined {
  if (!limits || declaredPlan(limits, plan)) return undefined;
  const declared = declaredPlanNames(limits).join(", ") || "none";
  return `plan "${plan}" is not declared in the gateway config (limits.plans: ${declared})`;
}
