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
    const set = (name: string, value: string) => {
      out[`${IDENTITY_HEADER_PREFIX}${name}`] = identityHeaderValue(value);
    };
    set("principal", identity.principal);
    set("auth-type", identity.authType);
    set("plan", identity.plan);
    set("scopes", formatScopes(identity.scopes));
    if (identity.tenant) set("tenant", identity.tenant);
    if (identity.keyId) set("key-id", identity.keyId);
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

/** Visible ASCII, with spaces inside only: every HTTP stack reads it back exactly as it was sent. */
const PLAIN_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;
const EXT_VALUE_PREFIX = "UTF-8''";
/** RFC 8187 attr-char: what an ext-value carries as it is; every other byte is percent-encoded. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+.^_`|~-]/;
const EXT_VALUE_BYTE = Array.from({ length: 256 }, (_, byte) => {
  const char = String.fromCharCode(byte);
  return ATTR_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
});

/**
 * An identity value as a header value. Visible ASCII (inner spaces allowed) is sent as it is. Anything
 * else (characters above U+007E, control characters, leading or trailing spaces, or a value that
 * itself starts with `UTF-8''`) is sent as an RFC 8187 ext-value: `UTF-8''` and the value's UTF-8
 * bytes, percent-encoded outside attr-char. So no value is unsendable or ambiguous, and an upstream
 * gets the exact value back with
 * `value.startsWith("UTF-8''") ? decodeURIComponent(value.slice(7)) : value`.
 * Example: `key:東京チーム` → `UTF-8''key%3A%E6%9D%B1%E4%BA%AC%E3%83%81%E3%83%BC%E3%83%A0`.
 */
export function identityHeaderValue(value: string): string {
  if (PLAIN_VALUE.test(value) && value.slice(0, EXT_VALUE_PREFIX.length).toUpperCase() !== EXT_VALUE_PREFIX) {
    return value;
  }
  let out = EXT_VALUE_PREFIX;
  for (const byte of Buffer.from(value, "utf8")) out += EXT_VALUE_BYTE[byte];
  return out;
}
