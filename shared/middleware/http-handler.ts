import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import middy from "@middy/core";
import type { GatehouseContext, HttpEvent, HttpHandler, HttpResult } from "../http.ts";
import { logger } from "../observability/logger.ts";
import { errorMapper } from "./error-mapper.ts";
import { normaliseHeaders } from "./normalise-headers.ts";
import { requestContext } from "./request-context.ts";
import { securityHeaders } from "./security-headers.ts";
import { tracing } from "./tracing.ts";

/**
 * The Middy chain every HTTP handler runs in, in one fixed order: Lambda context on the logger →
 * correlation id → trace subsegment → header normalisation → route request steps → (handler) → route response steps
 * (CORS) → security headers → error mapping.
 *
 * Middy runs `before` in registration order and `after`/`onError` in reverse, so the error mapper is
 * registered last: it is the first to see any failure and turns it into a response that the other
 * middlewares then decorate (request id, security headers).
 *
 * Example: `export const handler = httpHandler(async () => json(200, { ok: true }))`.
 */
type Step = middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;

export function httpHandler(
  handler: HttpHandler,
  { request = [], response = [] }: { request?: Step[]; response?: Step[] } = {},
) {
  const chain = middy<HttpEvent, HttpResult, Error, GatehouseContext>(handler)
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(requestContext<HttpResult>())
    .use(tracing<HttpEvent, HttpResult>())
    .use(normaliseHeaders<HttpResult>());
  // Route-specific request steps (body size, media type, JSON, validation) come after the headers
  // are normalised and before the handler; the response side and the error mapper stay last.
  for (const step of request) chain.use(step);
  // Response steps (CORS) see every response, errors included: the error mapper, registered last,
  // runs first in onError and hands them a problem+json to decorate.
  for (const step of response) chain.use(step);
  return chain.use(securityHeaders<HttpEvent, HttpResult>()).use(errorMapper());
}
