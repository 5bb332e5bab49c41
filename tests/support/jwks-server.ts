import { createHmac, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  defineGateway,
  type GatewayConfig,
  type GatewayConfigInput,
  loadGateway,
} from "#shared/config/gateway.ts";
import { loopbackCertificate } from "../../plugins/loopback.mjs";

type JwksMode = "up" | "down" | "slow";

/** The audience the tests' tokens carry and their gateways expect. */
export const TEST_AUDIENCE = "gatehouse-tests";

/**
 * A gateway config that trusts `jwks` alone (OIDC issuer `test`, its CA, audience TEST_AUDIENCE) and
 * has one JWT route; `claims` maps the issuer's plan and tenant claims, `auth` adds to the auth section.
 */
export function gatewayTrusting(
  jwks: TestIssuer,
  {
    claims,
    auth = {},
    stage = "test",
  }: {
    claims?: { plan?: string; tenant?: string };
    auth?: Partial<GatewayConfigInput["auth"]>;
    stage?: string;
  } = {},
): GatewayConfig {
  return loadGateway(
    defineGateway(() => ({
      auth: {
        issuers: [
          {
            kind: "oidc",
            id: "test",
            issuer: jwks.issuer,
            audience: [TEST_AUDIENCE],
            jwksCaFile: jwks.caFile,
            ...(claims ? { claims } : {}),
          },
        ],
        ...auth,
      },
      routes: { "GET /jwt": { auth: { jwt: {} }, handler: "whoami" } },
    })),
    stage,
  );
}

export interface TestIssuer {
  /** `https://127.0.0.1:<port>`: the `iss` of tokens this server's keys sign. */
  issuer: string;
  jwksUri: string;
  /** PEM of the server's self-signed certificate: the CA the verifier trusts. */
  caFile: string;
  ca: string;
  rsa: { kid: string; privateKey: KeyObject; publicKey: KeyObject };
  ec: { kid: string; privateKey: KeyObject; publicKey: KeyObject };
  /** JWKS requests served so far. */
  requests(): number;
  /** Settles when the client gives up on (closes) a request left unanswered in `slow` mode. */
  nextAbandoned(): Promise<void>;
  setMode(mode: JwksMode): void;
  stop(): Promise<void>;
}

/** A real JWKS server over HTTPS on 127.0.0.1 (aws-jwt-verify refuses http://), with RS256 and ES256 keys. */
export async function startJwksServer(): Promise<TestIssuer> {
  const rsa = { kid: "rs-1", ...generateKeyPairSync("rsa", { modulusLength: 2048 }) };
  const ec = { kid: "es-1", ...generateKeyPairSync("ec", { namedCurve: "P-256" }) };
  const jwks = JSON.stringify({
    keys: [
      { ...rsa.publicKey.export({ format: "jwk" }), kid: rsa.kid, alg: "RS256", use: "sig" },
      { ...ec.publicKey.export({ format: "jwk" }), kid: ec.kid, alg: "ES256", use: "sig" },
    ],
  });
  const tls = await loopbackCertificate("127.0.0.1");
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-jwks-"));
  const caFile = join(dir, "ca.pem");
  writeFileSync(caFile, tls.cert);

  let mode: JwksMode = "up";
  let requests = 0;
  const abandonWaiters: (() => void)[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer({ key: tls.private, cert: tls.cert }, (request, response) => {
    requests++;
    if (mode === "down") return request.socket.destroy();
    if (mode === "slow") {
      // Never answers: the verifier's timeout must end it, by closing the request.
      request.socket.once("close", () => {
        for (const settle of abandonWaiters.splice(0)) settle();
      });
      return;
    }
    if (request.url !== "/.well-known/jwks.json") {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { "content-type": "application/json" }).end(jwks);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    jwksUri: `${issuer}/.well-known/jwks.json`,
    caFile,
    ca: tls.cert,
    rsa,
    ec,
    requests: () => requests,
    nextAbandoned: () => new Promise<void>((resolve) => abandonWaiters.push(resolve)),
    setMode: (next) => {
      mode = next;
    },
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const b64url = (value: string | Buffer) => Buffer.from(value).toString("base64url");

export type SignAlg = "RS256" | "ES256" | "HS256" | "none";

/**
 * Signs a JWT with node:crypto. `HS256` uses `hmacSecret` (e.g. the RSA public key's PEM, the classic
 * algorithm-confusion attack); `none` leaves the signature empty.
 */
export function signJwt(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: { alg: SignAlg; privateKey?: KeyObject; hmacSecret?: string },
): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  let signature = Buffer.alloc(0);
  if (key.alg === "RS256" && key.privateKey) signature = sign("sha256", Buffer.from(input), key.privateKey);
  if (key.alg === "ES256" && key.privateKey) {
    signature = sign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  }
  if (key.alg === "HS256")
    signature = createHmac("sha256", Buffer.from(key.hmacSecret ?? ""))
      .update(input)
      .digest();
  return `${input}.${b64url(signature)}`;
}

/** The PEM of a public key (for the HS256 confusion attack). */
export function publicPem(publicKey: KeyObject): string {
  return publicKey.export({ format: "pem", type: "spki" }).toString();
}
