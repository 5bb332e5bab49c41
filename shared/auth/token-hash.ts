import { createHash } from "node:crypto";

/** SHA-256 of a credential, hex: the only form in which tokens and keys are stored or cached. */
export function hashCredential(value: string): string {
  return createHash("sha256").update(value).digest("hex");
}
