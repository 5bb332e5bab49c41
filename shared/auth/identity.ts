import type { ConnectConfig, GatewayConfig, RouteAuth } from "../config/gateway.ts";
import { ForbiddenError, HttpError, UnauthorizedError } from "../errors.ts";
import { routeKeyCandidates } from "../routing/router.ts";
import type { ApiKeyRecord } from "./api-key-check.ts";
import { compileIpRules, type IpVerdict } from "./ip-rules.ts";
import type { VerifiedToken } from "./jwt.ts";
import { formatScopes, parseScopes } from "./scopes.ts";

/** Who is calling, as the authorizers hand it to API Gateway (and so to every handler). */
export interface Identity {
  principal: string;
  authType: "jwt" | "apiKey" | "public";
  plan: string;
  scopes: string[];
  tenant?: string;
  keyId?: string;
  issuer?: string;
}

export interface Credentials {
  /** `Authorization: Bearer <jwt>`, the `token` query parameter or a WebSocket subprotocol. */
  bearer?: string;
  /** `x-api-key`. */
  apiKey?: string;
}

export interface AuthorizeRequest {
  /** `GET /things/{id}`, or `$connect` for the WebSocket API. */
  routeKey: string;
  sourceIp: string | undefined;
  credentials: Credentials;
}

/**
 * Why a request was refused, from a fixed set (a metric dimension): an undeclared route, the IP rules,
 * missing or invalid credentials (401), missing scopes, credentials refused otherwise (revoked, IP
 * bound), no decision in time, or an unexpected failure.
 */
type DenyCode = "route" | "ip" | "credentials" | "scope" | "forbidden" | "timeout" | "error";

export type Decision =
  | { allow: true; identity: Identity }
  /** 401: no usable credentials; 403: credentials, IP or scopes refused. `reason` is for the log only. */
  | { allow: false; status: 401 | 403; code: DenyCode; reason: string };

export interface IdentityCoreOptions {
  config: Pick<GatewayConfig, "routes" | "ipRules">;
  /** Route requirements for the WebSocket `$connect`. */
  connect?: ConnectConfig;
  verifyToken: (token: string) => Promise<VerifiedToken>;
  authenticateApiKey: (key: string, sourceIp: string | undefined) => Promise<ApiKeyRecord>;
}

/**
 * The one identity decision behind both authorizers. In order: the route's requirements (an
 * undeclared route is refused), IP rules (before any cryptography or database call), then the
 * credential the route asks for and its scopes. Every failure, including an unexpected one, is a
 * refusal: it fails closed.
 */
export function createIdentityCore({
  config,
  connect,
  verifyToken,
  authenticateApiKey,
}: IdentityCoreOptions) {
  const routes = new Map(
    Object.entries({ ...config.routes, ...(connect ? { $connect: connect } : {}) }).map(([key, route]) => [
      key,
      { auth: route.auth, checkIp: compileIpRules(config.ipRules, route.ipRules) },
    ]),
  );

  return async function authorize({ routeKey, sourceIp, credentials }: AuthorizeRequest): Promise<Decision> {
    const route = routeKeyCandidates(routeKey)
      .map((key) => routes.get(key))
      .find((found) => found !== undefined);
    if (!route)
      return {
        allow: false,
        status: 403,
        code: "route",
        reason: `route ${routeKey} is not declared in the gateway config`,
      };
    const ip: IpVerdict = route.checkIp(sourceIp);
    if (!ip.allowed) return { allow: false, status: 403, code: "ip", reason: ip.reason };
    try {
      return { allow: true, identity: await identify(route.auth, credentials, sourceIp) };
    } catch (error) {
      if (error instanceof HttpError && (error.statusCode === 401 || error.statusCode === 403)) {
        const code =
          error.statusCode === 401
            ? "credentials"
            : error instanceof MissingScopeError
              ? "scope"
              : "forbidden";
        return { allow: false, status: error.statusCode, code, reason: error.message };
      }
      return { allow: false, status: 403, code: "error", reason: `authorization failed: ${String(error)}` };
    }
  };

  async function identify(
    auth: RouteAuth,
    credentials: Credentials,
    sourceIp: string | undefined,
  ): Promise<Identity> {
    if (auth === "public") {
      return {
        principal: `anonymous:${sourceIp ?? "unknown"}`,
        authType: "public",
        plan: "anonymous",
        scopes: [],
      };
    }
    if ("jwt" in auth) {
      if (!credentials.bearer) throw new UnauthorizedError("no bearer token");
      const token = await verifyToken(credentials.bearer);
      requireScopes(auth.jwt.scopes, token.scopes);
      return {
        principal: `${token.issuerId}:${token.subject}`,
        authType: "jwt",
        plan: token.plan,
        scopes: token.scopes,
        tenant: token.tenant,
        issuer: token.issuerId,
      };
    }
    if (!credentials.apiKey) throw new UnauthorizedError("no API key");
    const key = await authenticateApiKey(credentials.apiKey, sourceIp);
    const scopes = parseScopes(key.scopes);
    requireScopes(auth.apiKey.scopes, scopes);
    return {
      principal: `key:${key.owner}`,
      authType: "apiKey",
      plan: key.plan,
      scopes,
      tenant: key.tenant,
      keyId: key.keyId,
    };
  }
}

/** A 403 for scopes the credential lacks (told apart from other refusals in the denial metric). */
class MissingScopeError extends ForbiddenError {}

function requireScopes(required: string[], granted: string[]): void {
  const missing = required.filter((scope) => !granted.includes(scope));
  if (missing.length > 0) throw new MissingScopeError(`missing scope(s): ${missing.join(" ")}`);
}

/** The identity as an API Gateway authorizer context: flat strings only. */
export function identityContext(identity: Identity): Record<string, string> {
  return {
    principal: identity.principal,
    authType: identity.authType,
    plan: identity.plan,
    scopes: formatScopes(identity.scopes),
    tenant: identity.tenant ?? "",
    keyId: identity.keyId ?? "",
    issuer: identity.issuer ?? "",
  };
}

/**
 * The caller's identity in a handler behind an authorizer: API Gateway puts the authorizer's context
 * at `requestContext.authorizer.lambda`. A route with no authorizer has none (401).
 */
/** The caller's identity when an authorizer ran; undefined on a public route (no error is built). */
export function optionalIdentity(event: { requestContext: unknown }): Identity | undefined {
  const authorizer = (event.requestContext as { authorizer?: { lambda?: unknown } }).authorizer;
  if (!authorizer?.lambda) return undefined;
  try {
    return requestIdentity(event);
  } catch {
    return undefined;
  }
}

export function requestIdentity(event: { requestContext: unknown }): Identity {
  const authorizer = (event.requestContext as { authorizer?: { lambda?: Record<string, unknown> } })
    .authorizer;
  const context = authorizer?.lambda;
  if (!context || typeof context.principal !== "string")
    throw new UnauthorizedError("This route needs credentials");
  const text = (name: string) =>
    typeof context[name] === "string" && context[name] !== "" ? (context[name] as string) : undefined;
  return {
    principal: context.principal,
    authType: (text("authType") ?? "public") as Identity["authType"],
    plan: text("plan") ?? "default",
    scopes: parseScopes(text("scopes") ?? ""),
    ...(text("tenant") ? { tenant: text("tenant") } : {}),
    ...(text("keyId") ? { keyId: text("keyId") } : {}),
    ...(text("issuer") ? { issuer: text("issuer") } : {}),
  };
}
