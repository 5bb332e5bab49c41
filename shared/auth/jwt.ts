import { readFileSync } from "node:fs";
import { CognitoJwtVerifier, JwtVerifier } from "aws-jwt-verify";
import { type Fetcher, SimpleFetcher } from "aws-jwt-verify/https";
import { SimpleJwksCache } from "aws-jwt-verify/jwk";
import { decomposeUnverifiedJwt } from "aws-jwt-verify/jwt";
import type { JwtPayload } from "aws-jwt-verify/jwt-model";
import { LRUCache } from "lru-cache";
import type { GatewayConfig, IssuerConfig } from "../config/gateway.ts";
import { UnauthorizedError } from "../errors.ts";
import { logger } from "../observability/logger.ts";
import { hashCredential } from "./token-hash.ts";

/** Longer than any real access or id token; refused before any parsing. */
export const MAX_TOKEN_BYTES = 8 * 1024;

export interface VerifiedToken {
  issuerId: string;
  subject: string;
  scopes: string[];
  plan: string;
  tenant?: string;
  /** Epoch seconds. */
  expiresAt: number;
}

interface IssuerVerifier {
  config: IssuerConfig;
  iss: string;
  verify(token: string): Promise<JwtPayload>;
  hydrate(): Promise<void>;
}

export interface JwtAuthenticatorOptions {
  auth: Pick<GatewayConfig["auth"], "issuers" | "clockSkewSeconds" | "jwksTimeoutMs" | "tokenCacheEntries">;
  /** Clock in milliseconds; injectable for tests. */
  now?: () => number;
  /** Wraps the JWKS fetcher (tests use it to serve Cognito's keys locally or inject faults). */
  wrapFetcher?: (fetcher: Fetcher) => Fetcher;
}

/**
 * JWT verification for every configured issuer (Cognito user pools and OIDC), through aws-jwt-verify.
 * On top of its checks (signature, alg, kid, iss, aud/client_id, token_use, exp, nbf) a token must
 * carry `exp` and `sub`, and an `iat` no further in the future than the clock skew. Verified tokens are kept in
 * a bounded in-memory cache keyed by the token's hash until they expire.
 */
export function createJwtAuthenticator({
  auth,
  now = Date.now,
  wrapFetcher = (f) => f,
}: JwtAuthenticatorOptions) {
  const skew = auth.clockSkewSeconds;
  const customJwtCheck = ({ payload }: { payload: JwtPayload }) => {
    if (typeof payload.exp !== "number") throw new Error("token has no exp claim");
    if (typeof payload.sub !== "string" || payload.sub === "") throw new Error("token has no sub claim");
    if (typeof payload.iat === "number" && payload.iat > now() / 1000 + skew) {
      throw new Error("token iat is in the future");
    }
  };
  const verifiers = new Map<string, IssuerVerifier>(
    auth.issuers.map((issuer) => {
      const verifier = createIssuerVerifier(issuer, auth.jwksTimeoutMs, skew, customJwtCheck, wrapFetcher);
      return [verifier.iss, verifier];
    }),
  );
  const cache =
    auth.tokenCacheEntries > 0
      ? new LRUCache<string, VerifiedToken>({ max: auth.tokenCacheEntries })
      : undefined;

  return {
    /** Fetches every issuer's JWKS now (cold start), so the first request does not wait for it. */
    async hydrate(): Promise<void> {
      const results = await Promise.allSettled([...verifiers.values()].map((verifier) => verifier.hydrate()));
      for (const [index, result] of results.entries()) {
        if (result.status === "rejected") {
          const issuer = [...verifiers.values()][index]?.config.id;
          logger.error("could not load the issuer's JWKS; its tokens are refused until it loads", {
            issuer,
            error: result.reason,
          });
        }
      }
    },

    /** The verified token, or an `UnauthorizedError` saying why not (for the log, never the client). */
    async verify(token: string): Promise<VerifiedToken> {
      if (token.length > MAX_TOKEN_BYTES) throw new UnauthorizedError("token is too large");
      const key = hashCredential(token);
      const cached = cache?.get(key);
      if (cached && cached.expiresAt * 1000 > now()) return cached;

      let iss: unknown;
      try {
        iss = decomposeUnverifiedJwt(token).payload.iss;
      } catch {
        throw new UnauthorizedError("token is not a well-formed JWT");
      }
      const verifier = typeof iss === "string" ? verifiers.get(iss) : undefined;
      if (!verifier) throw new UnauthorizedError(`token issuer ${JSON.stringify(iss)} is not trusted`);
      let payload: JwtPayload;
      try {
        payload = await verifier.verify(token);
      } catch (error) {
        throw new UnauthorizedError(
          `token rejected: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
          },
        );
      }
      const verified = toVerifiedToken(verifier.config, payload);
      const ttl = verified.expiresAt * 1000 - now();
      if (cache && ttl > 0) cache.set(key, verified, { ttl });
      return verified;
    },
  };
}

export type JwtAuthenticator = ReturnType<typeof createJwtAuthenticator>;

function createIssuerVerifier(
  issuer: IssuerConfig,
  timeoutMs: number,
  graceSeconds: number,
  customJwtCheck: (props: { payload: JwtPayload }) => void,
  wrapFetcher: (fetcher: Fetcher) => Fetcher,
): IssuerVerifier {
  const ca =
    issuer.kind === "oidc" && issuer.jwksCaFile ? readFileSync(issuer.jwksCaFile, "utf8") : undefined;
  const jwksCache = new SimpleJwksCache({
    fetcher: wrapFetcher(
      new SimpleFetcher({
        defaultRequestOptions: { timeout: timeoutMs, responseTimeout: timeoutMs, ...(ca ? { ca } : {}) },
      }),
    ),
  });
  if (issuer.kind === "cognito") {
    const verifier = CognitoJwtVerifier.create(
      {
        userPoolId: issuer.userPoolId,
        clientId: issuer.clientId,
        tokenUse: issuer.tokenUse,
        graceSeconds,
        customJwtCheck,
      },
      { jwksCache },
    );
    const region = issuer.userPoolId.split("_")[0];
    return {
      config: issuer,
      iss: `https://cognito-idp.${region}.amazonaws.com/${issuer.userPoolId}`,
      verify: (token) => verifier.verify(token),
      hydrate: () => verifier.hydrate(),
    };
  }
  const verifier = JwtVerifier.create(
    {
      issuer: issuer.issuer,
      audience: issuer.audience,
      jwksUri: issuer.jwksUri ?? `${issuer.issuer.replace(/\/$/, "")}/.well-known/jwks.json`,
      graceSeconds,
      customJwtCheck,
    },
    { jwksCache },
  );
  return {
    config: issuer,
    iss: issuer.issuer,
    verify: (token) => verifier.verify(token),
    hydrate: () => verifier.hydrate(),
  };
}

/** Scopes from `scope` (space-separated), `scp` (list or string) and Cognito's `cognito:groups`. */
export function tokenScopes(payload: JwtPayload): string[] {
  const scopes = new Set<string>();
  const add = (value: unknown) => {
    if (typeof value === "string") for (const scope of value.split(" ")) if (scope) scopes.add(scope);
    if (Array.isArray(value)) for (const scope of value) if (typeof scope === "string") scopes.add(scope);
  };
  add(payload.scope);
  add(payload.scp);
  add(payload["cognito:groups"]);
  return [...scopes];
}

function toVerifiedToken(issuer: IssuerConfig, payload: JwtPayload): VerifiedToken {
  const claim = (name: string | undefined) => {
    const value = name ? payload[name] : undefined;
    return typeof value === "string" && value !== "" ? value : undefined;
  };
  return {
    issuerId: issuer.id,
    subject: String(payload.sub ?? ""),
    scopes: tokenScopes(payload),
    plan: claim(issuer.claims.plan) ?? issuer.defaultPlan,
    tenant: claim(issuer.claims.tenant),
    expiresAt: payload.exp as number,
  };
}
