import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import { createHttpAuthorizer } from "#shared/auth/http-authorizer.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { env } from "#shared/config/env.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../gateway.config.ts";

/** The HTTP API request authorizer: the gateway config and the container's clients, wired once. */
export const handler = createHttpAuthorizer(
  createAuthorizerRuntime({
    gateway: loadGateway(definition, env.stage),
    client: createDocumentClient(),
    apiKeysTable: env.apiKeysTable,
  }),
);
