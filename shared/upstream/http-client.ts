import http, { type IncomingMessage, validateHeaderName, validateHeaderValue } from "node:http";
import https from "node:https";
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
} from "cockatiel";
import {
  BadGatewayError,
  BadRequestError,
  GatewayTimeoutError,
  HttpError,
  InternalServerError,
  MethodNotAllowedError,
  ServiceUnavailableError,
} from "../errors.ts";
import { logger } from "../observability/logger.ts";
import { countEvent } from "../observability/metrics.ts";
import { endSpan, inSpan, startSpan, type TraceParent, traceHeaders } from "../observability/tracer.ts";
import { RETRY_BACKOFF } from "./retry-backoff.ts";

/**
 * The HTTP client behind every proxied route: weighted targets with passive health (a target whose
 * circuit is open gets no traffic), a timeout per attempt, retries with backoff for idempotent methods
 * only, a circuit breaker per target (cockatiel), a cap on the response size, and no redirects unless
 * asked. Failures become the gateway's errors: unreachable or bad response 502, timeout 504, every
 * circuit open 503 with `Retry-After`.
 *
 * Only what a target does counts against its circuit: a refused or reset connection, a timeout, a
 * 502/503/504. A request is prepared (checked and converted) once, before any attempt, so what makes
 * it unsendable is known before a byte leaves: that is the caller's 4XX, never retried or counted.
 *
 * Traced (the request's `trace`), each attempt is a subsegment named by upstream and target, annotated
 * with the attempt number, the target's circuit state, the outcome and whether it is retried; its ids
 * go to the target as `X-Amzn-Trace-Id` and W3C `traceparent`.
 */

interface UpstreamTarget {
  /** Base URL: scheme, host, optional port and path prefix. Only the config sets it. */
  url: string;
  weight: number;
}

export interface UpstreamOptions {
  name: string;
  targets: readonly UpstreamTarget[];
  /** Per attempt. Keep attempts × timeout under API Gateway's 30 s. */
  timeoutMs: number;
  /** Extra attempts for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE). */
  retries: number;
  breaker: { consecutiveFailures: number; halfOpenAfterMs: number };
  maxResponseBytes: number;
  followRedirects?: boolean;
  /** Random in [0, 1); injectable for tests. */
  random?: () => number;
  /** How a request reaches a target; node:http(s) unless given (the Lambda kind brings its own). */
  transport?: Transport;
}

/**
 * How requests reach a target, in two steps. The transport prepares a request once, before any
 * attempt: what it throws (an `HttpError`, 4XX) is the caller's, since nothing was sent, so it is
 * never retried or counted against a target. It resolves with the attempt: one try against one
 * target, which must honour `signal` (the attempt's timeout, or the caller giving up).
 */
export type Transport = (request: UpstreamRequest) => Promise<Attempt>;
export type Attempt = (
  target: UpstreamTarget,
  signal: AbortSignal,
  /** The attempt's trace context (`x-amzn-trace-id`, `traceparent`), sent over any the request has. */
  trace?: Readonly<Record<string, string>>,
) => Promise<TransportAnswer>;

/** What one attempt brought back. */
export interface TransportAnswer {
  status: number;
  /** Lower-case names; never `set-cookie` (see `cookies`). */
  headers: Record<string, string>;
  /**
   * Each `Set-Cookie` of the answer, in order. They are kept apart because they cannot be folded into
   * one header (an `Expires` date holds a comma), and payload 2.0 returns them as the `cookies` array.
   */
  cookies: string[];
  body: Buffer;
}

export interface UpstreamRequest {
  method: string;
  /** Path after rewriting, starting with `/`; appended to the target's base URL. */
  path: string;
  /** Raw query string without `?`. */
  query?: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** The route's path parameters (the Lambda kind's JSON payload passes them on). */
  params?: Record<string, string>;
  /** The caller giving up (an aggregate call's own timeout): the attempt is cancelled, 504. */
  signal?: AbortSignal;
  /** The request's trace subsegment (`context.trace`): each attempt is a subsegment of it. */
  trace?: TraceParent | undefined;
}

export interface UpstreamResponse extends TransportAnswer {
  /** The target that answered. */
  target: string;
  attempts: number;
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);
/** Upstream answers that mean "this target is unwell": they count against its circuit and are retried. */
const UNHEALTHY_STATUS = new Set([502, 503, 504]);

/** The caller's signal fired: not the target's fault, so neither counted against it nor retried. */
class CallerCancelled extends Error {}

class UnhealthyResponse extends Error {
  constructor(readonly response: UpstreamResponse) {
    super(`upstream answered ${response.status}`);
  }
}

interface TargetState {
  target: UpstreamTarget;
  breaker: CircuitBreakerPolicy;
  /** When the circuit last opened (ms); it may take a half-open trial halfOpenAfterMs later. */
  openedAt: number;
}

export function createUpstreamClient(options: UpstreamOptions) {
  if (options.targets.length === 0) throw new Error(`upstream ${options.name} has no targets`);
  const random = options.random ?? Math.random;
  const targets: TargetState[] = options.targets.map((target) => {
    const state: TargetState = {
      target,
      breaker: circuitBreaker(handleWhen(countsAgainstTarget), {
        halfOpenAfter: options.breaker.halfOpenAfterMs,
        breaker: new ConsecutiveBreaker(options.breaker.consecutiveFailures),
      }),
      openedAt: 0,
    };
    state.breaker.onBreak(() => {
      state.openedAt = Date.now();
      // Per container: each container's breaker opens on its own. By upstream for the alarm, and
      // by upstream × target for the dashboard.
      logger.warn("circuit opened", { upstream: options.name, target: target.url });
      countEvent("CircuitOpened", { upstream: options.name }, { upstream: options.name, target: target.url });
    });
    return state;
  });
  // The body is read inside the attempt, so nothing is left to cancel once it returns: no abort then
  // (aborting a finished request costs an error object and the abort handling on every request).
  const attemptTimeout = timeout(options.timeoutMs, {
    strategy: TimeoutStrategy.Aggressive,
    abortOnReturn: false,
  });

  /**
   * Weighted choice among the targets that may take traffic: circuit closed or half-open, or open
   * long enough ago to take its half-open trial (cockatiel only moves it on the next call). Undefined
   * when none may.
   */
  function choose(): TargetState | undefined {
    const now = Date.now();
    const healthy = targets.filter(
      (state) =>
        state.breaker.state !== CircuitState.Open || now - state.openedAt >= options.breaker.halfOpenAfterMs,
    );
    const total = healthy.reduce((sum, state) => sum + state.target.weight, 0);
    let point = random() * total;
    for (const state of healthy) {
      point -= state.target.weight;
      if (point < 0) return state;
    }
    return healthy.at(-1);
  }

  const transport =
    options.transport ??
    httpTransport({ maxResponseBytes: options.maxResponseBytes, followRedirects: !!options.followRedirects });

  async function attempt(
    request: UpstreamRequest,
    send: Attempt,
    attempts: number,
  ): Promise<UpstreamResponse> {
    const state = choose();
    if (!state) {
      const error = new BrokenCircuitError();
      traceAttempt(request, undefined, attempts)?.(undefined, error);
      throw error;
    }
    const done = traceAttempt(request, state, attempts);
    try {
      // Inside the breaker, so an unhealthy answer counts against this target like a failure does.
      const response = await state.breaker.execute(async () => {
        try {
          const answer = await attemptTimeout.execute(
            ({ signal }) => inSpan(done?.span, () => send(state.target, signal, traceHeaders(done?.span))),
            request.signal,
          );
          const response = { ...answer, target: state.target.url, attempts };
          if (UNHEALTHY_STATUS.has(response.status)) throw new UnhealthyResponse(response);
          return response;
        } catch (error) {
          if (request.signal?.aborted) throw new CallerCancelled("the caller gave up", { cause: error });
          throw error;
        }
      });
      done?.(response);
      return response;
    } catch (error) {
      done?.(undefined, error);
      throw error;
    }
  }

  const idempotent = (request: UpstreamRequest) => IDEMPOTENT.has(request.method.toUpperCase());

  /**
   * Opens an attempt's subsegment (`<upstream> <target>`, or `<upstream>` when every circuit is open)
   * and returns what closes it with the outcome; undefined when untraced.
   */
  function traceAttempt(request: UpstreamRequest, state: TargetState | undefined, attempts: number) {
    const label = state ? targetLabel(state.target.url) : undefined;
    const span = startSpan(request.trace, label ? `${options.name} ${label}` : options.name);
    if (!span) return undefined;
    span.addAttribute("namespace", "remote");
    span.addAnnotation("upstream", options.name);
    span.addAnnotation("attempt", attempts);
    if (label) span.addAnnotation("target", label);
    span.addAnnotation("circuit", state ? CIRCUIT_STATES[state.breaker.state] : "open");
    const url = state ? spanUrl(state.target.url, request.path) : undefined;
    const close = (response: UpstreamResponse | undefined, error?: unknown) => {
      const answered = response ?? (error instanceof UnhealthyResponse ? error.response : undefined);
      const outcome = attemptOutcome(answered, error);
      span.addAnnotation("outcome", outcome);
      const retried =
        error !== undefined &&
        idempotent(request) &&
        attempts <= options.retries &&
        retryable(error) &&
        !request.signal?.aborted;
      span.addAnnotation("retried", retried);
      span.addAttribute("http", {
        request: {
          method: request.method.toUpperCase(),
          ...(url ? { url } : {}),
        },
        ...(answered
          ? { response: { status: answered.status, content_length: answered.body.byteLength } }
          : {}),
      });
      const status = answered?.status ?? FAILED_STATUS[outcome];
      endSpan(span, status, answered ? undefined : error);
    };
    return Object.assign(close, { span });
  }

  const breakerSeconds = Math.max(1, Math.ceil(options.breaker.halfOpenAfterMs / 1000));

  const retries = retry(handleWhen(retryable), {
    maxAttempts: options.retries,
    backoff: new ExponentialBackoff({
      initialDelay: RETRY_BACKOFF.initialDelayMs,
      maxDelay: RETRY_BACKOFF.maxDelayMs,
    }),
  });

  /**
   * Sends the request and resolves with the upstream's answer: a 502/503/504 from the upstream itself
   * is returned as it came after the last attempt. Throws the gateway's error when there is no answer.
   */
  return async function requestUpstream(request: UpstreamRequest): Promise<UpstreamResponse> {
    // Outside the retries and the breakers: what it refuses was never sent.
    const send = await transport(request);
    let attempts = 0;
    try {
      return idempotent(request)
        ? await retries.execute(() => attempt(request, send, ++attempts), request.signal)
        : await attempt(request, send, ++attempts);
    } catch (error) {
      if (error instanceof UnhealthyResponse) return error.response;
      throw toGatewayError(error, options.name, breakerSeconds);
    }
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;

/** Whether the client refused a call because every target's circuit was open (its 503). */
export function refusedByOpenCircuit(error: unknown): boolean {
  return error instanceof HttpError && error.cause instanceof BrokenCircuitError;
}

/**
 * An upstream answer over `maxResponseBytes`: 502, not retried, not the target's health (the size of
 * an answer often follows from what the caller asked for).
 */
export class ResponseTooLargeError extends Error {}

/**
 * The transport refused to send a request its preparation let through: nothing reached the target, so
 * it is not the target's health and retrying cannot help. A 500 (the gateway's gap), logged with the cause.
 */
class RequestNotSentError extends Error {}

/** Whether an idempotent request is tried again after this failure (retries left permitting). */
function retryable(error: unknown): boolean {
  return (
    !(error instanceof ResponseTooLargeError) &&
    !(error instanceof CallerCancelled) &&
    !(error instanceof RequestNotSentError)
  );
}

const CIRCUIT_STATES: Record<CircuitState, string> = {
  [CircuitState.Closed]: "closed",
  [CircuitState.Open]: "open",
  [CircuitState.HalfOpen]: "half-open",
  [CircuitState.Isolated]: "isolated",
};

/** What became of an attempt, as its span says: `answered`, or why not. */
function attemptOutcome(answered: UpstreamResponse | undefined, error: unknown): string {
  if (error instanceof UnhealthyResponse) return "unhealthy";
  if (answered) return "answered";
  if (error instanceof BrokenCircuitError) return "circuit-open";
  if (error instanceof TaskCancelledError) return "timeout";
  if (error instanceof CallerCancelled) return "cancelled";
  if (error instanceof ResponseTooLargeError) return "too-large";
  if (error instanceof RequestNotSentError) return "not-sent";
  return "failed";
}

/** The status the gateway answers for an attempt that got none (as `toGatewayError` maps it). */
const FAILED_STATUS: Record<string, number> = {
  "circuit-open": 503,
  timeout: 504,
  cancelled: 504,
  "too-large": 502,
  "not-sent": 500,
  failed: 502,
};

/** A target as a span names it: `host[:port]` of a URL (never its credentials), `lambda:<name>` as it is. */
function targetLabel(url: string): string {
  if (url.startsWith("lambda:")) return url;
  try {
    return new URL(url).host;
  } catch {
    return "invalid-url";
  }
}

/**
 * The URL an attempt's span shows: the target's, without any credentials in it, and the path; never
 * the query (it may carry a token). Undefined for a Lambda target.
 */
function spanUrl(targetUrl: string, path: string): string | undefined {
  if (targetUrl.startsWith("lambda:")) return undefined;
  try {
    const url = new URL(`${targetUrl.replace(/\/$/, "")}${path}`);
    url.username = "";
    url.password = "";
    url.search = "";
    url.hash = "";
    return url.toString();
  } catch {
    return undefined;
  }
}

/** Whether a failure is the target's fault (and so counts against its circuit). */
function countsAgainstTarget(error: unknown): boolean {
  return (
    !(error instanceof ResponseTooLargeError) &&
    !(error instanceof BrokenCircuitError) &&
    !(error instanceof CallerCancelled) &&
    !(error instanceof RequestNotSentError)
  );
}

/**
 * Methods never proxied: `CONNECT` asks for a tunnel (node:http hands over a socket, not an answer),
 * and `TRACE` and `TRACK` echo the request back, the gateway's identity headers included.
 */
const UNSENDABLE_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
const PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
/** RFC 9110 token: a method. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * Headers that describe the client's hop, which node:http would act on rather than pass on: `Host`
 * would pick the upstream's virtual host, `Content-Length` and `Transfer-Encoding` would frame the
 * body, `Connection`, `Keep-Alive` and `Upgrade` would change the connection, and `Expect` asks for a
 * `100 Continue` nobody waits for (API Gateway has already taken the whole body). node:http sets its
 * own `Host` and framing; the rest are dropped.
 */
const DROPPED_HEADERS = new Set([
  "expect",
  "connection",
  "keep-alive",
  "upgrade",
  "transfer-encoding",
  "host",
  "content-length",
]);
/** A UTF-16 code unit above U+00FF (surrogates included), which node:http cannot send as one byte. */
const ABOVE_LATIN1 = /[\u0100-\uffff]/;

/**
 * The headers as node:http can send them: hop headers dropped; a value above U+00FF sent as its UTF-8
 * bytes (node:http writes each character as one byte, 0x00–0xFF, and refuses anything above). What
 * node:http would still refuse (a name that is not a token, a value with a control character) is
 * checked here with its own validators, so it cannot be sent at all: 400, naming the header.
 */
function sendableHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    try {
      validateHeaderName(name);
    } catch {
      throw new BadRequestError(`The header name ${JSON.stringify(name)} is not a valid HTTP field name`);
    }
    const lower = name.toLowerCase();
    if (DROPPED_HEADERS.has(lower)) continue;
    const sendable = ABOVE_LATIN1.test(value) ? Buffer.from(value, "utf8").toString("latin1") : value;
    try {
      validateHeaderValue(lower, sendable);
    } catch {
      throw new BadRequestError(
        `The ${JSON.stringify(name)} header holds a control character and cannot be forwarded`,
      );
    }
    out[lower] = sendable;
  }
  return out;
}

/**
 * Keep-alive connections per container, reused across invocations (one agent per scheme). An idle
 * connection is closed after 4 s, under the 5 s most servers keep one (Node's default), so the gateway
 * seldom reuses one the upstream is closing; a shorter `Keep-Alive: timeout` from the upstream wins.
 */
const KEEP_ALIVE = { keepAlive: true, timeout: 4_000 };
const agents = { "http:": new http.Agent(KEEP_ALIVE), "https:": new https.Agent(KEEP_ALIVE) };
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

/**
 * The HTTP transport: node:http(s) to the target's base URL plus the rewritten path, size-capped. Not
 * `fetch`: it decodes compressed answers and cannot be told not to, so the bytes a `content-encoding`
 * describes would be lost; here the body comes back exactly as the upstream sent it. The method and
 * headers are checked and converted once, before any attempt. Exported for the bench's baselines,
 * which make the chain's upstream call without its retries and breakers.
 */
export function httpTransport(options: { maxResponseBytes: number; followRedirects: boolean }): Transport {
  return async (request) => {
    const method = request.method.toUpperCase();
    if (!TOKEN.test(method) || UNSENDABLE_METHODS.has(method)) {
      throw new MethodNotAllowedError(
        `${JSON.stringify(request.method)} requests cannot be proxied`,
        PROXIED_METHODS,
      );
    }
    const prepared = sendableHeaders(request.headers);
    const preparedBody = request.body && method !== "GET" && method !== "HEAD" ? request.body : undefined;
    const pathAndQuery = `${request.path}${request.query ? `?${request.query}` : ""}`;
    return async (target, signal, trace) => {
      let url: URL;
      try {
        url = new URL(`${target.url.replace(/\/$/, "")}${pathAndQuery}`);
      } catch (error) {
        throw new RequestNotSentError("the request's URL does not parse", { cause: error });
      }
      // The attempt's own trace context, over whatever the request carried (never a client's).
      let headers = trace && Object.keys(trace).length > 0 ? { ...prepared, ...trace } : prepared;
      let body = preparedBody;
      let current = method;
      for (let redirects = 0; ; redirects++) {
        const response = await exchange(url, current, headers, body, options.maxResponseBytes, signal);
        const location = response.headers.location;
        if (!options.followRedirects || !REDIRECTS.has(response.status) || !location) return response;
        if (redirects === MAX_REDIRECTS) throw new Error(`more than ${MAX_REDIRECTS} redirects`);
        // As fetch does: 303 (and 301/302 after a POST) become a GET without a body; credentials stay
        // with the origin they were meant for.
        const next = new URL(location, url);
        if (next.protocol !== "http:" && next.protocol !== "https:") return response;
        if (response.status === 303 ? current !== "HEAD" : response.status <= 302 && current === "POST") {
          current = "GET";
          body = undefined;
          headers = Object.fromEntries(
            Object.entries(headers).filter(
              ([name]) => !/^content-(type|encoding|language|location)$/.test(name),
            ),
          );
        }
        if (next.origin !== url.origin) {
          headers = Object.fromEntries(
            Object.entries(headers).filter(
              ([name]) => !/^(authorization|cookie|proxy-authorization)$/.test(name),
            ),
          );
        }
        url = next;
      }
    };
  };
}

/**
 * One request and its whole answer, read up to `maxBytes` (the bytes as sent: nothing is decoded).
 * What node:http throws while building the request (a value or name it refuses) is thrown before it
 * opens or writes to a connection: RequestNotSentError, not the target's failure.
 */
async function exchange(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  maxBytes: number,
  signal: AbortSignal,
): Promise<TransportAnswer> {
  for (let attempt = 0; ; attempt++) {
    let reused = false;
    try {
      return await new Promise((resolve, reject) => {
        let outgoing: http.ClientRequest;
        try {
          outgoing = (url.protocol === "https:" ? https : http).request(url, {
            method,
            // node:http frames a body itself only for methods it expects one with: a DELETE's (or a
            // GET's) would go out unframed, and its bytes would be read as the start of the next
            // request on the kept-alive connection. Every body says its length.
            headers: body === undefined ? headers : { ...headers, "content-length": String(body.byteLength) },
            agent: agents[url.protocol as "http:" | "https:"],
            signal,
          });
        } catch (error) {
          reject(new RequestNotSentError("node:http refused the request", { cause: error }));
          return;
        }
        outgoing.once("socket", () => {
          reused = outgoing.reusedSocket;
        });
        outgoing.once("error", reject);
        outgoing.once("response", (incoming) => {
          reused = false; // an answer came: whatever fails now is the upstream's
          readCapped(incoming, method, maxBytes).then((bytes) => resolve(answerOf(incoming, bytes)), reject);
        });
        outgoing.end(body);
      });
    } catch (error) {
      // A kept-alive connection the upstream closed while idle, before any answer: sent once more on a
      // new connection (Node's documented use of `reusedSocket`), for idempotent methods only, since
      // nothing proves the upstream never acted on it (RFC 9112 §9.3.1).
      if (attempt === 0 && reused && isReset(error) && IDEMPOTENT.has(method)) continue;
      throw error;
    }
  }
}

/**
 * The answer's status, headers and cookies. node:http gives every `Set-Cookie` in an array of its own
 * (never folded: an `Expires` date holds a comma); any other repeated header arrives joined with ", ".
 */
function answerOf(incoming: IncomingMessage, body: Buffer): TransportAnswer {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(incoming.headers)) {
    if (name === "set-cookie" || value === undefined) continue;
    headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return {
    status: incoming.statusCode ?? 502,
    headers,
    cookies: incoming.headers["set-cookie"] ?? [],
    body,
  };
}

function isReset(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === "ECONNRESET" || code === "EPIPE";
}

async function readCapped(incoming: IncomingMessage, method: string, maxBytes: number): Promise<Buffer> {
  const declared = Number(incoming.headers["content-length"] ?? Number.NaN);
  if (method !== "HEAD" && declared > maxBytes) {
    incoming.destroy();
    throw new ResponseTooLargeError(
      `upstream response of ${declared} bytes is over the ${maxBytes}-byte cap`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      incoming.destroy();
      throw new ResponseTooLargeError(`upstream response is over the ${maxBytes}-byte cap`);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
}

function toGatewayError(error: unknown, upstream: string, retryAfterSeconds: number): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof BrokenCircuitError) {
    return new ServiceUnavailableError(`The ${upstream} service is unavailable; try again shortly`, {
      headers: { "retry-after": String(retryAfterSeconds) },
      cause: error,
    });
  }
  if (error instanceof TaskCancelledError || error instanceof CallerCancelled) {
    return new GatewayTimeoutError(`The ${upstream} service did not answer in time`, { cause: error });
  }
  if (error instanceof ResponseTooLargeError) {
    return new BadGatewayError(`The ${upstream} service sent a response that is too large`, { cause: error });
  }
  if (error instanceof RequestNotSentError) {
    return new InternalServerError(`The request to the ${upstream} service could not be sent`, {
      cause: error,
    });
  }
  return new BadGatewayError(`The ${upstream} service could not be reached`, { cause: error });
}
