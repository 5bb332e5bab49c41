/**
 * The in-process half of the gateway-bodies bench (bench/cases/gateway-chain.ts, case `gatewayBodies`),
 * forked like the gateway-chain worker with stdout discarded (the chain writes an EMF record per
 * request there) and an IPC channel for the result:
 * `node --import tsx --expose-gc bench/support/gateway-bodies-worker.ts '<BodiesWorkerOptions JSON>'`.
 *
 * For each document size, the real gateway handler proxies `GET /doc` to the loopback upstream (another
 * process, so compressing there is never counted) under each way a body can travel (VARIANTS): what
 * the client accepts and what the upstream sends decide whether the gateway passes the bytes, decodes
 * them, or compresses them itself, at the levels a variant names and at every size (`minBytes` 0, so
 * the rows show where compressing stops paying). Each variant's answer is decoded by its own
 * `content-encoding` and compared with the document before anything is timed.
 */
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import { httpEvent } from "../../tests/support/events.ts";
import { lambdaContext } from "../../tests/support/lambda-context.ts";
import { runForkedWorker } from "./forked-worker.ts";
import { jsonDocument } from "./json-document.mjs";

export interface BodiesWorkerOptions {
  upstreamUrl: string;
  /** Document sizes, bytes. */
  sizes: number[];
  /** Measurements per variant and size, in rotated order. */
  rounds: number;
}

type Levels = { gzipLevel?: number; brotliQuality?: number };

/** How a body travels: the client's Accept-Encoding, what the upstream is told to send, what must come out. */
interface Variant {
  key: string;
  label: string;
  acceptEncoding?: string;
  encode: "auto" | "none" | "gzip" | "br";
  /** The content-encoding the client must get (undefined: none). */
  expect?: "gzip" | "br";
  /** The gateway's compression levels, when it compresses (else the config's defaults). */
  levels?: Levels;
}

const gateway = (coding: "gzip" | "br", level: number): Variant => ({
  key: `gateway-${coding}-${level}`,
  label: `upstream identity, client ${coding}: gateway ${coding === "gzip" ? "gzip level" : "br quality"} ${level}`,
  acceptEncoding: coding,
  encode: "none",
  expect: coding,
  levels: coding === "gzip" ? { gzipLevel: level } : { brotliQuality: level },
});

const VARIANTS: Variant[] = [
  { key: "identity", label: "identity both ways (baseline)", encode: "none" },
  {
    key: "passGzip",
    label: "upstream gzip, client gzip: passed",
    acceptEncoding: "gzip",
    encode: "auto",
    expect: "gzip",
  },
  {
    key: "passBr",
    label: "upstream br, client br: passed",
    acceptEncoding: "br",
    encode: "auto",
    expect: "br",
  },
  { key: "decodeGzip", label: "upstream gzip, client identity: decoded", encode: "gzip" },
  { key: "decodeBr", label: "upstream br, client identity: decoded", encode: "br" },
  gateway("gzip", 1),
  gateway("gzip", 6),
  gateway("br", 1),
  gateway("br", 4),
];

export interface BodyMeasurement {
  key: string;
  label: string;
  size: number;
  round: number;
  /** Process CPU per request, the runtime's JSON.stringify of the answer included, µs. */
  cpuUs: number;
  /** The Lambda answer as the runtime serialises it, bytes. */
  envelopeBytes: number;
}

/** Requests per measurement: fewer for larger documents, so each size takes about as long. */
const requestsFor = (size: number) => Math.max(40, Math.min(400, Math.round(2_000_000 / size)));

const LAMBDA_MAX_TIMEOUT_MS = 900_000;

function docEvent(size: number, variant: Variant, i: number): HttpEvent {
  const event = httpEvent({
    method: "GET",
    routeKey: "GET /doc",
    path: "/doc",
    query: `bytes=${size}&encode=${variant.encode}`,
    headers: {
      accept: "application/json",
      "user-agent": "gatehouse-bench",
      "x-forwarded-for": "203.0.113.10",
      "x-forwarded-proto": "https",
      ...(variant.acceptEncoding ? { "accept-encoding": variant.acceptEncoding } : {}),
    },
  });
  event.requestContext.requestId = `bench-body-${variant.key}-${i}`;
  return event;
}

type Handler = (event: HttpEvent) => Promise<HttpResult>;

/** The real gateway handler with one route to the loopback upstream and these compression levels. */
function gatewayHandler(upstreamUrl: string, levels: Levels = {}): Handler {
  const config: GatewayConfigInput = {
    auth: { issuers: [] },
    upstreams: { docs: { targets: [{ url: upstreamUrl }], timeoutMs: 5_000, retries: 0 } },
    compression: { minBytes: 0, ...levels },
    routes: { "GET /doc": { auth: "public", proxy: { upstream: "docs", path: "/doc" } } },
  };
  const handler = createGatewayHandler(
    loadGateway(
      defineGateway(() => config),
      "bench",
    ),
  );
  return (event) => handler(event, lambdaContext("gatehouse-bench", LAMBDA_MAX_TIMEOUT_MS));
}

/** The request's answer, checked: 200, the promised coding, and bytes that decode to the document. */
function check(result: HttpResult, variant: Variant, document: Buffer): void {
  const coding = result.headers["content-encoding"] as string | undefined;
  if (result.statusCode !== 200 || coding !== variant.expect) {
    throw new Error(
      `${variant.key}: ${result.statusCode}, content-encoding ${coding}: ${String(result.body).slice(0, 200)}`,
    );
  }
  const bytes = Buffer.from(String(result.body ?? ""), result.isBase64Encoded ? "base64" : "utf8");
  const decoded =
    coding === "gzip" ? gunzipSync(bytes) : coding === "br" ? brotliDecompressSync(bytes) : bytes;
  if (!decoded.equals(document)) throw new Error(`${variant.key}: the body is not the document`);
}

async function measure(handler: Handler, size: number, variant: Variant, n: number) {
  const events = Array.from({ length: n }, (_, i) => docEvent(size, variant, i));
  let last: HttpResult | undefined;
  (globalThis as { gc?: () => void }).gc?.();
  const cpu0 = process.cpuUsage();
  for (const event of events) {
    last = await handler(event);
    // What the Node runtime does with the answer; its cost grows with what the body became.
    JSON.stringify(last);
    if (last.statusCode !== 200) throw new Error(`${variant.key}: ${last.statusCode} ${String(last.body)}`);
  }
  const cpu = process.cpuUsage(cpu0);
  if (!last) throw new Error("no requests");
  return { cpuUs: (cpu.user + cpu.system) / n, envelopeBytes: Buffer.byteLength(JSON.stringify(last)) };
}

async function main(options: BodiesWorkerOptions): Promise<BodyMeasurement[]> {
  const handlers = new Map(
    VARIANTS.map((variant) => [variant, gatewayHandler(options.upstreamUrl, variant.levels)]),
  );
  const handlerOf = (variant: Variant) => handlers.get(variant) as Handler;
  const measurements: BodyMeasurement[] = [];
  for (const size of options.sizes) {
    const document = jsonDocument(size);
    for (const variant of VARIANTS)
      check(await handlerOf(variant)(docEvent(size, variant, -1)), variant, document);
    const n = requestsFor(size);
    for (const variant of VARIANTS) await measure(handlerOf(variant), size, variant, Math.ceil(n / 4)); // warm-up
    for (let round = 0; round < options.rounds; round++) {
      for (let j = 0; j < VARIANTS.length; j++) {
        const variant = VARIANTS[(round + j) % VARIANTS.length] as Variant;
        const result = await measure(handlerOf(variant), size, variant, n);
        measurements.push({ key: variant.key, label: variant.label, size, round, ...result });
      }
    }
  }
  return measurements;
}

await runForkedWorker("gateway-bodies-worker", main);
