import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { GatewayConfig } from "../config/gateway.ts";
import { type ApiKeyLookup, createApiKeyAuthenticator } from "./api-key-check.ts";
import { type AuthorizeRequest, createIdentityCore, type Decision } from "./identity.ts";
import { createJwtAuthenticator, type JwtAuthenticatorOptions } from "./jwt.ts";

export interface AuthorizerRuntimeOptions {
  gateway: GatewayConfig;
  /**
   * The API keys table's client. Left out (as the authorizers do), the DynamoDB SDK is imported and
   * the client made on the first request that carries an API key: a JWT request never loads it.
   */
  client?: DynamoDBDocumentClient;
  apiKeysTable: string;
  /** Whole-decision time budget; past it the request is refused. */
  budgetMs?: number;
  wrapFetcher?: JwtAuthenticatorOptions["wrapFetcher"];
  /** The JWKS shipped with the deployment (shared/auth/shipped-jwks.ts `readShippedJwks`). */
  shippedJwks?: JwtAuthenticatorOptions["shippedJwks"];
}

/**
 * Everything an authorizer needs, built once per container: JWT verifiers (their JWKS fetch starts
 * now, at cold start, unless the keys were shipped with the bundle), the API key lookup (its SDK
 * loaded on first use) and the identity core, with a time budget around each decision so a slow
 * JWKS or table still ends in a refusal well inside the Lambda timeout.
 */
export function createAuthorizerRuntime({
  gateway,
  client,
  apiKeysTable,
  budgetMs = 3_000,
  wrapFetcher,
  shippedJwks,
}: AuthorizerRuntimeOptions) {
  const jwt = createJwtAuthenticator({
    auth: gateway.auth,
    ...(wrapFetcher ? { wrapFetcher } : {}),
    ...(shippedJwks ? { shippedJwks } : {}),
  });
  const hydrated = jwt.hydrate(); // not awaited here: no top-level await, so `invoke local` can load the module
  const authorize = createIdentityCore({
    config: gateway,
    connect: gateway.websocket.connect,
    verifyToken: jwt.verify,
    authenticateApiKey: createApiKeyAuthenticator({
      store: lazyApiKeyStore(apiKeysTable, client),
      ...gateway.auth.apiKeys,
    }),
  });

  return async function decide(request: AuthorizeRequest): Promise<Decision> {
    let timer: NodeJS.Timeout | undefined;
    const budget = new Promise<Decision>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            allow: false,
            status: 403,
            code: "timeout",
            reason: `no decision within ${budgetMs} ms`,
          }),
        budgetMs,
      );
    });
    try {
      return await Promise.race([hydrated.then(() => authorize(request)), budget]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * The API keys table, imported with the SDK (and the client made, unless given) on the first lookup.
 * A failed import is not kept, so the next lookup tries again.
 */
function lazyApiKeyStore(tableName: string, client?: DynamoDBDocumentClient): ApiKeyLookup {
  let store: Promise<ApiKeyLookup> | undefined;
  const load = async (): Promise<ApiKeyLookup> => {
    const [{ apiKeyStore }, documentClient] = await Promise.all([
      import("./api-keys.ts"),
      client ?? import("../clients/dynamodb.ts").then(({ createDocumentClient }) => createDocumentClient()),
    ]);
    return apiKeyStore({ client: documentClient, tableName });
  };
  return {
    findByHash(keyHash) {
      store ??= load().catch((error: unknown) => {
        store = undefined;
        throw error;
      });
      return store.then((loaded) => loaded.findByHash(keyHash));
    },
  };
}
