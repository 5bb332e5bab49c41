import * as v from "valibot";
import { cidr, described, int, strict } from "./fields.ts";

/** HTTP behaviour of the gateway function: CORS, compression, forwarding and version headers. */

const corsOrigin = v.pipe(
  v.string(),
  v.regex(
    /^(\*|https?:\/\/(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?)$/,
    "an origin is *, https://app.example.com, or https://*.example.com (scheme and host, no path)",
  ),
  v.description("`*`, an exact origin, or one wildcard leftmost label: `https://*.example.com`."),
);

export const CorsSchema = v.pipe(
  strict("cors", {
    origins: described(
      v.pipe(v.array(corsOrigin), v.minLength(1, "list the origins that may call this route")),
      "Origins that may call.",
    ),
    credentials: described(
      v.optional(v.boolean(), false),
      "Allow cookies and credentials (`Access-Control-Allow-Credentials`); never with origin `*`.",
    ),
    headers: described(
      v.optional(v.array(v.string()), ["content-type", "authorization", "x-api-key", "x-request-id"]),
      "Request headers a browser may send.",
    ),
    exposeHeaders: described(
      v.optional(v.array(v.string()), ["x-request-id", "retry-after"]),
      "Response headers a browser script may read.",
    ),
    maxAgeSeconds: described(
      v.optional(int(0, 86_400), 600),
      "How long a browser caches a preflight answer.",
    ),
  }),
  v.check(
    (cors) => !(cors.credentials && cors.origins.includes("*")),
    'origins "*" with credentials would let any site call with the user\'s cookies; list the origins',
  ),
);

/** Defaults chosen with `npm run bench -- gatewayBodies` (docs/proxying.md). */
const COMPRESSION_DEFAULTS = { minBytes: 1_024, gzipLevel: 1, brotliQuality: 1 };
const CompressionSchema = v.strictObject({
  minBytes: described(
    v.optional(int(0, 1_048_576), COMPRESSION_DEFAULTS.minBytes),
    "The smallest body compressed, in bytes.",
  ),
  gzipLevel: described(
    v.optional(int(1, 9), COMPRESSION_DEFAULTS.gzipLevel),
    "zlib's gzip level, 1 (fastest) to 9 (smallest).",
  ),
  brotliQuality: described(
    v.optional(int(0, 11), COMPRESSION_DEFAULTS.brotliQuality),
    "Brotli's quality, 0 (fastest) to 11 (smallest; far too slow for answers made per request).",
  ),
});

/** The top-level members of the HTTP concern. */
export const httpEntries = {
  trustedProxies: described(
    v.optional(
      v.array(
        v.pipe(
          cidr,
          v.check(
            (block) => !block.endsWith("/0"),
            "a /0 block trusts every address, so any client could forge its X-Forwarded-For; list your proxies' ranges",
          ),
        ),
      ),
      [],
    ),
    "Proxies in front of API Gateway (a CDN, a corporate proxy), as CIDR blocks: a request that comes from one keeps its X-Forwarded-For chain and Forwarded elements, extended by the gateway. Empty (the default): the gateway is the first hop, and a client's own forwarding headers are dropped.",
  ),
  versionHeader: described(
    v.optional(
      v.pipe(v.string(), v.regex(/^[a-z0-9-]+$/, "a lower-case header name, such as x-api-version")),
      "x-api-version",
    ),
    "The request header that picks a route's `proxy.versions` entry.",
  ),
  cors: described(
    v.optional(CorsSchema),
    "Default CORS for every proxied route (a route's own `cors` replaces it).",
  ),
  compression: described(
    v.optional(
      v.union(
        [CompressionSchema, v.literal(false)],
        "compression is { minBytes, gzipLevel, brotliQuality } or false",
      ),
      COMPRESSION_DEFAULTS,
    ),
    "Answers of the gateway function that are not compressed yet are compressed (br, else gzip, as the client accepts) when they are text-like; `false` never compresses. See docs/proxying.md.",
  ),
};
