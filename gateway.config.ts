import { defineGateway } from "#shared/config/gateway.ts";

/**
 * The gateway: who may call which route. Every route here must have its `httpApi` event in
 * serverless.yml with the matching authorizer (a test checks the two agree):
 *   "public"           → no authorizer
 *   { jwt: {...} }     → authorizer: jwtAuthorizer     (identity: Authorization header)
 *   { apiKey: {...} }  → authorizer: apiKeyAuthorizer  (identity: x-api-key header)
 *
 * Issuers differ per stage. Replace the Cognito example with your user pool (or an OIDC issuer)
 * before you deploy; until its JWKS can be fetched, every JWT is refused (fail closed).
 */
export default defineGateway(({ stage }) => ({
  auth: {
    issuers:
      stage === "local" || stage === "test"
        ? []
        : [
            {
              kind: "cognito",
              id: "cognito",
              userPoolId: "us-east-1_ExampLe12",
              clientId: ["replace-with-your-app-client-id"],
              tokenUse: "access",
              claims: { tenant: "custom:tenant" },
            },
          ],
    clockSkewSeconds: 60,
    apiKeys: { cacheSeconds: 10 },
  },
  ipRules: { allow: [], deny: [] },
  routes: {
    "GET /health": { auth: "public" },
    "GET /keys/self": { auth: { apiKey: {} } },
  },
}));
