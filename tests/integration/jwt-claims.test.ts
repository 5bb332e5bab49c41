import assert from "node:assert/strict";
import { sign } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { createJwtAuthenticator } from "#shared/auth/jwt.ts";
import { gatewayTrusting, startJwksServer, TEST_AUDIENCE, type TestIssuer } from "../support/jwks-server.ts";

const AUDIENCE = TEST_AUDIENCE;
const now = () => Math.floor(Date.now() / 1000);

/**
 * aws-jwt-verify drops every `__proto__` and `constructor` key of a token's header and payload (the
 * patch skips that walk only for JSON text that neither spells them out nor escapes a character).
 * The plan and tenant claims are read by configured names, so a token naming them `constructor` and
 * `__proto__` shows whether those keys were dropped.
 */
describe("JWT claims: __proto__ and constructor keys are dropped, spelled out or escaped", () => {
  let jwks: TestIssuer;
  const authenticator = (claims: { plan: string; tenant: string }) =>
    createJwtAuthenticator({ auth: gatewayTrusting(jwks, { claims, auth: { tokenCacheEntries: 0 } }).auth });
  /** A token whose payload is `claimsJson` (raw JSON text, escapes kept) after the standard claims. */
  const token = (claimsJson: string) => {
    const standard = JSON.stringify({
      iss: jwks.issuer,
      aud: AUDIENCE,
      sub: "alice",
      iat: now(),
      exp: now() + 600,
    });
    const payload = `${standard.slice(0, -1)},${claimsJson}}`;
    const b64 = (text: string) => Buffer.from(text).toString("base64url");
    const input = `${b64(JSON.stringify({ alg: "RS256", kid: jwks.rsa.kid }))}.${b64(payload)}`;
    return `${input}.${sign("sha256", Buffer.from(input), jwks.rsa.privateKey).toString("base64url")}`;
  };

  before(async () => {
    jwks = await startJwksServer();
  });
  after(async () => {
    await jwks.stop();
  });

  it("reads the plan and tenant claims by their configured names", async () => {
    const verified = await authenticator({ plan: "tier", tenant: "org" }).verify(
      token('"tier":"gold","org":"acme"'),
    );
    assert.equal(verified.plan, "gold");
    assert.equal(verified.tenant, "acme");
  });

  for (const [how, claimsJson] of [
    ["spelled out", '"constructor":"gold","__proto__":"acme"'],
    ["escaped", '"constructo\\u0072":"gold","\\u005f_proto__":"acme"'],
  ]) {
    it(`drops constructor and __proto__ claims ${how}`, async () => {
      const verified = await authenticator({ plan: "constructor", tenant: "__proto__" }).verify(
        token(claimsJson as string),
      );
      assert.equal(verified.plan, "default");
      assert.equal(verified.tenant, undefined);
    });
  }
});
