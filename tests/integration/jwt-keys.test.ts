import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Jwk, Jwks } from "aws-jwt-verify/jwk";
import { createJwtAuthenticator, type VerifiedToken } from "#shared/auth/jwt.ts";
import {
  gatewayTrusting,
  publicPem,
  signJwt,
  startJwksServer,
  TEST_AUDIENCE,
  type TestIssuer,
} from "../support/jwks-server.ts";

const AUDIENCE = TEST_AUDIENCE;
const now = () => Math.floor(Date.now() / 1000);

/**
 * The checks that depend on the key alone (kty, use, key fields) run once per JWK object; these tests
 * hold that a key used many times still refuses what it must, every time, and that the checks that
 * depend on the token (its alg against the key's) are never skipped.
 */
describe("JWT keys: every token is checked against its JWK, however often the JWK has been used", () => {
  let jwks: TestIssuer;
  let verify: (token: string) => Promise<VerifiedToken>;

  const payload = (sub = "alice") => ({ iss: jwks.issuer, aud: AUDIENCE, sub, iat: now(), exp: now() + 600 });
  const rs256 = (kid: string, sub?: string) =>
    signJwt({ alg: "RS256", kid }, payload(sub), { alg: "RS256", privateKey: jwks.rsa.privateKey });
  const es256 = (kid: string) =>
    signJwt({ alg: "ES256", kid }, payload(), { alg: "ES256", privateKey: jwks.ec.privateKey });
  const hs256 = (kid: string) =>
    signJwt({ alg: "HS256", kid }, payload(), { alg: "HS256", hmacSecret: publicPem(jwks.rsa.publicKey) });
  const refused = async (token: string, reason: RegExp) => {
    await assert.rejects(verify(token), (error: Error) => {
      assert.match(error.message, reason);
      return true;
    });
  };

  before(async () => {
    jwks = await startJwksServer();
    const rsa = jwks.rsa.publicKey.export({ format: "jwk" });
    const ec = jwks.ec.publicKey.export({ format: "jwk" });
    // The issuer's JWKS as shipped with the deployment: no fetch, and keys the test server never serves.
    const keys = [
      { ...rsa, kid: "rs-1", alg: "RS256", use: "sig" },
      { ...ec, kid: "es-1", alg: "ES256", use: "sig" },
      { ...rsa, kid: "enc-1", alg: "RS256", use: "enc" },
      { ...rsa, kid: "bare-1" },
      { kty: "oct", kid: "oct-1", k: Buffer.from(publicPem(jwks.rsa.publicKey)).toString("base64url") },
    ] as Jwk[];
    const gateway = gatewayTrusting(jwks, { auth: { tokenCacheEntries: 0 } });
    const authenticator = createJwtAuthenticator({
      auth: gateway.auth,
      shippedJwks: new Map<string, Jwks>([[jwks.jwksUri, { keys }]]),
    });
    verify = (token) => authenticator.verify(token);
  });
  after(async () => {
    await jwks.stop();
  });

  it("refuses a token whose alg is not its JWK's, after that JWK has verified other tokens", async () => {
    for (const sub of ["alice", "bob"]) assert.equal((await verify(rs256("rs-1", sub))).subject, sub);
    await verify(es256("es-1"));

    await refused(es256("rs-1"), /signature algorithm not allowed: ES256/);
    await refused(rs256("es-1"), /signature algorithm not allowed: RS256/);
    await refused(rs256("es-1"), /signature algorithm not allowed: RS256/);
    assert.equal((await verify(rs256("rs-1", "carol"))).subject, "carol");
  });

  it("refuses, on every call, a token whose JWK is an encryption key", async () => {
    for (let i = 0; i < 3; i++) await refused(rs256("enc-1"), /JWK use not allowed: enc/);
  });

  it("refuses, on every call, a token whose JWK is not of a signature key type", async () => {
    for (let i = 0; i < 3; i++) await refused(hs256("oct-1"), /JWK kty not allowed: oct/);
  });

  it("a JWK without alg verifies the token's RS256, and still refuses HS256 after it has", async () => {
    assert.equal((await verify(rs256("bare-1"))).subject, "alice");
    await refused(hs256("bare-1"), /signature algorithm not allowed: HS256/);
    await refused(hs256("bare-1"), /signature algorithm not allowed: HS256/);
  });
});
