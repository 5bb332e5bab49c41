import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";
import type { CacheLookup } from "./gateway/proxy-call.ts";
import type { ParsedBody } from "./middleware/request-body.ts";
import type { RequestCount, UpstreamSample } from "./middleware/request-metrics.ts";
import type { ResponseMap } from "./middleware/response-transform.ts";
import type { TraceSpan } from "./observability/tracer.ts";

/**
 * The Lambda context as Gatehouse's chains leave it: the request id is always set. Lambda hands a
 * new context to every invocation, so what one step of the chain gives the handler (or the handler
 * a later step) travels here, in plain sight, as Middy's own middlewares do (`setToContext`); what
 * only middlewares share goes on `request.internal`.
 */
export interface GatehouseContext extends Context {
  /** The id of this request: the caller's valid `x-request-id`, else API Gateway's request id. */
  requestId: string;
  /** The body the body step checked (raw bytes, and the JSON when it is JSON), for the handler. */
  requestBody?: ParsedBody | undefined;
  /** The answering target's response mapping, set by the proxy call for the response transform. */
  responseMap?: ResponseMap | undefined;
  /** On a cached route: the cache step's target, key and decision, for the handler (shared/gateway/cache-step.ts). */
  cacheLookup?: CacheLookup | undefined;
  /** Counts of this request noted by steps and the handler, for the metrics step to publish. */
  requestCounts?: Partial<Record<RequestCount, number>> | undefined;
  /** This request's X-Ray subsegment (the `tracing()` step's), parent of its calls; none when untraced. */
  trace?: TraceSpan | undefined;
  /** This request's upstream calls, noted by the handler for the metrics step to publish. */
  upstreamCalls?: UpstreamSample[] | undefined;
}

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2 & {
  headers: Record<string, string | number | boolean>;
};
export type HttpHandler = (event: HttpEvent, context: GatehouseContext) => Promise<HttpResult>;

/** A JSON response. Example: `return json(200, { status: "ok" })`. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
    body: JSON.stringify(body),
  };
}

/**
 * Lambda's limit on a synchronous invocation's payload, the event and the result alike: 6 MB, where
 * Lambda's MB is 1,048,576 bytes (AWS Lambda quotas). Both travel as JSON, so a binary body counts in
 * base64 and a text body with its JSON escapes.
 */
export const LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1_048_576;

/**
 * Room kept for what surrounds a body: request line and headers (API Gateway takes at most 10 KB of
 * them), the request context, an upstream's response headers (Node reads at most 16 KB) and the JSON.
 */
const ENVELOPE_ALLOWANCE_BYTES = 32 * 1_024;

/** The largest body that always fits an event or a result beside the allowance: 4 bytes per 3 in base64. */
export function largestBody(base64: boolean): number {
  const room = LAMBDA_PAYLOAD_LIMIT_BYTES - ENVELOPE_ALLOWANCE_BYTES;
  return base64 ? Math.floor(room / 4) * 3 : room;
}
