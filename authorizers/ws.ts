import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import { createWsAuthorizer } from "#shared/auth/ws-authorizer.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { env } from "#shared/config/env.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../gateway.config.ts";

/** The WebSocket `$connect` authorizer: the gateway config and the container's clients, wired once. */
export const handler = createWsAuthorizer(
  createAuthorizerRuntime({
    gateway: loadGateway(definition, env.stage),
    client: createDocumentClient(),
    apiKeysTable: env.apiKeysTable,
  }),
  { offline: env.isOffline },
);
