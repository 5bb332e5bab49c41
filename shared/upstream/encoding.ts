import {
  brotliCompressSync,
  brotliDecompressSync,
  constants,
  gunzipSync,
  gzipSync,
  inflateRawSync,
  inflateSync,
} from "node:zlib";

/**
 * Content codings (RFC 9110 §8.4) between upstreams, the gateway and clients, with Node's zlib. The
 * rule: a `content-encoding` always describes the bytes it comes with. Sync zlib calls, because a
 * Lambda container serves one request at a time: the thread pool would add a hand-off and no overlap.
 */

/** A client's `Accept-Encoding`: coding → q (`x-gzip` is `gzip`). Undefined when the header is absent. */
export type AcceptedCodings = ReadonlyMap<string, number> | undefined;

type Decoder = (body: Buffer, options: { maxOutputLength: number }) => Buffer;

/** `deflate` is the zlib format (RFC 9110 §8.4.1.2), though some servers send raw deflate. */
const inflateEither: Decoder = (body, options) => {
  try {
    return inflateSync(body, options);
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") throw error;
    return inflateRawSync(body, options);
  }
};

const DECODERS: Readonly<Record<string, Decoder>> = {
  gzip: gunzipSync,
  deflate: inflateEither,
  br: brotliDecompressSync,
};

/** The codings the gateway compresses with itself, in its order of preference when q ties. */
export const GATEWAY_CODINGS = ["br", "gzip"] as const;
export type GatewayCoding = (typeof GATEWAY_CODINGS)[number];

/** Media types worth compressing, and sent as text rather than base64 in Lambda's answer. */
export const TEXT_MEDIA =
  /^\s*(text\/|application\/(json|xml|javascript|ecmascript|x-ndjson|graphql|x-www-form-urlencoded)\b|[^;]*\+(json|xml)\b)/i;

const Q_VALUE = /^\s*q\s*=\s*([01](\.\d{0,3})?)\s*$/i;

/** Parses `Accept-Encoding` (RFC 9110 §12.5.3). */
export function acceptedCodings(header: string | undefined): AcceptedCodings {
  if (header === undefined) return undefined;
  const codings = new Map<string, number>();
  for (const part of header.split(",")) {
    const [rawName = "", ...parameters] = part.split(";");
    const name = normalCoding(rawName);
    if (!name) continue;
    let q = 1;
    for (const parameter of parameters) {
      const match = Q_VALUE.exec(parameter);
      if (match) q = Number(match[1]);
    }
    codings.set(name, Math.max(q, codings.get(name) ?? 0));
  }
  return codings;
}

/**
 * Whether the client takes this coding. A request without `Accept-Encoding` gets identity only: RFC 9110
 * allows any coding then, but curl without --compressed and many libraries could not read it.
 */
export function accepts(accepted: AcceptedCodings, coding: string): boolean {
  if (coding === "identity") {
    if (!accepted) return true;
    return (accepted.get("identity") ?? (accepted.get("*") === 0 ? 0 : 1)) > 0;
  }
  if (!accepted) return false;
  return (accepted.get(coding) ?? accepted.get("*") ?? 0) > 0;
}

/** The coding the gateway compresses with for this client: highest q, then br before gzip. */
export function preferredCoding(accepted: AcceptedCodings): GatewayCoding | undefined {
  let best: GatewayCoding | undefined;
  let bestQ = 0;
  for (const coding of GATEWAY_CODINGS) {
    const q = accepted ? (accepted.get(coding) ?? accepted.get("*") ?? 0) : 0;
    if (q > bestQ) [best, bestQ] = [coding, q];
  }
  return best;
}

/**
 * What the gateway asks an upstream for: the client's codings that the gateway can also decode (so it
 * can still decode when it must, e.g. to map the body), with their q; `identity` when none is left.
 * Example: `gzip, zstd, br;q=0.5` → `gzip, br;q=0.5`.
 */
export function upstreamAcceptEncoding(accepted: AcceptedCodings): string {
  const wanted = [...(accepted ?? [])].filter(([coding, q]) => q > 0 && coding in DECODERS);
  if (wanted.length === 0) return "identity";
  return wanted.map(([coding, q]) => (q < 1 ? `${coding};q=${q}` : coding)).join(", ");
}

/** The codings of a `Content-Encoding` value, in the order they were applied (identity left out). */
export function contentCodings(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(",")
    .map(normalCoding)
    .filter((coding) => coding !== "" && coding !== "identity");
}

/** Whether the gateway can undo every coding of the list. */
export function canDecode(codings: readonly string[]): boolean {
  return codings.every((coding) => coding in DECODERS);
}

/** The body's bytes past a failed or oversized decode. */
export class BodyDecodeError extends Error {
  constructor(
    message: string,
    readonly tooLarge: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Undoes `codings` (last applied first); the result may be at most `maxBytes` long. */
export function decodeBody(body: Buffer, codings: readonly string[], maxBytes: number): Buffer {
  let bytes = body;
  for (const coding of [...codings].reverse()) {
    const decoder = DECODERS[coding];
    if (!decoder) throw new BodyDecodeError(`no decoder for content-encoding ${coding}`, false);
    try {
      bytes = decoder(bytes, { maxOutputLength: maxBytes });
    } catch (error) {
      const tooLarge = (error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE";
      throw new BodyDecodeError(
        tooLarge
          ? `the ${coding} body decodes to more than ${maxBytes} bytes`
          : `the body is not valid ${coding}`,
        tooLarge,
        { cause: error },
      );
    }
  }
  return bytes;
}

/** How hard the gateway compresses: zlib's gzip level (1-9) and brotli's quality (0-11). */
export interface CompressionLevels {
  gzipLevel: number;
  brotliQuality: number;
}

/** Compresses a body for a client; brotli in text mode, told the input's size. */
export function compressBody(body: Buffer, coding: GatewayCoding, levels: CompressionLevels): Buffer {
  if (coding === "gzip") return gzipSync(body, { level: levels.gzipLevel });
  return brotliCompressSync(body, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: levels.brotliQuality,
      [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
      [constants.BROTLI_PARAM_SIZE_HINT]: body.byteLength,
    },
  });
}

/**
 * Headers of an answer whose content coding the gateway changed: the ETag is weakened (a strong one
 * names exact bytes, RFC 9110 §8.8.1) and digests of the old bytes are dropped.
 */
export function recodedHeaders(
  headers: Record<string, string | number | boolean>,
  coding: string | undefined,
): void {
  if (coding) headers["content-encoding"] = coding;
  else delete headers["content-encoding"];
  const etag = headers.etag;
  if (typeof etag === "string" && !etag.startsWith("W/")) headers.etag = `W/${etag}`;
  delete headers["content-md5"];
  delete headers["content-digest"];
  delete headers["repr-digest"];
}

/** Adds a request header's name to `Vary` unless it is there already (or `Vary: *`). */
export function addVary(headers: Record<string, string | number | boolean>, name: string): void {
  const key = Object.keys(headers).find((header) => header.toLowerCase() === "vary") ?? "vary";
  const current = String(headers[key] ?? "");
  const names = current
    .split(",")
    .map((token) => token.trim().toLowerCase())
    .filter(Boolean);
  if (names.includes("*") || names.includes(name.toLowerCase())) return;
  headers[key] = current.trim() ? `${current}, ${name}` : name;
}

function normalCoding(name: string): string {
  const coding = name.trim().toLowerCase();
  return coding === "x-gzip" ? "gzip" : coding;
}
