import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import { createWsAuthorizer } from "#shared/auth/ws-authorizer.ts";
import { env } from "#shared/config/env.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../gateway.config.ts";

/**
 * The WebSocket `$connect` authorizer: the gateway config, wired once. The DynamoDB SDK is imported on the
 * first API-key connection (shared/auth/authorizer-runtime.ts): a JWT container never loads it.
 */
export const handler = createWsAuthorizer(
  createAuthorizerRuntime({
    gateway: loadGateway(definition, env.stage),
    apiKeysTable: env.apiKeysTable,
  }),
  { offline: env.isOffline },
);
