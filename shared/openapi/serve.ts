import { createHash } from "node:crypto";
import type { HttpResult } from "../http.ts";
import { httpHandler } from "../middleware/http-handler.ts";

/**
 * An HTTP handler that serves one JSON document, public and cacheable: serialised once, with a
 * strong ETag (SHA-256 of the bytes) and `Cache-Control: public`; an `If-None-Match` that matches
 * gets 304 and no body.
 *
 * Example: `export const handler = documentHandler(openApiDocument(config, info))`.
 */
export function documentHandler(document: unknown, { maxAgeSeconds = 300 }: { maxAgeSeconds?: number } = {}) {
  const body = JSON.stringify(document);
  const etag = `"${createHash("sha256").update(body).digest("base64url")}"`;
  const cacheHeaders = { etag, "cache-control": `public, max-age=${maxAgeSeconds}` };
  return httpHandler(async (event): Promise<HttpResult> => {
    // If-None-Match compares weakly (RFC 9110 §13.1.2): a W/ prefix a proxy added still matches.
    const candidates = (event.headers["if-none-match"] ?? "").split(",").map((tag) => tag.trim());
    if (candidates.some((tag) => tag === "*" || tag.replace(/^W\//, "") === etag)) {
      return { statusCode: 304, headers: cacheHeaders };
    }
    return {
      statusCode: 200,
      headers: { "content-type": "application/json; charset=utf-8", ...cacheHeaders },
      body,
    };
  });
}
