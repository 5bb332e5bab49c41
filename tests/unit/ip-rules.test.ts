import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { compileIpRules } from "#shared/auth/ip-rules.ts";

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((parts) => parts.join("."));

describe("IP rules", () => {
  it("with no rules, everything is allowed", () => {
    assert.deepEqual(compileIpRules({ allow: [], deny: [] })(undefined), { allowed: true });
  });

  it("deny wins over allow, and a non-empty allow list admits only its blocks", () => {
    const check = compileIpRules({ allow: ["10.0.0.0/8"], deny: ["10.6.6.0/24"] });
    assert.equal(check("10.1.2.3").allowed, true);
    assert.equal(check("10.6.6.6").allowed, false);
    assert.equal(check("11.0.0.1").allowed, false);
  });

  it("matches IPv6 blocks, and IPv4-mapped IPv6 addresses as IPv4 (both ways)", () => {
    const check = compileIpRules({
      allow: [],
      deny: ["2001:db8::/32", "192.0.2.0/24", "::ffff:198.51.100.0/120"],
    });
    assert.equal(check("2001:db8:1::5").allowed, false);
    assert.equal(check("2001:db9::5").allowed, true);
    assert.equal(check("::ffff:192.0.2.10").allowed, false);
    assert.equal(check("198.51.100.77").allowed, false);
  });

  it("global and route allow lists must both admit the address", () => {
    const check = compileIpRules({ allow: ["10.0.0.0/8"], deny: [] }, { allow: ["10.1.0.0/16"], deny: [] });
    assert.equal(check("10.1.9.9").allowed, true);
    assert.equal(check("10.2.9.9").allowed, false);
  });

  it("fails closed on a missing or unparsable address once any rule exists", () => {
    const check = compileIpRules({ allow: [], deny: ["192.0.2.0/24"] });
    for (const ip of [undefined, "", "localhost", "300.1.1.1", "1.2.3.4/8"])
      assert.equal(check(ip).allowed, false, String(ip));
  });

  it("property: an address inside a /prefix block is allowed by it and denied by its deny twin", () => {
    fc.assert(
      fc.property(v4, fc.integer({ min: 0, max: 32 }), (address, prefix) => {
        const [a, b, c, d] = address.split(".").map(Number) as [number, number, number, number];
        const value = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const network = (value & mask) >>> 0;
        const block = `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join(".")}/${prefix}`;
        assert.equal(compileIpRules({ allow: [block], deny: [] })(address).allowed, true);
        assert.equal(compileIpRules({ allow: [], deny: [block] })(address).allowed, false);
      }),
      { numRuns: 500 },
    );
  });
});
