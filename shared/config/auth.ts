import * as v from "valibot";
import { type ConfigProblem, cidr, described, int, nonEmptyList, scope, strict } from "./fields.ts";
import type { GatewayConfig } from "./gateway.ts";

/** Auth: who a caller is (JWT issuers, API keys), where it may call from (IP rules), what it may do (scopes). */

const httpsUrl = (what: string) =>
  v.pipe(
    v.string(),
    v.url(`${what} must be a URL such as https://idp.example.com`),
    v.check(
      (value) => value.startsWith("https://"),
      `${what} must use https:// (tokens and keys are not fetched in clear text); change the scheme`,
    ),
  );

export const IpRulesSchema = strict("ipRules", {
  allow: described(v.optional(v.array(cidr), []), "When non-empty, only these CIDR blocks are admitted."),
  deny: described(v.optional(v.array(cidr), []), "CIDR blocks always refused; deny wins over allow."),
});

const issuerId = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9-]{0,31}$/, "an issuer id is lower-case letters, digits and -, such as cognito"),
  // A token's principal is `<id>:<sub>`; API-key callers are `key:<owner>` and anonymous ones
  // `anonymous:<ip>`, so an issuer of either id would let a token's subject share their quotas,
  // connection slots and chat inbox.
  v.check(
    (id) => id !== "key" && id !== "anonymous",
    'an issuer id may not be "key" or "anonymous": principals of API keys and anonymous callers begin with those; pick another id',
  ),
);
const claimNames = v.optional(
  strict("claims", {
    tenant: described(v.optional(v.string()), "Claim that carries the caller's tenant."),
    plan: described(v.optional(v.string()), "Claim that carries the caller's plan."),
  }),
  {},
);
const defaultPlan = described(
  v.optional(v.string(), "default"),
  "The plan of a caller whose token names none (see `claims.plan`).",
);

const CognitoIssuerSchema = strict("a cognito issuer", {
  kind: v.literal("cognito"),
  id: described(issuerId, "Names the issuer in logs and in the principal (`<id>:<sub>`)."),
  userPoolId: v.pipe(
    v.string(),
    v.regex(/^[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+$/, "a user pool id looks like us-east-1_AbCdEf123"),
    v.description("The Cognito user pool, such as us-east-1_AbCdEf123."),
  ),
  clientId: described(
    nonEmptyList(v.string(), "clientId"),
    "App client ids whose tokens are accepted (the `client_id` / `aud` claim). Required.",
  ),
  tokenUse: described(
    v.picklist(["access", "id"], "tokenUse is required: 'access' or 'id'"),
    "`access` or `id`: which Cognito token is accepted. Required: the two carry different claims.",
  ),
  defaultPlan,
  claims: claimNames,
});

const OidcIssuerSchema = strict("an oidc issuer", {
  kind: v.literal("oidc"),
  id: described(issuerId, "Names the issuer in logs and in the principal (`<id>:<sub>`)."),
  issuer: described(httpsUrl("issuer"), "Expected `iss` claim."),
  jwksUri: described(
    v.optional(httpsUrl("jwksUri")),
    "Where the signing keys are; default `<issuer>/.well-known/jwks.json`.",
  ),
  jwksCaFile: described(
    v.optional(v.string()),
    "PEM file of a private CA that signs the JWKS server's TLS certificate (an internal IdP, or the local dev issuer). TLS is still verified, against this CA only.",
  ),
  audience: described(nonEmptyList(v.string(), "audience"), "Accepted `aud` values. Required."),
  defaultPlan,
  claims: claimNames,
});

const IssuerSchema = v.variant(
  "kind",
  [CognitoIssuerSchema, OidcIssuerSchema],
  'an issuer\'s kind is "cognito" or "oidc"',
);

/** What a route asks of its caller; also `websocket.connect.auth`. */
export const RouteAuthSchema = described(
  v.union(
    [
      v.literal("public"),
      v.strictObject({ jwt: v.strictObject({ scopes: v.optional(v.array(scope), []) }) }),
      v.strictObject({ apiKey: v.strictObject({ scopes: v.optional(v.array(scope), []) }) }),
    ],
    'auth must be "public", { jwt: { scopes } } or { apiKey: { scopes } }; pick one',
  ),
  '"public" (no authorizer), `{ jwt: { scopes } }` (a bearer token from one of `auth.issuers`) or `{ apiKey: { scopes } }` (the `x-api-key` header). Every listed scope is required.',
);

export const AuthSchema = strict("auth", {
  issuers: described(
    v.optional(v.array(IssuerSchema), []),
    "JWT issuers: Cognito user pools or OIDC providers. Required for any `{ jwt }` route.",
  ),
  clockSkewSeconds: described(
    v.optional(int(0, 300), 60),
    "Allowed clock difference for `iat` in the future, `nbf` and `exp`.",
  ),
  jwksTimeoutMs: described(
    v.optional(int(100, 5_000), 1_500),
    "Time budget for fetching a JWKS; past it the request is denied (fail closed).",
  ),
  tokenCacheEntries: described(
    v.optional(int(0), 10_000),
    "Verified tokens kept in memory (keyed by a hash of the token) until they expire.",
  ),
  apiKeys: v.optional(
    strict("auth.apiKeys", {
      cacheSeconds: described(
        v.optional(int(0, 300), 10),
        "How long a container trusts an API key lookup. With API Gateway's authorizer cache TTL this bounds how long a revoked key keeps working.",
      ),
      cacheEntries: described(v.optional(int(0), 10_000), "API key lookups kept in memory per container."),
      legacyKeys: described(
        v.optional(v.picklist(["accept", "refuse"], 'legacyKeys is "accept" or "refuse"'), "accept"),
        "Keys issued in the old `gh_` format (no checksum: each costs a read to refuse). `accept` keeps them working until revoked; `refuse` turns them away unread, once they are reissued.",
      ),
      unknownKeys: described(
        v.optional(
          v.strictObject({
            perIp: v.optional(int(1, 10_000), 20),
            windowSeconds: v.optional(int(1, 3_600), 60),
          }),
          {},
        ),
        "Lookups that find no key, counted per source IP (per /64 for IPv6) in each authorizer container. Past `perIp` within `windowSeconds`, keys from that address are refused without a read until the window ends, except keys the container has recently found.",
      ),
    }),
    {},
  ),
  adminScope: described(
    v.optional(scope, "gatehouse:admin"),
    "Scope that grants the API-key admin endpoints.",
  ),
});

/** Issuer ids are unique, and every route (and `$connect`) that asks for a JWT has an issuer to verify it. */
export function checkAuth(config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const issuerIds = config.auth.issuers.map((issuer) => issuer.id);
  for (const [index, id] of issuerIds.entries()) {
    if (issuerIds.indexOf(id) !== index) {
      problems.push(`auth.issuers.${index}.id: "${id}" is used twice; give each issuer its own id`);
    }
  }
  if (config.auth.issuers.length === 0) {
    const needsJwt = [
      ...Object.entries(config.routes).map(([key, route]) => [`routes.${key}`, route.auth] as const),
      ["websocket.connect", config.websocket.connect.auth] as const,
    ];
    for (const [where, auth] of needsJwt) {
      if (auth !== "public" && "jwt" in auth) {
        problems.push(`${where}.auth: needs a JWT but auth.issuers is empty; add an issuer or use apiKey`);
      }
    }
  }
  return problems;
}
