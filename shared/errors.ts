/**
 * One error taxonomy for the whole gateway. Each class carries its HTTP status; handlers and
 * middleware throw, and one mapper (`shared/middleware/error-mapper.ts`) turns them into
 * `application/problem+json` (RFC 9457). 4XX messages are shown to the client; 5XX messages
 * never are (the detail goes to the log).
 */

export interface ProblemOptions {
  /** Extra members for the problem document, e.g. `{ errors: [...] }` for validation. */
  extensions?: Record<string, unknown>;
  /** Extra response headers, e.g. `Allow` on a 405. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export abstract class HttpError extends Error {
  abstract readonly statusCode: number;
  /** Stable problem slug; the problem `type` is `urn:gatehouse:problem:<slug>`. */
  abstract readonly slug: string;
  /** Short human summary of the problem type (RFC 9457 `title`). */
  abstract readonly title: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(message: string, options: ProblemOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.extensions = options.extensions ?? {};
    this.headers = options.headers ?? {};
  }

  /** Whether `message` may be shown to the client: only for 4XX. */
  get expose(): boolean {
    return this.statusCode < 500;
  }
}

export class BadRequestError extends HttpError {
  readonly statusCode = 400;
  readonly slug = "bad-request";
  readonly title = "Bad Request";
}
export class UnauthorizedError extends HttpError {
  readonly statusCode = 401;
  readonly slug = "unauthorized";
  readonly title = "Unauthorized";
}
export class ForbiddenError extends HttpError {
  readonly statusCode = 403;
  readonly slug: string = "forbidden";
  readonly title: string = "Forbidden";
}
export class NotFoundError extends HttpError {
  readonly statusCode = 404;
  readonly slug = "not-found";
  readonly title = "Not Found";
}
export class MethodNotAllowedError extends HttpError {
  readonly statusCode = 405;
  readonly slug = "method-not-allowed";
  readonly title = "Method Not Allowed";
  constructor(message: string, allowed: readonly string[], options: ProblemOptions = {}) {
    super(message, { ...options, headers: { ...options.headers, allow: allowed.join(", ") } });
  }
}
export class ConflictError extends HttpError {
  readonly statusCode = 409;
  readonly slug: string = "conflict";
  readonly title: string = "Conflict";
}

/** The thing addressed existed and is gone for good (a closed WebSocket connection). */
export class GoneError extends HttpError {
  readonly statusCode = 410;
  readonly slug: string = "gone";
  readonly title: string = "Gone";
}

export class PayloadTooLargeError extends HttpError {
  readonly statusCode = 413;
  readonly slug = "payload-too-large";
  readonly title = "Payload Too Large";
}
export class UnsupportedMediaTypeError extends HttpError {
  readonly statusCode = 415;
  readonly slug = "unsupported-media-type";
  readonly title = "Unsupported Media Type";
}
export class UnprocessableContentError extends HttpError {
  readonly statusCode = 422;
  readonly slug = "unprocessable-content";
  readonly title = "Unprocessable Content";
}
export class TooManyRequestsError extends HttpError {
  readonly statusCode = 429;
  readonly slug: string = "too-many-requests";
  readonly title: string = "Too Many Requests";
  constructor(message: string, retryAfterSeconds: number, options: ProblemOptions = {}) {
    const retryAfter = String(Math.max(1, Math.ceil(retryAfterSeconds)));
    super(message, { ...options, headers: { ...options.headers, "retry-after": retryAfter } });
  }
}
/** 429 from a plan's rate: `RateLimit-*` and `Retry-After` say when the next window opens. */
export class RateLimitedError extends TooManyRequestsError {
  override readonly slug = "rate-limited";
  override readonly title = "Rate Limit Exceeded";
}
/** 429 from a plan's quota: nothing more until the quota window resets. */
export class QuotaExceededError extends TooManyRequestsError {
  override readonly slug = "quota-exceeded";
  override readonly title = "Quota Exceeded";
}
export class InternalServerError extends HttpError {
  readonly statusCode = 500;
  readonly slug = "internal";
  readonly title = "Internal Server Error";
}
export class BadGatewayError extends HttpError {
  readonly statusCode = 502;
  readonly slug = "bad-gateway";
  readonly title = "Bad Gateway";
}
export class ServiceUnavailableError extends HttpError {
  readonly statusCode = 503;
  readonly slug = "service-unavailable";
  readonly title = "Service Unavailable";
}
export class GatewayTimeoutError extends HttpError {
  readonly statusCode = 504;
  readonly slug = "gateway-timeout";
  readonly title = "Gateway Timeout";
}

/**
 * Any thrown value as an `HttpError`: our own pass through, Middy's early-timeout becomes a 504,
 * everything else a generic 500 that keeps the original as `cause` for the log.
 */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof Error && error.name === "TimeoutError") {
    return new GatewayTimeoutError("The gateway did not finish the request in time", { cause: error });
  }
  return new InternalServerError("Unhandled error", { cause: error });
}
