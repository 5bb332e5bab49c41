import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import {
  fetchJwksToShip,
  readShippedJwks,
  SHIPPED_JWKS_MAX_AGE_MS,
  type ShippedJwksFile,
} from "#shared/auth/shipped-jwks.ts";
import type { GatewayConfig } from "#shared/config/gateway.ts";
import {
  gatewayTrusting,
  signJwt,
  startJwksServer,
  TEST_AUDIENCE,
  type TestIssuer,
} from "../support/jwks-server.ts";

const AUDIENCE = TEST_AUDIENCE;
const STAGE = "test";
const now = () => Math.floor(Date.now() / 1000);

function gatewayFor(jwks: TestIssuer): GatewayConfig {
  // Generous: no test here is about a JWKS timeout, and a loaded machine's TLS handshake with
  // the test issuer can take more than a short one.
  return gatewayTrusting(jwks, { auth: { jwksTimeoutMs: 5_000 }, stage: STAGE });
}

describe("shipped JWKS: fetched when packaging, against a real JWKS server that counts requests", () => {
  let jwks: TestIssuer;
  let gateway: GatewayConfig;
  let dir: string;

  const token = (alg: "RS256" | "ES256", sub = "alice") => {
    const key = alg === "RS256" ? jwks.rsa : jwks.ec;
    const payload = { iss: jwks.issuer, aud: AUDIENCE, sub, iat: now(), exp: now() + 600 };
    return signJwt({ alg, kid: key.kid, typ: "JWT" }, payload, { alg, privateKey: key.privateKey });
  };
  /** The file the packaging plugin writes, with `edit` applied, read back as the authorizer reads it. */
  const shipped = async (edit: (file: ShippedJwksFile) => ShippedJwksFile = (file) => file) => {
    const { file } = await fetchJwksToShip(gateway.auth, STAGE);
    assert.ok(file, "the JWKS was fetched");
    const path = join(dir, `shipped-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(path, JSON.stringify(edit(file)));
    return readShippedJwks(path, STAGE);
  };
  const runtime = (shippedJwks: ReturnType<typeof readShippedJwks>) =>
    createAuthorizerRuntime({ gateway, apiKeysTable: "unused", budgetMs: 10_000, shippedJwks });

  before(async () => {
    jwks = await startJwksServer();
    gateway = gatewayFor(jwks);
    dir = mkdtempSync(join(tmpdir(), "gatehouse-shipped-jwks-"));
  });
  after(async () => {
    await jwks.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("a cold authorizer with the shipped JWKS verifies a token with no JWKS request", async () => {
    const shippedJwks = await shipped();
    const before = jwks.requests();

    const decision = await runtime(shippedJwks)({
      routeKey: "GET /jwt",
      sourceIp: "203.0.113.7",
      credentials: { bearer: token("RS256") },
    });

    assert.equal(decision.allow, true);
    assert.equal(jwks.requests() - before, 0);
  });

  it("a token whose kid was not shipped (a rotated key) fetches the issuer's JWKS once", async () => {
    // Shipped before the rotation: the RSA key only; the issuer now also signs with its EC key.
    const shippedJwks = await shipped((file) => ({
      ...file,
      jwks: Object.fromEntries(
        Object.entries(file.jwks).map(([uri, set]) => [
          uri,
          { ...set, keys: set.keys.filter((key) => key.kid === jwks.rsa.kid) },
        ]),
      ),
    }));
    const decide = runtime(shippedJwks);
    const before = jwks.requests();
    const bearer = (value: string) =>
      decide({ routeKey: "GET /jwt", sourceIp: "203.0.113.7", credentials: { bearer: value } });

    const known = await bearer(token("RS256"));
    const afterKnown = jwks.requests() - before;
    const rotated = await bearer(token("ES256", "bob"));
    const again = await bearer(token("ES256", "carol"));

    assert.equal(known.allow, true);
    assert.equal(afterKnown, 0, "the shipped kid needs no request");
    assert.equal(rotated.allow, true);
    assert.equal(again.allow, true);
    assert.equal(jwks.requests() - before, 1, "one request, for the kid that was not shipped");
  });

  it("an unreachable issuer at packaging ships nothing and is named, without throwing", async () => {
    jwks.setMode("down");
    try {
      const { file, failures } = await fetchJwksToShip(gateway.auth, STAGE);

      assert.equal(file, undefined);
      assert.deepEqual(
        failures.map((failure) => [failure.issuer, failure.jwksUri]),
        [["test", jwks.jwksUri]],
      );
    } finally {
      jwks.setMode("up");
    }
  });

  it("a shipped JWKS of another stage, too old, malformed or missing is not used", async () => {
    const stale = new Date(Date.now() - SHIPPED_JWKS_MAX_AGE_MS - 60_000).toISOString();
    const otherStage = join(dir, "other-stage.json");
    const tooOld = join(dir, "too-old.json");
    const malformed = join(dir, "malformed.json");
    const { file } = await fetchJwksToShip(gateway.auth, STAGE);
    assert.ok(file);
    writeFileSync(otherStage, JSON.stringify({ ...file, stage: "prod" }));
    writeFileSync(tooOld, JSON.stringify({ ...file, fetchedAt: stale }));
    writeFileSync(malformed, JSON.stringify({ ...file, jwks: { [jwks.jwksUri]: { keys: "none" } } }));

    assert.equal(readShippedJwks(otherStage, STAGE), undefined);
    assert.equal(readShippedJwks(tooOld, STAGE), undefined);
    assert.equal(readShippedJwks(malformed, STAGE), undefined);
    assert.equal(readShippedJwks(join(dir, "absent.json"), STAGE), undefined);
  });
});
