/**
 * The in-process half of the gateway-chain bench (bench/cases/gateway-chain.ts), in a Node process of
 * its own: `node --import tsx --expose-gc bench/support/gateway-chain-worker.ts '<WorkerOptions JSON>'`,
 * forked with an IPC channel, which carries the result back. Its stdout is discarded: the chain writes
 * its EMF record there per request, as it does in Lambda, and writing them is part of its cost. The
 * other variants write nothing, so the discarding is the same for all.
 *
 * Three handlers take the same `POST /v1/orders` event (API Gateway payload 2.0) and make the same
 * call to the loopback upstream, which runs in another process:
 * - `chain`: the real gateway handler, `createGatewayHandler(loadGateway(definition, "bench"))`:
 *   route, body checks and JSON Schema, proxy through the upstream client, map; the whole Middy chain
 *   with Powertools logger context and metrics flushed per invocation.
 * - `bare`: a function that makes the same upstream call with the gateway's own HTTP transport
 *   (node:http, `httpTransport`), without retries or breakers, and returns its answer.
 * - `noMiddy`: the chain's work written by hand, without Middy and without Gatehouse's middleware
 *   (the upstream call through the same transport).
 *
 * Every request's status is checked; a measurement with any failure fails the run.
 */
import { Ajv } from "ajv";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "#shared/http.ts";
import { metrics } from "#shared/observability/metrics.ts";
import { httpTransport, type Transport } from "#shared/upstream/http-client.ts";
import { compileJmespath } from "#shared/upstream/transform.ts";
import { lambdaContext } from "../../tests/support/lambda-context.ts";
import { runForkedWorker } from "./forked-worker.ts";

export interface WorkerOptions {
  /** The loopback upstream's base URL, `http://127.0.0.1:<port>`. */
  upstreamUrl: string;
  /** Requests per measurement. */
  requests: number;
  /** Untimed requests per variant and concurrency, before the first round. */
  warmup: number;
  /** Measurements per variant and concurrency; each round takes every variant once, in rotated order. */
  rounds: number;
  /** Requests in flight at once (1 is how a Lambda container serves). */
  concurrencies: number[];
}

export type VariantKey = "chain" | "bare" | "noMiddy";

/** One timed run of `requests` requests. */
export interface Measurement {
  variant: VariantKey;
  concurrency: number;
  round: number;
  /** Process CPU time (user + system, all threads: GC included) per request, µs. */
  cpuUs: number;
  /** Wall-clock time per request, µs. */
  wallUs: number;
}

/** What the bench sends: the order the upstream echoes. */
const ORDER_BODY = JSON.stringify({ productId: "p-1", quantity: 2 });
const EXPECTED_STATUS = 201;

const ORDER_SCHEMA = {
  type: "object",
  required: ["productId", "quantity"],
  properties: {
    productId: { type: "string", pattern: "^p-[0-9]+$" },
    quantity: { type: "integer", minimum: 1, maximum: 100 },
    note: { type: "string", maxLength: 200 },
  },
  additionalProperties: false,
};

/** The answer's mapping (JMESPath), the same in the chain and in the hand-written handler. */
const ORDER_MAPPING = "{ orderId: id, item: { product: productId, quantity: quantity }, status: 'accepted' }";

/** The bench's gateway: public routes (no issuers), one upstream, a router with a few routes. */
const benchGateway = (upstreamUrl: string) =>
  defineGateway(() => ({
    auth: { issuers: [] },
    upstreams: {
      orders: { targets: [{ url: upstreamUrl }], timeoutMs: 2_000, retries: 0 },
      users: { targets: [{ url: upstreamUrl }], timeoutMs: 2_000, retries: 0 },
    },
    routes: {
      "GET /health": { auth: "public", handler: "health" },
      "GET /v1/users": { auth: "public", proxy: { upstream: "users", path: "/users" } },
      "GET /v1/users/{id}": { auth: "public", proxy: { upstream: "users", path: "/users/{id}" } },
      "GET /v1/orders": { auth: "public", proxy: { upstream: "orders", path: "/orders" } },
      "POST /v1/orders": {
        auth: "public",
        proxy: { upstream: "orders", path: "/orders", response: { body: ORDER_MAPPING } },
        body: { maxBytes: 16_384, schema: ORDER_SCHEMA },
      },
      "GET /v1/orders/{id}": { auth: "public", proxy: { upstream: "orders", path: "/orders/{id}" } },
    },
  }));

/** The event API Gateway (HTTP API, payload 2.0) hands the function for `POST /v1/orders`. */
function orderEvent(requestId: string): HttpEvent {
  return {
    version: "2.0",
    routeKey: "POST /v1/orders",
    rawPath: "/v1/orders",
    rawQueryString: "",
    headers: {
      accept: "application/json",
      "content-length": String(Buffer.byteLength(ORDER_BODY)),
      "content-type": "application/json",
      host: "x8k2m4p1qz.execute-api.us-east-1.amazonaws.com",
      "user-agent": "gatehouse-bench",
      "x-amzn-trace-id": "Root=1-6920f0d0-3a5b1c2d4e5f60718293a4b5",
      "x-forwarded-for": "203.0.113.10",
      "x-forwarded-port": "443",
      "x-forwarded-proto": "https",
    },
    requestContext: {
      accountId: "123456789012",
      apiId: "x8k2m4p1qz",
      domainName: "x8k2m4p1qz.execute-api.us-east-1.amazonaws.com",
      domainPrefix: "x8k2m4p1qz",
      http: {
        method: "POST",
        path: "/v1/orders",
        protocol: "HTTP/1.1",
        sourceIp: "203.0.113.10",
        userAgent: "gatehouse-bench",
      },
      requestId,
      routeKey: "POST /v1/orders",
      stage: "$default",
      time: "21/Nov/2026:05:00:00 +0000",
      timeEpoch: 1795237200000,
    },
    body: ORDER_BODY,
    isBase64Encoded: false,
  };
}

type Handler = (event: HttpEvent, context: GatehouseContext) => Promise<HttpResult>;

/** Lambda's longest function timeout (15 minutes). */
const LAMBDA_MAX_TIMEOUT_MS = 900_000;

function bareHandler(upstreamUrl: string, transport: Transport): Handler {
  const target = { url: upstreamUrl, weight: 1 };
  const never = new AbortController().signal;
  return async (event) => {
    const send = await transport({
      method: "POST",
      path: "/orders",
      headers: { "content-type": "application/json" },
      body: Buffer.from(event.body ?? ""),
    });
    const response = await send(target, never);
    return {
      statusCode: response.status,
      headers: { "content-type": response.headers["content-type"] ?? "application/octet-stream" },
      body: response.body.toString("utf8"),
    };
  };
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "strict-transport-security": "max-age=63072000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};
/** Not passed on in either direction: hop-by-hop headers, ones node:http sets itself, the gateway's credentials. */
const NOT_FORWARDED = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
  "host",
  "content-length",
  "authorization",
  "x-api-key",
]);

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

class Problem extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The chain's work by hand: route by key, body size and media type, JSON, JSON Schema (ajv, compiled
 * once), the upstream call with forwarded headers and a timeout, the answer mapped (the same JMESPath), security headers
 * and the request id added; any failure a problem+json.
 */
function noMiddyHandler(upstreamUrl: string, transport: Transport): Handler {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const mapOrder = compileJmespath(ORDER_MAPPING);
  const route = (path: string, body?: { maxBytes: number; schema: Record<string, unknown> }) => ({
    url: upstreamUrl,
    weight: 1,
    path,
    maxBytes: body?.maxBytes ?? 1_048_576,
    validate: body ? ajv.compile(body.schema) : undefined,
    map: body ? mapOrder : undefined,
  });
  const routes = new Map([
    ["GET /v1/users", route("/users")],
    ["GET /v1/orders", route("/orders")],
    ["POST /v1/orders", route("/orders", { maxBytes: 16_384, schema: ORDER_SCHEMA })],
  ]);
  return async (event) => {
    const supplied = event.headers["x-request-id"];
    const requestId = supplied && SAFE_REQUEST_ID.test(supplied) ? supplied : event.requestContext.requestId;
    try {
      const target = routes.get(event.routeKey);
      if (!target) throw new Problem(404, `No route for ${event.rawPath}`);
      const body = event.body ?? "";
      if (Buffer.byteLength(body) > target.maxBytes) throw new Problem(413, "The body is too large");
      const mediaType = (event.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
      if (mediaType !== "application/json") throw new Problem(415, "Send application/json");
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        throw new Problem(400, "The body is not valid JSON");
      }
      if (target.validate && !target.validate(json)) {
        throw new Problem(400, `The body is invalid: ${ajv.errorsText(target.validate.errors)}`);
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(event.headers)) {
        if (value !== undefined && !NOT_FORWARDED.has(name) && !name.startsWith("x-forwarded-"))
          headers[name] = value;
      }
      headers["x-forwarded-for"] = event.headers["x-forwarded-for"] ?? event.requestContext.http.sourceIp;
      headers["x-forwarded-proto"] = event.headers["x-forwarded-proto"] ?? "https";
      headers["x-request-id"] = requestId;
      const send = await transport({
        method: event.requestContext.http.method,
        path: target.path,
        headers,
        body: Buffer.from(body),
      });
      const response = await send(target, AbortSignal.timeout(2_000));
      const text = response.body.toString("utf8");
      const answer: Record<string, string> = { ...SECURITY_HEADERS };
      for (const [name, value] of Object.entries(response.headers)) {
        if (!NOT_FORWARDED.has(name)) answer[name] = value;
      }
      answer["x-request-id"] = requestId;
      const ok = response.status >= 200 && response.status < 300;
      const mapped =
        target.map && ok && /json/.test(answer["content-type"] ?? "")
          ? JSON.stringify(target.map(JSON.parse(text)))
          : text;
      return { statusCode: response.status, headers: answer, body: mapped };
    } catch (error) {
      const status = error instanceof Problem ? error.status : 502;
      return {
        statusCode: status,
        headers: {
          ...SECURITY_HEADERS,
          "content-type": "application/problem+json",
          "x-request-id": requestId,
        },
        body: JSON.stringify({
          type: `urn:gatehouse:problem:${status}`,
          status,
          detail: error instanceof Problem ? error.message : "The gateway could not complete the request.",
          instance: event.rawPath,
          requestId,
        }),
      };
    }
  };
}

/** One call, checked in full (status, echoed body, the chain's headers), before anything is timed. */
async function checkOnce(key: VariantKey, handler: Handler): Promise<void> {
  const result = await handler(orderEvent("bench-check"), lambdaContext("gatehouse-bench"));
  const body = JSON.parse(String(result.body)) as Record<string, unknown>;
  // The bare handler passes the upstream's answer as it came; the other two map it.
  const expected =
    key === "bare"
      ? body.productId === "p-1" && body.quantity === 2
      : JSON.stringify(body.item) === '{"product":"p-1","quantity":2}' && body.status === "accepted";
  if (result.statusCode !== EXPECTED_STATUS || !expected)
    throw new Error(`${key}: answered ${result.statusCode} ${String(result.body)}`);
  if (
    key !== "bare" &&
    (result.headers["x-request-id"] !== "bench-check" || !result.headers["cache-control"])
  )
    throw new Error(`${key}: the answer lacks the request id or security headers: ${JSON.stringify(result)}`);
}

/** The chain's EMF records for one request (it writes them to stdout, discarded here): 1 expected. */
async function countEmfRecords(chain: Handler): Promise<number> {
  const emf = (metrics as unknown as { console: Console }).console;
  const log = emf.log;
  let records = 0;
  emf.log = () => {
    records++;
  };
  try {
    await checkOnce("chain", chain);
  } finally {
    emf.log = log;
  }
  return records;
}

/** Runs `n` requests, `concurrency` at a time, and returns CPU and wall time per request. */
async function measure(key: VariantKey, handler: Handler, n: number, concurrency: number) {
  // Events and contexts (fresh per request, as Lambda hands them) are built before the clock starts,
  // each with Lambda's longest deadline: a run slower than a 10 s default (a loaded machine) would
  // otherwise hit Middy's early timeout on the last requests and fail with 504s.
  const inputs = Array.from({ length: n }, (_, i) => ({
    event: orderEvent(`bench-${key}-${i}`),
    context: lambdaContext("gatehouse-bench", LAMBDA_MAX_TIMEOUT_MS),
  }));
  let next = 0;
  let failures = 0;
  let firstFailure = "";
  const lane = async () => {
    while (next < n) {
      const input = inputs[next++];
      if (!input) break;
      try {
        const result = await handler(input.event, input.context);
        if (result.statusCode !== EXPECTED_STATUS) {
          failures++;
          firstFailure ||= `${result.statusCode} ${String(result.body)}`;
        }
      } catch (error) {
        failures++;
        firstFailure ||= String(error);
      }
    }
  };
  (globalThis as { gc?: () => void }).gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, lane));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  if (failures > 0)
    throw new Error(`${key}: ${failures} of ${n} requests failed; the first: ${firstFailure}`);
  return { cpuUs: (cpu.user + cpu.system) / n, wallUs: (wallMs * 1000) / n };
}

async function main(options: WorkerOptions): Promise<Measurement[]> {
  const gateway = loadGateway(benchGateway(options.upstreamUrl), "bench");
  const gatewayHandler = createGatewayHandler(gateway);
  const transport = httpTransport({
    maxResponseBytes: gateway.upstreams.orders?.maxResponseBytes ?? 0,
    followRedirects: false,
  });
  const variants: [VariantKey, Handler][] = [
    ["bare", bareHandler(options.upstreamUrl, transport)],
    ["noMiddy", noMiddyHandler(options.upstreamUrl, transport)],
    ["chain", (event, context) => gatewayHandler(event, context)],
  ];
  for (const [key, handler] of variants) await checkOnce(key, handler);
  const chain = variants[2]?.[1];
  const records = chain ? await countEmfRecords(chain) : 0;
  if (records !== 1) throw new Error(`the chain wrote ${records} EMF record(s) for one request, not 1`);

  for (const concurrency of options.concurrencies) {
    for (const [key, handler] of variants) await measure(key, handler, options.warmup, concurrency);
  }
  const measurements: Measurement[] = [];
  for (let round = 0; round < options.rounds; round++) {
    for (const concurrency of options.concurrencies) {
      // A different variant goes first in each round, so none always follows the same neighbour.
      for (let j = 0; j < variants.length; j++) {
        const [variant, handler] = variants[(round + j) % variants.length] as [VariantKey, Handler];
        const result = await measure(variant, handler, options.requests, concurrency);
        measurements.push({ variant, concurrency, round, ...result });
      }
    }
  }
  return measurements;
}

await runForkedWorker("gateway-chain-worker", main);
