import { readFileSync } from "node:fs";
import type { Fetcher } from "aws-jwt-verify/https";
import { assertIsJwks, type Jwks, SimpleJwksCache } from "aws-jwt-verify/jwk";
import type { GatewayConfig } from "../config/gateway.ts";
import { logger } from "../observability/logger.ts";
import { jwksFetcher, jwksUriOf } from "./jwt.ts";

/**
 * The issuers' JWKS shipped with the deployment: fetched when packaging (plugins/shipped-jwks.mjs
 * writes this file beside each authorizer's bundle), loaded at cold start so the first token is
 * verified without a network call. A token whose `kid` is not in them (a rotated key) still makes
 * the authorizer fetch the issuer's JWKS, as aws-jwt-verify does for any unknown `kid`.
 */
export const SHIPPED_JWKS_FILE = "shipped-jwks.json";

/**
 * Shipped keys older than this are not used, and the issuer's JWKS is fetched at cold start as if
 * none were shipped: a key the issuer has withdrawn is trusted at most this long after packaging.
 */
export const SHIPPED_JWKS_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

/** Each JWKS fetch when packaging gets this long (the run-time budget, `auth.jwksTimeoutMs`, is shorter). */
const PACKAGE_FETCH_TIMEOUT_MS = 5_000;

export interface ShippedJwksFile {
  /** The stage packaged: a file from another stage is ignored. */
  stage: string;
  /** ISO time of the fetch. */
  fetchedAt: string;
  /** By JWKS URI. */
  jwks: Record<string, Jwks>;
}

export interface JwksToShip {
  /** Undefined when no issuer's JWKS could be fetched. */
  file?: ShippedJwksFile;
  /** Issuers whose JWKS could not be fetched: the authorizer fetches them at cold start. */
  failures: { issuer: string; jwksUri: string; error: string }[];
}

/**
 * Fetches every issuer's JWKS, through the fetcher the authorizer uses at run time (same CA files).
 * It never throws for an issuer it cannot reach: that issuer is listed in `failures`, so packaging
 * without a network to the issuer (CI) still succeeds and the authorizer falls back to fetching.
 *
 * Example: `await fetchJwksToShip(loadGateway(definition, "prod").auth, "prod")`.
 */
export async function fetchJwksToShip(
  auth: Pick<GatewayConfig["auth"], "issuers" | "jwksTimeoutMs">,
  stage: string,
  {
    now = Date.now,
    wrapFetcher = (f) => f,
  }: { now?: () => number; wrapFetcher?: (f: Fetcher) => Fetcher } = {},
): Promise<JwksToShip> {
  const cache = new SimpleJwksCache({
    fetcher: wrapFetcher(jwksFetcher({ ...auth, jwksTimeoutMs: PACKAGE_FETCH_TIMEOUT_MS })),
  });
  const jwks: Record<string, Jwks> = {};
  const failures: JwksToShip["failures"] = [];
  const fetchedAt = new Date(now()).toISOString();
  await Promise.all(
    auth.issuers.map(async (issuer) => {
      const jwksUri = jwksUriOf(issuer);
      try {
        jwks[jwksUri] = await cache.getJwks(jwksUri);
      } catch (error) {
        failures.push({
          issuer: issuer.id,
          jwksUri,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }),
  );
  return { ...(Object.keys(jwks).length > 0 ? { file: { stage, fetchedAt, jwks } } : {}), failures };
}

/**
 * The shipped JWKS by URI, or undefined when there are none to use: no file (the local stack, a
 * package made without network), or one that is unreadable, of another stage, or older than
 * SHIPPED_JWKS_MAX_AGE_MS (each logged). Either way the authorizer works; it fetches instead.
 *
 * Example: `readShippedJwks(new URL("./shipped-jwks.json", import.meta.url), env.stage)`.
 */
export function readShippedJwks(
  file: URL | string,
  stage: string,
  now: () => number = Date.now,
): ReadonlyMap<string, Jwks> | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      logger.warn("cannot read the shipped JWKS; fetching at cold start", { error });
    }
    return undefined;
  }
  try {
    const shipped = JSON.parse(text) as ShippedJwksFile;
    if (shipped.stage !== stage) {
      logger.warn("the shipped JWKS is of another stage; fetching at cold start", {
        shipped: shipped.stage,
        stage,
      });
      return undefined;
    }
    const age = now() - Date.parse(shipped.fetchedAt);
    if (!(age <= SHIPPED_JWKS_MAX_AGE_MS)) {
      logger.warn("the shipped JWKS is too old to trust; fetching at cold start", {
        fetchedAt: shipped.fetchedAt,
      });
      return undefined;
    }
    const byUri = new Map<string, Jwks>();
    for (const [uri, jwks] of Object.entries(shipped.jwks)) {
      assertIsJwks(jwks);
      byUri.set(uri, jwks);
    }
    return byUri;
  } catch (error) {
    logger.warn("the shipped JWKS is malformed; fetching at cold start", { error });
    return undefined;
  }
}
