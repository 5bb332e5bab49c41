import { isIPv4 } from "node:net";
import ipaddr from "ipaddr.js";
import type { Identity } from "../auth/identity.ts";
import { formatScopes } from "../auth/scopes.ts";
import { SECURITY_HEADER_NAMES } from "../middleware/security-headers.ts";

/**
 * Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus ones the HTTP client sets
 * itself, and `Expect`: API Gateway has already taken the whole body, so a client's `100-continue`
 * means nothing upstream.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
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
const IDENTITY_HEADER_PREFIX = "x-gatehouse-";

export interface ForwardingContext {
  headers: Record<string, string | undefined>;
  identity: Identity | undefined;
  requestId: string;
  /** The address that connected to API Gateway (`requestContext.http.sourceIp`). */
  sourceIp: string | undefined;
  /** Pass `Authorization` on to the upstream (off by default: it was meant for the gateway). */
  forwardAuthorization?: boolean;
  /** The scheme the client reached the gateway by: `https` on API Gateway (the default), `http` locally. */
  proto?: "https" | "http";
  /** Whether `sourceIp` is a proxy the config trusts (`trustedProxies`), whose forwarding headers are kept. */
  trusted?: (ip: string | undefined) => boolean;
}

/**
 * Trace context: the gateway's own, per upstream attempt (shared/upstream/http-client.ts), or none.
 * A client's would make the upstream's spans claim a parent, trace and sampling decision the client
 * chose; API Gateway's `X-Amzn-Trace-Id` names the hop before the gateway, not this one.
 */
const TRACE_CONTEXT = new Set(["traceparent", "tracestate", "x-amzn-trace-id"]);

/** Client headers that claim to say where the request came from: rebuilt from the gateway's view. */
const FORWARDING = new Set(["forwarded", "x-real-ip"]);

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
 * credentials and without anything claiming to be a gateway identity header or a forwarding header;
 * then the caller's identity as trusted `x-gatehouse-*` headers, the forwarding headers as the gateway
 * saw the request (`X-Forwarded-For`, `-Proto`, `-Host`, RFC 7239 `Forwarded`), and the request id.
 * No trace context: each attempt adds its own.
 */
export function upstreamRequestHeaders(context: ForwardingContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(context.headers)) {
    const name = rawName.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(name) || name.startsWith(IDENTITY_HEADER_PREFIX)) continue;
    if (name === "x-api-key" || (name === "authorization" && !context.forwardAuthorization)) continue;
    if (name.startsWith("x-forwarded-") || FORWARDING.has(name)) continue; // rebuilt below
    if (TRACE_CONTEXT.has(name)) continue; // the gateway's own, per attempt
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
  Object.assign(out, forwardingHeaders(context));
  out["x-request-id"] = context.requestId;
  return out;
}

/**
 * `X-Forwarded-For`: the source IP, or, behind a trusted proxy, the chain it sent ending with its own
 * address (API Gateway has already appended it; serverless-offline has not). `X-Forwarded-Proto` and
 * `-Host`: the scheme and `Host` the gateway was reached by. `Forwarded` (RFC 7239): an element for
 * this hop, after a trusted proxy's own elements (or ones made from its X-Forwarded-For). Addresses
 * are not obfuscated; IPv6 ones are quoted, and a value that is no address becomes `unknown`.
 */
function forwardingHeaders(context: ForwardingContext): Record<string, string> {
  const { sourceIp, proto = "https" } = context;
  const host = context.headers.host;
  const trusted = sourceIp !== undefined && context.trusted?.(sourceIp) === true;
  const chain = trusted ? listOf(context.headers["x-forwarded-for"]) : [];
  if (sourceIp && chain.at(-1) !== sourceIp) chain.push(sourceIp);
  const earlier = trusted
    ? (context.headers.forwarded ??
      chain
        .slice(0, -1)
        .map((address) => `for=${node(address)}`)
        .join(", "))
    : "";
  const own = [
    `for=${sourceIp ? node(sourceIp) : "unknown"}`,
    ...(host ? [`host=${tokenOrQuoted(host)}`] : []),
    `proto=${proto}`,
  ].join(";");
  return {
    ...(chain.length > 0 ? { "x-forwarded-for": chain.join(", ") } : {}),
    "x-forwarded-proto": proto,
    ...(host ? { "x-forwarded-host": host } : {}),
    forwarded: earlier ? `${earlier}, ${own}` : own,
  };
}

function listOf(header: string | undefined): string[] {
  return (header ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** An RFC 7239 node for an address: IPv4 as it is, IPv6 bracketed and quoted, anything else `unknown`. */
function node(address: string): string {
  // Dotted-quad IPv4 (API Gateway's sourceIp) is as it is: no need for ipaddr's two parses per request.
  if (isIPv4(address)) return address;
  if (!ipaddr.isValid(address)) return "unknown";
  return ipaddr.parse(address).kind() === "ipv6" ? `"[${address}]"` : address;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A parameter value: a token as it is, anything else a quoted-string (RFC 7230 §3.2.6). */
function tokenOrQuoted(value: string): string {
  if (TOKEN.test(value)) return value;
  // qdtext: tab, space, visible ASCII and obs-text; `"` and `\` escaped, anything else dropped.
  return `"${value.replace(/[^\t -~\u0080-\u00ff]/g, "").replace(/(["\\])/g, "\\$1")}"`;
}

/**
 * The upstream's response headers as the client receives them: hop-by-hop ones dropped, CORS ones
 * always (CORS is the gateway's answer, by the route's rules), and the gateway's security headers
 * unless the route passes the upstream's (`passHeaders`), so that the gateway's win.
 */
export function clientResponseHeaders(
  headers: Record<string, string>,
  passHeaders: readonly string[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, value] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (HOP_BY_HOP.has(name) || name.startsWith("access-control-")) continue;
    if (SECURITY_HEADER_NAMES.includes(name) && !passHeaders.includes(name)) continue;
    out[name] = value;
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
