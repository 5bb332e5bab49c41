// @ts-check
// The development token issuer of the local stack: an RSA signing key and a self-signed TLS
// certificate for 127.0.0.1, kept in .gatehouse/dev-issuer/ (git-ignored), a JWKS served over HTTPS
// (aws-jwt-verify refuses http://), and token signing for `npm run token`. The local gateway config
// trusts this issuer through `jwksCaFile`; production verification is unchanged.

import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
} from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { join, resolve } from "node:path";
import { HOST, listenOnLoopback, loopbackCertificate } from "./loopback.mjs";

const DEV_ISSUER_DIR = ".gatehouse/dev-issuer";
export const DEV_AUDIENCE = "gatehouse-local";

/** The issuer URL for a port: `https://127.0.0.1:<port>`. @param {number} port */
export const devIssuerUrl = (port) => `https://${HOST}:${port}`;

/**
 * The key material, created on first use and kept, so tokens stay valid across restarts.
 * @param {string} root the project folder
 */
async function devIssuerKeys(root) {
  const dir = resolve(root, DEV_ISSUER_DIR);
  const files = {
    signingKey: join(dir, "signing-key.pem"),
    tlsKey: join(dir, "tls-key.pem"),
    ca: join(dir, "ca.pem"),
  };
  if (!existsSync(files.signingKey) || !existsSync(files.tlsKey) || !existsSync(files.ca)) {
    mkdirSync(dir, { recursive: true });
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const tls = await loopbackCertificate("Gatehouse dev issuer");
    writeFileSync(files.signingKey, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    writeFileSync(files.tlsKey, tls.private, { mode: 0o600 });
    writeFileSync(files.ca, tls.cert);
  }
  const privateKey = createPrivateKey(readFileSync(files.signingKey));
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  const kid = createHash("sha256").update(String(jwk.n)).digest("base64url").slice(0, 16);
  return { files, privateKey, kid, jwks: { keys: [{ ...jwk, kid, alg: "RS256", use: "sig" }] } };
}

/**
 * Serves the JWKS and a minimal OpenID configuration over HTTPS on 127.0.0.1:`port`.
 * @param {string} root @param {number} port
 * @returns {Promise<import('node:https').Server>}
 */
export async function startDevIssuer(root, port) {
  const { files, jwks } = await devIssuerKeys(root);
  const issuer = devIssuerUrl(port);
  const body = {
    "/.well-known/jwks.json": JSON.stringify(jwks),
    "/.well-known/openid-configuration": JSON.stringify({
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks.json`,
    }),
  };
  const server = createServer(
    { key: readFileSync(files.tlsKey), cert: readFileSync(files.ca) },
    (request, response) => {
      const path = /** @type {keyof typeof body} */ (request.url ?? "");
      if (!(path in body)) return void response.writeHead(404).end();
      response.writeHead(200, { "content-type": "application/json" }).end(body[path]);
    },
  );
  return listenOnLoopback(server, port, "GATEHOUSE_ISSUER_PORT");
}

/**
 * Signs an RS256 access token for the dev issuer.
 * @param {string} root
 * @param {{ port: number, sub: string, scope?: string, ttlSeconds?: number, audience?: string, claims?: Record<string, string> }} options
 */
export async function devToken(
  root,
  { port, sub, scope, ttlSeconds = 3600, audience = DEV_AUDIENCE, claims = {} },
) {
  const { privateKey, kid } = await devIssuerKeys(root);
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: "RS256", typ: "JWT", kid };
  const payload = {
    ...claims,
    iss: devIssuerUrl(port),
    aud: audience,
    sub,
    ...(scope ? { scope } : {}),
    iat: now,
    exp: now + ttlSeconds,
    jti: randomUUID(),
  };
  const encode = (/** @type {unknown} */ value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const input = `${encode(header)}.${encode(payload)}`;
  return `${input}.${sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
}
