import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import type { GatewayConfig } from "../config/gateway.ts";
import { apiKeyStore, createApiKeyAuthenticator } from "./api-keys.ts";
import { type AuthorizeRequest, createIdentityCore, type Decision } from "./identity.ts";
import { createJwtAuthenticator, type JwtAuthenticatorOptions } from "./jwt.ts";

export interface AuthorizerRuntimeOptions {
  gateway: GatewayConfig;
  client: DynamoDBDocumentClient;
  apiKeysTable: string;
  /** Whole-decision time budget; past it the request is refused. */
  budgetMs?: number;
  wrapFetcher?: JwtAuthenticatorOptions["wrapFetcher"];
}

/**
 * Everything an authorizer needs, built once per container: JWT verifiers (their JWKS fetch starts
 * now, at cold start), the API key lookup and the identity core, with a time budget around each
 * decision so a slow JWKS or table still ends in a refusal well inside the Lambda timeout.
 */
export function createAuthorizerRuntime({
  gateway,
  client,
  apiKeysTable,
  budgetMs = 3_000,
  wrapFetcher,
}: AuthorizerRuntimeOptions) {
  const jwt = createJwtAuthenticator({ auth: gateway.auth, ...(wrapFetcher ? { wrapFetcher } : {}) });
  const hydrated = jwt.hydrate(); // not awaited here: no top-level await, so `invoke local` can load the module
  const authorize = createIdentityCore({
    config: gateway,
    connect: gateway.websocket.connect,
    verifyToken: jwt.verify,
    authenticateApiKey: createApiKeyAuthenticator({
      store: apiKeyStore({ client, tableName: apiKeysTable }),
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
