import { randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import type ipaddr from "ipaddr.js";
import { LRUCache } from "lru-cache";
import type { GatewayConfig } from "../config/gateway.ts";
import { ForbiddenError, UnauthorizedError } from "../errors.ts";
import { parseAddress } from "./ip-rules.ts";
import { hashCredential } from "./token-hash.ts";

// What the authorizers need of API keys: the key format and the check of a presented key, with no
// DynamoDB SDK among its imports. The table is api-keys.ts (`apiKeyStore`), which the authorizers
// import only when a request carries a key, so a JWT-only container never evaluates the SDK.

/**
 * Keys are `ghk_` + 43 base62 characters (256 random bits) + 6 base62 characters of checksum: the
 * CRC-32 of everything before it (GitHub's token format). The checksum lets the authorizer refuse a
 * mistyped or made-up key before hashing it or reading DynamoDB. It is public, so it filters random
 * keys, not a forger: the per-IP miss budget is what bounds a forger's reads.
 */
const API_KEY_PREFIX = "ghk_";
/** Keys issued before the checksum: `gh_` + 43 base64url characters. See `auth.apiKeys.legacyKeys`. */
const LEGACY_API_KEY_PREFIX = "gh_";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BODY_LENGTH = 43; // 62^43 > 2^256
const CHECKSUM_LENGTH = 6; // 62^6 > 2^32
const KEY_PATTERN = /^ghk_[0-9A-Za-z]{49}$/;
const LEGACY_KEY_PATTERN = /^gh_[A-Za-z0-9_-]{20,100}$/;

/**
 * Fixed-width base62, most significant digit first, padded with `0`. (Written here: base-x and
 * its kin encode bytes, with one digit per leading zero byte, so their width varies.)
 */
function base62(value: bigint, width: number): string {
  let digits = "";
  for (let rest = value; rest > 0n; rest /= 62n) digits = BASE62[Number(rest % 62n)] + digits;
  return digits.padStart(width, "0");
}

const checksumOf = (payload: string) => base62(BigInt(crc32(payload)), CHECKSUM_LENGTH);

/** A new key: `ghk_` + 256 random bits in base62 + its checksum. */
export function issueApiKey(): string {
  const payload = `${API_KEY_PREFIX}${base62(BigInt(`0x${randomBytes(32).toString("hex")}`), BODY_LENGTH)}`;
  return `${payload}${checksumOf(payload)}`;
}

/**
 * What a presented key looks like, from its text alone: `current` (the `ghk_` format, checksum
 * right), `badChecksum`, `legacy` (the old `gh_` format, which has no checksum) or `malformed`.
 */
export function apiKeyShape(key: string): "current" | "badChecksum" | "legacy" | "malformed" {
  if (KEY_PATTERN.test(key)) {
    const split = key.length - CHECKSUM_LENGTH;
    return checksumOf(key.slice(0, split)) === key.slice(split) ? "current" : "badChecksum";
  }
  return LEGACY_KEY_PATTERN.test(key) ? "legacy" : "malformed";
}

/** Whether a credential is meant as an API key (either format), e.g. among WebSocket subprotocols. */
export const hasApiKeyPrefix = (value: string) =>
  value.startsWith(API_KEY_PREFIX) || value.startsWith(LEGACY_API_KEY_PREFIX);

export interface ApiKeyRecord {
  /** SHA-256 (hex) of the key: the table's key. The key itself is never stored. */
  keyHash: string;
  keyId: string;
  owner: string;
  plan: string;
  scopes: string[];
  status: "active" | "revoked";
  tenant?: string;
  /** ISO time. */
  createdAt: string;
  revokedAt?: string;
  /** Epoch seconds; the key stops working then (and DynamoDB TTL removes it later). */
  expiresAt?: number;
  /** `ghk` on keys issued with a checksum; absent on keys of the old `gh_` format. */
  format?: "ghk";
}

/** Where the record of a presented key is read: the table (api-keys.ts `apiKeyStore`) or a test's. */
export interface ApiKeyLookup {
  findByHash(keyHash: string): Promise<ApiKeyRecord | undefined>;
}

/** `auth.apiKeys` of the gateway config (every field has its default there). */
export type ApiKeysConfig = GatewayConfig["auth"]["apiKeys"];

export interface ApiKeyAuthenticatorOptions extends ApiKeysConfig {
  store: ApiKeyLookup;
  now?: () => number;
}

/** Sources whose misses are tracked at once; past it the least recently seen one is forgotten. */
const TRACKED_SOURCES = 10_000;

/**
 * Where a lookup that found no key is counted: the IPv4 address, or the /64 of an IPv6 address (one
 * host usually holds a whole /64). A missing or unparsable address shares one bucket: fail closed.
 */
export function missSource(sourceIp: string | undefined): string {
  const address = parseAddress(sourceIp);
  if (!address) return "unknown";
  if (address.kind() === "ipv4") return address.toString();
  const prefix = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${prefix.join(":")}::/64`;
}

/**
 * Misses per source in fixed windows (an LRU entry lives `windowSeconds` from a source's first
 * counted lookup). A lookup takes a miss before its read and gives it back if the key is found, so
 * lookups in flight at once cannot overshoot the budget.
 */
function missBudget({ perIp, windowSeconds }: ApiKeysConfig["unknownKeys"], now: () => number) {
  const windows = new LRUCache<string, { misses: number }>({
    max: TRACKED_SOURCES,
    ttl: windowSeconds * 1000,
    perf: { now },
    ttlResolution: 0, // read the clock on every check, so a window ends when it says
  });
  return {
    exhausted: (source: string) => (windows.get(source)?.misses ?? 0) >= perIp,
    take(source: string) {
      const window = windows.get(source);
      if (window) window.misses++;
      else windows.set(source, { misses: 1 });
    },
    giveBack(source: string) {
      const window = windows.get(source);
      if (window && window.misses > 0) window.misses--;
    },
  };
}

/**
 * Checks a presented API key. A key that is malformed, fails its checksum, or is in the old format
 * while `legacyKeys` is `refuse` is refused on its text alone: no hash, no read. Otherwise a found
 * key is read once per `cacheSeconds` (so a revoked key keeps working here for at most that long).
 * Unknown keys are not cached (a flood of them would evict the keys in use); instead, lookups that
 * find nothing are counted per source (`missSource`), and a source past `unknownKeys.perIp` in
 * `unknownKeys.windowSeconds` gets no read until its window ends, except for keys this container
 * has found within the last window or `cacheSeconds`, whichever is longer.
 *
 * Example: `await authenticateApiKey(event.headers["x-api-key"], event.requestContext.http.sourceIp)`.
 */
export function createApiKeyAuthenticator({
  store,
  cacheSeconds,
  cacheEntries,
  legacyKeys,
  unknownKeys,
  now = Date.now,
}: ApiKeyAuthenticatorOptions) {
  const trustMs = cacheSeconds * 1000;
  // Found records, kept past `cacheSeconds` (but not trusted past it) to know the keys in use.
  const found =
    cacheSeconds > 0 && cacheEntries > 0
      ? new LRUCache<string, { record: ApiKeyRecord; readAt: number }>({
          max: cacheEntries,
          ttl: Math.max(cacheSeconds, unknownKeys.windowSeconds) * 1000,
          perf: { now },
          ttlResolution: 0,
        })
      : undefined;
  const misses = missBudget(unknownKeys, now);

  async function lookUp(keyHash: string, source: string, known: boolean): Promise<ApiKeyRecord> {
    // Whether an unseen key is valid or a guess, only the read would tell, and the read is what the
    // budget withholds: so a valid key new to this container waits for the window, like a guess.
    if (!known && misses.exhausted(source)) {
      throw new UnauthorizedError(
        `API key not looked up: over ${unknownKeys.perIp} unknown keys from ${source} in ${unknownKeys.windowSeconds} s`,
      );
    }
    misses.take(source);
    let record: ApiKeyRecord | undefined;
    try {
      record = await store.findByHash(keyHash);
    } catch (error) {
      misses.giveBack(source); // a failed read is no miss
      throw error;
    }
    if (!record) {
      found?.delete(keyHash);
      throw new UnauthorizedError("API key is unknown");
    }
    misses.giveBack(source);
    found?.set(keyHash, { record, readAt: now() });
    return record;
  }

  return async function authenticateApiKey(key: string, sourceIp?: string): Promise<ApiKeyRecord> {
    switch (apiKeyShape(key)) {
      case "malformed":
        throw new UnauthorizedError("API key is malformed");
      case "badChecksum":
        throw new UnauthorizedError("API key fails its checksum");
      case "legacy":
        if (legacyKeys === "refuse") {
          throw new UnauthorizedError(
            "API key is in the old gh_ format, which auth.apiKeys.legacyKeys refuses",
          );
        }
    }
    const keyHash = hashCredential(key);
    const cached = found?.get(keyHash);
    const record =
      cached && now() - cached.readAt < trustMs
        ? cached.record
        : await lookUp(keyHash, missSource(sourceIp), cached !== undefined);
    if (record.status !== "active") throw new ForbiddenError(`API key ${record.keyId} is revoked`);
    if (record.expiresAt !== undefined && record.expiresAt * 1000 <= now()) {
      throw new ForbiddenError(`API key ${record.keyId} has expired`);
    }
    return record;
  };
}
