import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { apiKeyShape } from "#shared/auth/api-keys.ts";
import { hashCredential } from "#shared/auth/token-hash.ts";
import { DEMO_API_KEY } from "../../plugins/local-stack.mjs";
import { ROOT } from "../support/serverless.ts";

describe("the local stack's demo API key", () => {
  it("has the ghk_ format with a right checksum, and its SHA-256 is the hash scripts/seed/local.json stores", () => {
    // Prepare
    const seed = JSON.parse(readFileSync(join(ROOT, "scripts", "seed", "local.json"), "utf8")) as {
      ApiKeysTable: { keyId: string; keyHash: string }[];
    };

    // Act
    const seeded = seed.ApiKeysTable.find((record) => record.keyId === "key_local_demo");

    // Assess
    assert.equal(apiKeyShape(DEMO_API_KEY), "current");
    assert.equal(seeded?.keyHash, hashCredential(DEMO_API_KEY));
  });
});
