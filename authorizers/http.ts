import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import { createHttpAuthorizer } from "#shared/auth/http-authorizer.ts";
import { env } from "#shared/config/env.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../gateway.config.ts";

/**
 * The HTTP API request authorizer: the gateway config, wired once. The DynamoDB SDK is imported on the
 * first API-key request (shared/auth/authorizer-runtime.ts): a JWT container never loads it.
 */
export const handler = createHttpAuthorizer(
  createAuthorizerRuntime({
    gateway: loadGateway(definition, env.stage),
    apiKeysTable: env.apiKeysTable,
  }),
);
