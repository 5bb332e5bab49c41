import { hash } from "node:crypto";

/**
 * SHA-256 of a credential, hex: the only form in which tokens and keys are stored or cached.
 * (One-shot `crypto.hash`, Node >= 20.12: no Hash object per call on the authorizer's hot path.)
 */
export function hashCredential(value: string): string {
  return hash("sha256", value, "hex");
}
