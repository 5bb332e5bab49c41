import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { ApiKeyRecord, ApiKeysConfig } from "#shared/auth/api-keys.ts";
import { hashCredential } from "#shared/auth/token-hash.ts";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";
import type { TestStore } from "./dynamo.ts";

type ApiKeysInput = NonNullable<GatewayConfigInput["auth"]["apiKeys"]>;

/** `auth.apiKeys` as the config schema fills it in: its defaults, with `overrides` on top. */
export function apiKeysConfig(overrides: ApiKeysInput = {}): ApiKeysConfig {
  return loadGateway(
    defineGateway(() => ({ auth: { apiKeys: overrides }, routes: {} })),
    "test",
  ).auth.apiKeys;
}

/**
 * Stores a key as an earlier release issued it (the old `gh_` format, which `create` no longer
 * issues): only its hash, as `create` does.
 */
export async function putLegacyKey(store: TestStore, key: string, owner: string): Promise<ApiKeyRecord> {
  const record: ApiKeyRecord = {
    keyHash: hashCredential(key),
    keyId: `key_legacy_${owner}`,
    owner,
    plan: "free",
    scopes: [],
    status: "active",
    createdAt: new Date().toISOString(),
  };
  await store.client.send(new PutCommand({ TableName: store.tables.ApiKeysTable, Item: record }));
  return record;
}
