import { readFileSync } from "node:fs";
import { CognitoJwtVerifier, JwtVerifier } from "aws-jwt-verify";
import {
  JwksNotAvailableInCacheError,
  KidNotFoundInJwksError,
  ParameterValidationError,
} from "aws-jwt-verify/error";
import { type Fetcher, SimpleFetcher } from "aws-jwt-verify/https";
import { type Jwks, SimpleJwksCache } from "aws-jwt-verify/jwk";
import { decomposeUnverifiedJwt } from "aws-jwt-verify/jwt";
import type { JwtPayload } from "aws-jwt-verify/jwt-model";
import { LRUCache } from "lru-cache";
import type { GatewayConfig, IssuerConfig } from "../config/gateway.ts";
import { UnauthorizedError } from "../errors.ts";
import { logger } from "../observability/logger.ts";
import { parseScopes } from "./scopes.ts";
import { hashCredential } from "./token-hash.ts";

/** Longer than any real access or id token; refused before any parsing. */
const MAX_TOKEN_BYTES = 8 * 1024;

export interface VerifiedToken {
  issuerId: string;
  subject: string;
  scopes: string[];
  plan: string;
  tenant?: string;
  /** Epoch seconds. */
  expiresAt: number;
}

/** One aws-jwt-verify verifier for a kind of issuer (all OIDC issuers, or all Cognito pools). */
interface KindVerifier {
  verifySync(token: string): JwtPayload;
  verify(token: string): Promise<JwtPayload>;
}

export interface JwtAuthenticatorOptions {
  auth: Pick<GatewayConfig["auth"], "issuers" | "clockSkewSeconds" | "jwksTimeoutMs" | "tokenCacheEntries">;
  /** Clock in milliseconds; injectable for tests. */
  now?: () => number;
  /** Wraps the JWKS fetcher (tests use it to serve Cognito's keys locally or inject faults). */
  wrapFetcher?: (fetcher: Fetcher) => Fetcher;
  /**
   * JWKS shipped with the deployment, by JWKS URI (shared/auth/shipped-jwks.ts): those issuers are
   * not fetched at cold start; a token whose `kid` is not in them still fetches the issuer's JWKS.
   */
  shippedJwks?: ReadonlyMap<string, Jwks>;
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
  shippedJwks,
}: JwtAuthenticatorOptions) {
  const skew = auth.clockSkewSeconds;
  const customJwtCheck = ({ payload }: { payload: JwtPayload }) => {
    if (typeof payload.exp !== "number") throw new Error("token has no exp claim");
    if (typeof payload.sub !== "string" || payload.sub === "") throw new Error("token has no sub claim");
    if (typeof payload.iat === "number" && payload.iat > now() / 1000 + skew) {
      throw new Error("token iat is in the future");
    }
  };
  const byIss = new Map<string, IssuerConfig>(auth.issuers.map((issuer) => [issuerUrl(issuer), issuer]));
  const oidc = auth.issuers.filter((issuer) => issuer.kind === "oidc");
  const cognito = auth.issuers.filter((issuer) => issuer.kind === "cognito");

  // One JWKS cache for all issuers, holding the shipped JWKS from the start.
  const jwksCache = new SimpleJwksCache({ fetcher: wrapFetcher(jwksFetcher(auth)) });
  for (const [uri, jwks] of shippedJwks ?? []) jwksCache.addJwks(uri, jwks);
  const toFetch = [...new Set(auth.issuers.map(jwksUriOf))].filter((uri) => !shippedJwks?.has(uri));

  const oidcVerifier: KindVerifier | undefined =
    oidc.length > 0
      ? JwtVerifier.create(
          oidc.map((issuer) => ({
            issuer: issuer.issuer,
            audience: issuer.audience,
            jwksUri: jwksUriOf(issuer),
            graceSeconds: skew,
            customJwtCheck,
          })),
          { jwksCache },
        )
      : undefined;
  const cognitoVerifier: KindVerifier | undefined =
    cognito.length > 0
      ? CognitoJwtVerifier.create(
          cognito.map((issuer) => ({
            userPoolId: issuer.userPoolId,
            clientId: issuer.clientId,
            tokenUse: issuer.tokenUse,
            graceSeconds: skew,
            customJwtCheck,
          })),
          { jwksCache },
        )
      : undefined;

  /** The verifier for a token. With one kind of issuer there is nothing to decide (and no extra decode). */
  const verifierFor = (token: string): KindVerifier => {
    if (!cognitoVerifier || !oidcVerifier) {
      const only = cognitoVerifier ?? oidcVerifier;
      if (!only) throw new UnauthorizedError("no token issuer is configured");
      return only;
    }
    let iss: unknown;
    try {
      iss = decomposeUnverifiedJwt(token).payload.iss;
    } catch {
      throw new UnauthorizedError("token is not a well-formed JWT");
    }
    const issuer = typeof iss === "string" ? byIss.get(iss) : undefined;
    if (!issuer) throw new UnauthorizedError(`token issuer ${JSON.stringify(iss)} is not trusted`);
    return issuer.kind === "cognito" ? cognitoVerifier : oidcVerifier;
  };

  const cache =
    auth.tokenCacheEntries > 0
      ? new LRUCache<string, VerifiedToken>({ max: auth.tokenCacheEntries })
      : undefined;

  return {
    /**
     * Fetches now (cold start) the JWKS of every issuer whose keys were not shipped, so the first
     * request does not wait for it. With every JWKS shipped, it makes no network call.
     */
    async hydrate(): Promise<void> {
      const results = await Promise.allSettled(toFetch.map((uri) => jwksCache.getJwks(uri)));
      for (const [i, result] of results.entries()) {
        if (result.status === "rejected") {
          logger.error("could not load a JWKS; tokens of that issuer are refused until it loads", {
            jwksUri: toFetch[i],
            error: result.reason,
          });
        }
      }
    },

    /** The verified token, or an `UnauthorizedError` saying why not (for the log, never the client). */
    async verify(token: string): Promise<VerifiedToken> {
      if (token.length > MAX_TOKEN_BYTES) throw new UnauthorizedError("token is too large");
      const key = cache ? hashCredential(token) : "";
      const cached = cache?.get(key);
      if (cached && cached.expiresAt * 1000 > now()) return cached;

      const verifier = verifierFor(token);
      let payload: JwtPayload;
      try {
        payload = verifier.verifySync(token); // JWKS in memory: no promise, no I/O
      } catch (error) {
        if (!(error instanceof JwksNotAvailableInCacheError || error instanceof KidNotFoundInJwksError)) {
          throw rejected(error);
        }
        try {
          payload = await verifier.verify(token); // fetches the JWKS (first use, or a rotated key)
        } catch (asyncError) {
          throw rejected(asyncError);
        }
      }
      const issuer = byIss.get(String(payload.iss));
      if (!issuer) throw new UnauthorizedError(`token issuer ${JSON.stringify(payload.iss)} is not trusted`);
      const verified = toVerifiedToken(issuer, payload);
      // No per-entry TTL bookkeeping: a hit checks expiresAt itself, and the LRU bound evicts the rest.
      if (cache && verified.expiresAt * 1000 > now()) cache.set(key, verified);
      return verified;
    },
  };
}

function rejected(error: unknown): UnauthorizedError {
  if (error instanceof UnauthorizedError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (
    error instanceof ParameterValidationError ||
    /JWT string|JWT header|JWT payload|malformed/i.test(message)
  ) {
    return new UnauthorizedError(`token is not a well-formed JWT: ${message}`, { cause: error });
  }
  if (/Issuer not allowed/.test(message))
    return new UnauthorizedError(`token issuer is not trusted: ${message}`, { cause: error });
  return new UnauthorizedError(`token rejected: ${message}`, { cause: error });
}

function issuerUrl(issuer: IssuerConfig): string {
  if (issuer.kind === "oidc") return issuer.issuer;
  const region = issuer.userPoolId.split("_")[0];
  return `https://cognito-idp.${region}.amazonaws.com/${issuer.userPoolId}`;
}

/** Where an issuer publishes its JWKS (aws-jwt-verify's default for Cognito: `<iss>/.well-known/jwks.json`). */
export function jwksUriOf(issuer: IssuerConfig): string {
  if (issuer.kind === "oidc" && issuer.jwksUri) return issuer.jwksUri;
  return `${issuerUrl(issuer).replace(/\/$/, "")}/.well-known/jwks.json`;
}

/**
 * The fetcher of every issuer's JWKS, at run time and when packaging: aws-jwt-verify's, with the
 * config's time budget, adding the private CA of the issuers that have one (`jwksCaFile`).
 */
export function jwksFetcher(auth: Pick<GatewayConfig["auth"], "issuers" | "jwksTimeoutMs">): Fetcher {
  const caByJwksUri = new Map(
    auth.issuers.flatMap((issuer) =>
      issuer.kind === "oidc" && issuer.jwksCaFile
        ? [[jwksUriOf(issuer), readCa(issuer.id, issuer.jwksCaFile)] as const]
        : [],
    ),
  );
  const inner = new SimpleFetcher({
    defaultRequestOptions: { timeout: auth.jwksTimeoutMs, responseTimeout: auth.jwksTimeoutMs },
  });
  return {
    fetch: (uri, options, data) => {
      const ca = caByJwksUri.get(uri);
      return inner.fetch(uri, ca ? { ...options, ca } : options, data);
    },
  };
}

/**
 * The issuer's CA. Unreadable, it is logged and replaced by an empty trust list, so the issuer's JWKS
 * cannot be fetched and its tokens are refused (fail closed) while the rest of the gateway works.
 */
function readCa(issuerId: string, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    logger.error("cannot read the issuer's jwksCaFile; its tokens are refused", {
      issuer: issuerId,
      file,
      error,
    });
    return "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  }
}

/**
 * Scopes from `scope` (space-separated), `scp` (list or string) and Cognito's `cognito:groups`, by
 * the one scope parser (shared/auth/scopes.ts): a group named "Team Leads" is not a scope.
 */
export function tokenScopes(payload: JwtPayload): string[] {
  return parseScopes(payload.scope, payload.scp, payload["cognito:groups"]);
}

function toVerifiedToken(issuer: IssuerConfig, payload: JwtPayload): VerifiedToken {
  return {
    issuerId: issuer.id,
    subject: String(payload.sub ?? ""),
    scopes: tokenScopes(payload),
    plan: stringClaim(payload, issuer.claims.plan) ?? issuer.defaultPlan,
    tenant: stringClaim(payload, issuer.claims.tenant),
    expiresAt: payload.exp as number,
  };
}

/** A non-empty string claim, if `name` is set and the token carries one. (Not a closure per token:
 * with esbuild's keepNames every closure created on the hot path also costs a `__name` call.) */
function stringClaim(payload: JwtPayload, name: string | undefined): string | undefined {
  const value = name ? payload[name] : undefined;
  return typeof value === "string" && value !== "" ? value : undefined;
}
