import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { apiKeyShape, missSource } from "#shared/auth/api-key-check.ts";
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

describe("where a lookup that finds no key is counted (missSource)", () => {
  it("counts an IPv4 address as itself, an IPv4-mapped IPv6 one as its IPv4, and an IPv6 one by its /64", () => {
    assert.equal(missSource("203.0.113.9"), "203.0.113.9");
    assert.equal(missSource("::ffff:203.0.113.9"), "203.0.113.9");
    assert.equal(missSource("2001:db8:1:2::1"), "2001:db8:1:2::/64");
    assert.equal(missSource("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
    assert.equal(missSource("2001:db8:1:3::1"), "2001:db8:1:3::/64");
  });

  it("puts a missing or unparsable address in one shared bucket", () => {
    for (const ip of [undefined, "", "localhost", "300.1.1.1"])
      assert.equal(missSource(ip), "unknown", String(ip));
  });
});
