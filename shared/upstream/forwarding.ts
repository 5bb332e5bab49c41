import type { Identity } from "../auth/identity.ts";
import { formatScopes } from "../auth/scopes.ts";

/**
 * Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus ones fetch sets itself, and
 * `Expect`: API Gateway has already taken the whole body, so a client's `100-continue` means nothing
 * upstream (and fetch refuses to send it).
 */
const HOP_BY_HOP = new Set([
  "connection",
  "expect",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);

/** The gateway's trusted identity headers; a client's own copies are always removed. */
export const IDENTITY_HEADER_PREFIX = "x-gatehouse-";

export interface ForwardingContext {
  headers: Record<string, string | undefined>;
  identity: Identity | undefined;
  requestId: string;
  sourceIp: string | undefined;
  /** Pass `Authorization` on to the upstream (off by default: it was meant for the gateway). */
  forwardAuthorization?: boolean;
}

/**
 * The client's headers, with its cookies as one `cookie` header. Payload 2.0 moves them out of the
 * headers into `event.cookies` (one `name=value` each), so they are joined again with "; " (RFC 6265
 * §5.4). An event with both (serverless-offline keeps the header) sends them once: the array wins.
 */
export function clientHeaders(event: {
  headers: Record<string, string | undefined>;
  cookies?: readonly string[] | undefined;
}): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(event.headers)) if (value !== undefined) out[name] = value;
  if (event.cookies && event.cookies.length > 0) out.cookie = event.cookies.join("; ");
  return out;
}

/**
 * The headers an upstream receives: the client's end-to-end headers, without the gateway's own
 * credentials and without anything claiming to be a gateway identity header; then the caller's
 * identity as trusted `x-gatehouse-*` headers, `X-Forwarded-*`, and the request id.
 */
export function upstreamRequestHeaders(context: ForwardingContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(context.headers)) {
    const name = rawName.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(name) || name.startsWith(IDENTITY_HEADER_PREFIX)) continue;
    if (name === "x-api-key" || (name === "authorization" && !context.forwardAuthorization)) continue;
    if (name.startsWith("x-forwarded-")) continue; // rebuilt below
    out[name] = value;
  }
  const identity = context.identity;
  if (identity) {
    out[`${IDENTITY_HEADER_PREFIX}principal`] = identity.principal;
    out[`${IDENTITY_HEADER_PREFIX}auth-type`] = identity.authType;
    out[`${IDENTITY_HEADER_PREFIX}plan`] = identity.plan;
    out[`${IDENTITY_HEADER_PREFIX}scopes`] = formatScopes(identity.scopes);
    if (identity.tenant) out[`${IDENTITY_HEADER_PREFIX}tenant`] = identity.tenant;
    if (identity.keyId) out[`${IDENTITY_HEADER_PREFIX}key-id`] = identity.keyId;
  }
  const forwardedFor = context.headers["x-forwarded-for"] ?? context.sourceIp;
  if (forwardedFor) out["x-forwarded-for"] = forwardedFor;
  out["x-forwarded-proto"] = context.headers["x-forwarded-proto"] ?? "https";
  const host = context.headers.host;
  if (host) out["x-forwarded-host"] = host;
  out["x-request-id"] = context.requestId;
  return out;
}

/** The upstream's response headers as the client receives them (hop-by-hop ones dropped). */
export function clientResponseHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) out[name.toLowerCase()] = value;
  }
  return out;
}
