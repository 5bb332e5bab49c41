/**
 * The in-process half of the gateway-chain bench (bench/cases/gateway-chain.ts), forked by
 * `runWorker` with stdout discarded: the chain writes its EMF record there per request, as in Lambda,
 * and writing it is part of its cost (the other variants write nothing).
 *
 * Three handlers take the same `POST /v1/orders` event (payload 2.0) and make the same call to the
 * loopback upstream (another process):
 * - `chain`: the real gateway handler over the demo config's order route (its JSON Schema), with a
 *   response mapping: Middy, Powertools logger context, metrics flushed per invocation.
 * - `bare`: the same upstream call with the gateway's own transport (`httpTransport`), no retries or
 *   breakers, its answer returned as it came.
 * - `noMiddy`: the chain's work written by hand (the project's own constants), no Middy.
 *
 * Measured with tinybench, whose clock here is the process's CPU time (`process.cpuUsage`, user +
 * system, GC threads included), so a task's mean latency is CPU per iteration. An iteration is
 * `concurrency` requests at once. Every answer's status is checked; a failure fails the run.
 */
import { Ajv } from "ajv";
import { Bench } from "tinybench";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "#shared/http.ts";
import { SAFE_REQUEST_ID } from "#shared/middleware/request-context.ts";
import { SECURITY_HEADERS } from "#shared/middleware/security-headers.ts";
import { metrics } from "#shared/observability/metrics.ts";
import { HOP_BY_HOP } from "#shared/upstream/forwarding.ts";
import { httpTransport, type Transport } from "#shared/upstream/http-client.ts";
import { compileJmespath } from "#shared/upstream/transform.ts";
import demoGateway from "../../gateway.config.ts";
import { httpEvent } from "../../tests/support/events.ts";
import { lambdaContext } from "../../tests/support/lambda-context.ts";
import { runForkedWorker } from "./forked-worker.ts";

export interface WorkerOptions {
  /** The loopback upstream's base URL, `http://127.0.0.1:<port>`. */
  upstreamUrl: string;
  /** Iterations per measurement (tinybench's `iterations`; `time` is 0). */
  iterations: number;
  /** Warm-up iterations per task, before the first round (0: none). */
  warmup: number;
  /** Measurements per variant and concurrency; each round takes the variants in rotated order. */
  rounds: number;
  /** Requests in flight at once (1 is how a Lambda container serves). */
  concurrencies: number[];
}

export type VariantKey = "chain" | "bare" | "noMiddy";

/** One round of one variant at one concurrency. */
export interface Measurement {
  variant: VariantKey;
  concurrency: number;
  round: number;
  /** Process CPU time per request (the iterations' mean over `concurrency`), µs. */
  cpuUs: number;
  /** Wall-clock time per request over the round, µs. */
  wallUs: number;
}

const ORDER_ROUTE = "POST /v1/orders";
/** The demo config's order route (its body rules and JSON Schema), as the local stack serves it. */
const orderRoute = demoGateway({ stage: "local" }).routes[ORDER_ROUTE];
const ORDER_BODY_RULES = orderRoute?.body as { maxBytes: number; schema: Record<string, unknown> };
const ORDER_BODY = JSON.stringify({ productId: "p-1", quantity: 2 });
const EXPECTED_STATUS = 201;

/** The answer's mapping (JMESPath), the same in the chain and in the hand-written handler. */
const ORDER_MAPPING = "{ orderId: id, item: { product: productId, quantity: quantity }, status: 'accepted' }";

/** The bench's gateway: public routes (no issuers), one upstream, a router with a few routes. */
const benchGateway = (upstreamUrl: string) =>
  defineGateway(() => ({
    auth: { issuers: [] },
    upstreams: { orders: { targets: [{ url: upstreamUrl }], timeoutMs: 2_000, retries: 0 } },
    routes: {
      "GET /health": { auth: "public", handler: "health" },
      "GET /v1/orders": { auth: "public", proxy: { upstream: "orders", path: "/orders" } },
      [ORDER_ROUTE]: {
        auth: "public",
        proxy: { upstream: "orders", path: "/orders", response: { body: ORDER_MAPPING } },
        body: ORDER_BODY_RULES,
      },
      "GET /v1/orders/{id}": { auth: "public", proxy: { upstream: "orders", path: "/orders/{id}" } },
    },
  }));

/** The event API Gateway (HTTP API, payload 2.0) hands the function for `POST /v1/orders`. */
function orderEvent(requestId: string): HttpEvent {
  const event = httpEvent({
    method: "POST",
    routeKey: ORDER_ROUTE,
    path: "/v1/orders",
    headers: {
      accept: "application/json",
      "content-length": String(Buffer.byteLength(ORDER_BODY)),
      "content-type": "application/json",
      "user-agent": "gatehouse-bench",
      "x-amzn-trace-id": "Root=1-6920f0d0-3a5b1c2d4e5f60718293a4b5",
      "x-forwarded-for": "203.0.113.10",
      "x-forwarded-port": "443",
      "x-forwarded-proto": "https",
    },
    body: ORDER_BODY,
  });
  event.requestContext.requestId = requestId;
  return event;
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

/** Not passed on in either direction: hop-by-hop headers and the gateway's own credentials. */
const notForwarded = (name: string) =>
  HOP_BY_HOP.has(name) || name === "authorization" || name === "x-api-key";

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
    ["GET /v1/orders", route("/orders")],
    [ORDER_ROUTE, route("/orders", ORDER_BODY_RULES)],
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
        if (value !== undefined && !notForwarded(name) && !name.startsWith("x-forwarded-"))
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
        if (!notForwarded(name)) answer[name] = value;
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

/** Process CPU time, ms: tinybench's clock here, so a task's latency is the CPU it took. */
const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1_000;
};

/**
 * One tinybench task per variant: an iteration sends `concurrency` requests at once and checks each
 * answer. Events and contexts (fresh per request, as Lambda hands them, each with Lambda's longest
 * deadline so a slow machine never meets Middy's early timeout) are made before the clock starts.
 */
function addTask(bench: Bench, key: VariantKey, handler: Handler, concurrency: number, wall: number[]) {
  let inputs: { event: HttpEvent; context: GatehouseContext }[][] = [];
  let next = 0;
  let began = 0;
  const one = async ({ event, context }: { event: HttpEvent; context: GatehouseContext }) => {
    const result = await handler(event, context);
    if (result.statusCode !== EXPECTED_STATUS)
      throw new Error(`${key}: answered ${result.statusCode} ${String(result.body)}`);
  };
  bench.add(key, () => Promise.all((inputs[next++] ?? []).map(one)), {
    beforeAll(mode) {
      const count = (mode === "warmup" ? bench.warmupIterations : bench.iterations) + 1;
      inputs = Array.from({ length: count }, (_, i) =>
        Array.from({ length: concurrency }, (_, j) => ({
          event: orderEvent(`bench-${key}-${i}-${j}`),
          context: lambdaContext("gatehouse-bench", LAMBDA_MAX_TIMEOUT_MS),
        })),
      );
      next = 0;
      (globalThis as { gc?: () => void }).gc?.();
      began = performance.now();
    },
    afterAll(mode) {
      if (mode === "run") wall.push(((performance.now() - began) * 1_000) / (next * concurrency));
    },
  });
}

async function main(options: WorkerOptions): Promise<Measurement[]> {
  const gateway = loadGateway(benchGateway(options.upstreamUrl), "bench");
  const gatewayHandler = createGatewayHandler(gateway);
  const transport = httpTransport({
    maxResponseBytes: gateway.upstreams.orders?.maxResponseBytes ?? 0,
    followRedirects: false,
  });
  const chain: Handler = (event, context) => gatewayHandler(event, context);
  const variants: [VariantKey, Handler][] = [
    ["bare", bareHandler(options.upstreamUrl, transport)],
    ["noMiddy", noMiddyHandler(options.upstreamUrl, transport)],
    ["chain", chain],
  ];
  for (const [key, handler] of variants) await checkOnce(key, handler);
  const records = await countEmfRecords(chain);
  if (records !== 1) throw new Error(`the chain wrote ${records} EMF record(s) for one request, not 1`);

  const measurements: Measurement[] = [];
  for (const concurrency of options.concurrencies) {
    for (let round = 0; round < options.rounds; round++) {
      const bench = new Bench({
        now: cpuNow,
        time: 0,
        iterations: Math.max(1, Math.round(options.iterations / concurrency)),
        warmup: round === 0 && options.warmup > 0,
        warmupTime: 0,
        warmupIterations: Math.max(1, Math.round(options.warmup / concurrency)),
        throws: true,
      });
      // A different variant goes first in each round, so none always follows the same neighbour.
      const wall = new Map<VariantKey, number[]>();
      for (let j = 0; j < variants.length; j++) {
        const [key, handler] = variants[(round + j) % variants.length] as [VariantKey, Handler];
        wall.set(key, []);
        addTask(bench, key, handler, concurrency, wall.get(key) as number[]);
      }
      for (const task of await bench.run()) {
        const result = task.result;
        if (result.state !== "completed") throw new Error(`${task.name}: ${result.state}`);
        measurements.push({
          variant: task.name as VariantKey,
          concurrency,
          round,
          cpuUs: (result.latency.mean * 1_000) / concurrency,
          wallUs: wall.get(task.name as VariantKey)?.[0] ?? Number.NaN,
        });
      }
    }
  }
  return measurements;
}

await runForkedWorker("gateway-chain-worker", main);
