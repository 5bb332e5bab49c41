import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import { createHttpAuthorizer } from "#shared/auth/http-authorizer.ts";
import { readShippedJwks, SHIPPED_JWKS_FILE } from "#shared/auth/shipped-jwks.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";

/**
 * The HTTP API request authorizer, wired once: the gateway config, and the JWKS shipped beside this bundle
 * when packaging (none on the local stack: fetched at cold start). The DynamoDB SDK is imported on
 * the first API-key request (shared/auth/authorizer-runtime.ts): a JWT container never loads it.
 */
export const handler = createHttpAuthorizer(
  createAuthorizerRuntime({
    gateway: gatewayAtStart(env.stage),
    apiKeysTable: env.apiKeysTable,
    shippedJwks: readShippedJwks(new URL(`./${SHIPPED_JWKS_FILE}`, import.meta.url), env.stage),
  }),
);
