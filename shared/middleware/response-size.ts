import type middy from "@middy/core";
import { BadGatewayError } from "../errors.ts";
import {
  type GatehouseContext,
  type HttpEvent,
  type HttpResult,
  LAMBDA_PAYLOAD_LIMIT_BYTES,
} from "../http.ts";

/** A JSON escape is at most 6 bytes (`\u0000`) per UTF-16 unit, and no unit is more than 3 UTF-8 bytes. */
const WORST_ESCAPE = 6;

/**
 * Checks the answer as Lambda will carry it: the result serialised as JSON (base64 and escapes
 * included, with the `x-request-id` the chain adds last) must fit Lambda's 6 MB, or API Gateway would
 * answer a bare 500 of its own. Past it, the client gets a 502 problem+json from the gateway instead.
 * Place it after every step that changes the body or adds headers (compression, CORS, deprecation) and
 * before metrics and metering, so the 502 is what they record. Only an answer that could be near the
 * limit is serialised to be measured.
 */
export function responseSize(): middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext> {
  const responseSizeAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (request) => {
    const response = request.response;
    if (!response) return;
    const body = typeof response.body === "string" ? response.body : "";
    const bodyBound = response.isBase64Encoded ? body.length : body.length * WORST_ESCAPE;
    const rest = JSON.stringify({ ...response, body: "", "x-request-id": request.context.requestId });
    if (bodyBound + Buffer.byteLength(rest) < LAMBDA_PAYLOAD_LIMIT_BYTES) return;
    const bytes = Buffer.byteLength(
      JSON.stringify({
        ...response,
        headers: { ...response.headers, "x-request-id": request.context.requestId },
      }),
    );
    if (bytes <= LAMBDA_PAYLOAD_LIMIT_BYTES) return;
    throw new BadGatewayError("The answer is too large for the gateway to return", {
      cause: new Error(
        `the Lambda result would be ${bytes} bytes, over the ${LAMBDA_PAYLOAD_LIMIT_BYTES}-byte limit`,
      ),
    });
  };
  return { after: responseSizeAfter };
}
