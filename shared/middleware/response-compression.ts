import type middy from "@middy/core";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import {
  type AcceptedCodings,
  acceptedCodings,
  addVary,
  type CompressionLevels,
  compressBody,
  preferredCoding,
  recodedHeaders,
  TEXT_MEDIA,
} from "../upstream/encoding.ts";

/** The config's `compression`: the smallest body compressed, and how hard. */
export interface CompressionOptions extends CompressionLevels {
  minBytes: number;
}

type Headers = Record<string, string | number | boolean>;

/** Statuses whose body is not a whole representation (206) or that carry none. */
const NOT_COMPRESSED = new Set([204, 206, 304]);

const headerOf = (headers: Headers, name: string) =>
  String(headers[Object.keys(headers).find((key) => key.toLowerCase() === name) ?? name] ?? "");

/**
 * The answer's body compressed for this client (br, else gzip, as it accepts), or undefined to send it
 * as it is. Only answers not compressed yet, of a text-like media type and at least `minBytes`; never
 * a partial answer, a HEAD, or one marked `Cache-Control: no-transform`. An answer that qualifies gets
 * `Vary: accept-encoding` whatever this client asked, since another client would get other bytes.
 * When it compresses, it sets `content-encoding` (and weakens the ETag) in `headers`.
 */
export function compressForClient(
  body: Buffer,
  answer: { status: number; method: string; headers: Headers; accepted: AcceptedCodings },
  options: CompressionOptions,
): Buffer | undefined {
  const { status, method, headers } = answer;
  if (body.byteLength < options.minBytes || body.byteLength === 0) return;
  if (status < 200 || NOT_COMPRESSED.has(status) || method.toUpperCase() === "HEAD") return;
  if (headerOf(headers, "content-encoding") !== "" || !TEXT_MEDIA.test(headerOf(headers, "content-type")))
    return;
  if (/\bno-transform\b/i.test(headerOf(headers, "cache-control"))) return;
  addVary(headers, "accept-encoding");
  const coding = preferredCoding(answer.accepted);
  if (!coding) return;
  const compressed = compressBody(body, coding, options);
  if (compressed.byteLength >= body.byteLength) return;
  recodedHeaders(headers, coding);
  return compressed;
}

/**
 * The compression step, for bodies the gateway made or changed after the handler (a response mapping,
 * an aggregate's merge): runs after the response transform, so it sees the final body. The proxy
 * handler compresses an unmapped upstream answer itself, from its bytes, before they become a string.
 */
export function responseCompression(
  options: CompressionOptions,
): middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext> {
  const responseCompressionAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    const response = request.response;
    if (!response || typeof response.body !== "string" || response.body === "") return;
    if (headerOf(response.headers, "content-encoding") !== "") return;
    const body = Buffer.from(response.body, response.isBase64Encoded ? "base64" : "utf8");
    const compressed = compressForClient(
      body,
      {
        status: response.statusCode ?? 200,
        method: request.event.requestContext.http.method,
        headers: response.headers,
        accepted: acceptedCodings(request.event.headers["accept-encoding"]),
      },
      options,
    );
    if (!compressed) return;
    response.body = compressed.toString("base64");
    response.isBase64Encoded = true;
  };
  return { after: responseCompressionAfter };
}
