/**
 * The gateway chain: what Gatehouse's proxy path costs per request, beside the least a Lambda could
 * do for the same request, and what a request takes through the local stack.
 *
 * - CPU per request, in-process (bench/support/gateway-chain-worker.ts, tinybench on a CPU clock): a
 *   `POST /v1/orders` event through the real gateway handler, a bare handler that only makes the
 *   upstream call with the gateway's own transport, and the same work written by hand without Middy;
 *   the upstream (bench/support/loopback-upstream.mjs) is another process, so its CPU is never
 *   counted. One request at a time (as a Lambda container serves) and CONCURRENCY at a time. Rounds
 *   take every variant once, in rotated order; the median is reported, ratios and overheads as the
 *   median of the per-round pairs. Targets, one request at a time: the chain adds at most
 *   TARGET_OVERHEAD_US of CPU over bare and costs at most TARGET_BY_HAND × the work by hand.
 * - Latency through the local stack (`npm start`): p50/p99/max of sequential requests, interleaved
 *   over a proxied `POST` and `GET` with an API key the case creates on the `pro` plan (never the
 *   demo key, whose `free` plan a run or two would use up), `GET /health` and the demo upstream
 *   called directly, after a warm-up.
 *
 * Every response's status is checked; any failure fails the case. `BENCH_CHAIN_REQUESTS` sets the
 * requests per CPU measurement (default 3,000); the rounds are BENCH_RUNS capped at MAX_ROUNDS.
 * `--quick` takes one sample of each measurement (one request, one round, no warm-up).
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { apiKeyStore } from "#shared/auth/api-keys.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { freePorts, type LocalStack, startLocalStack } from "../../tests/support/local-stack.ts";
import { type BenchContext, type Column, median, percentile, round } from "../lib.ts";
import { runWorker } from "../support/forked-worker.ts";
import type { BodiesWorkerOptions, BodyMeasurement } from "../support/gateway-bodies-worker.ts";
import type { Measurement, VariantKey, WorkerOptions } from "../support/gateway-chain-worker.ts";
import { withLoopbackUpstream } from "../support/loopback.ts";

export interface GatewayChainRow {
  measure: string;
  /** Process CPU per request, µs: the median of the rounds. Null on latency rows. */
  cpuUs: number | null;
  /** Wall-clock time per request, µs: the median of the rounds. */
  wallUs: number | null;
  /** CPU over the bare handler's, median of the per-round ratios. */
  ratioToBare: number | null;
  /** CPU added over the bare handler, µs, median of the per-round differences. */
  overheadUs: number | null;
  /** CPU over the same work by hand (no Middy), median of the per-round ratios. */
  ratioToHand: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  maxMs: number | null;
  /** What the value should be, or "" if there is no target. */
  target: string;
  /** "ok" or "MISS" against `target`, "" if there is no target. */
  status: "ok" | "MISS" | "";
  /** CPU µs per request per round, or ms per request, in run order. */
  samples: number[];
}

export const gatewayChainColumns: Column<GatewayChainRow>[] = [
  { header: "measure", value: (r) => r.measure },
  { header: "CPU µs/req", value: (r) => r.cpuUs, decimals: 1 },
  { header: "wall µs/req", value: (r) => r.wallUs, decimals: 1 },
  { header: "× bare", value: (r) => r.ratioToBare, decimals: 2 },
  { header: "+µs vs bare", value: (r) => r.overheadUs, decimals: 1 },
  { header: "× by hand", value: (r) => r.ratioToHand, decimals: 2 },
  { header: "p50 ms", value: (r) => r.p50Ms, decimals: 2 },
  { header: "p99 ms", value: (r) => r.p99Ms, decimals: 2 },
  { header: "max ms", value: (r) => r.maxMs, decimals: 2 },
  { header: "target", value: (r) => r.target },
  { header: "result", value: (r) => r.status },
];

const DEFAULT_REQUESTS = 3_000;
const WARMUP = 2_000;
const MAX_ROUNDS = 5;
const CONCURRENCY = 8;
const TARGET_OVERHEAD_US = 100;
const TARGET_BY_HAND = 1.2;
/** The worker's own limit: about two minutes on an idle machine, past the default 4 on a loaded one. */
const CHAIN_WORKER_TIMEOUT_MS = 600_000;

/** Sequential requests per local-stack route, after LATENCY_WARMUP untimed ones each. */
const LATENCY_REQUESTS = 300;
const LATENCY_WARMUP = 30;

const VARIANTS: { key: VariantKey; label: string }[] = [
  { key: "bare", label: "bare handler (transport only)" },
  { key: "noMiddy", label: "same work, no Middy" },
  { key: "chain", label: "gatehouse chain" },
];

function requestsFromEnv(): number {
  const raw = process.env.BENCH_CHAIN_REQUESTS;
  if (raw === undefined || raw === "") return DEFAULT_REQUESTS;
  const requests = Number(raw);
  if (!Number.isInteger(requests) || requests < 100)
    throw new Error(`BENCH_CHAIN_REQUESTS must be an integer of at least 100, got "${raw}"`);
  return requests;
}

function blankRow(measure: string): GatewayChainRow {
  return {
    measure,
    cpuUs: null,
    wallUs: null,
    ratioToBare: null,
    overheadUs: null,
    ratioToHand: null,
    p50Ms: null,
    p99Ms: null,
    maxMs: null,
    target: "",
    status: "",
    samples: [],
  };
}

export async function gatewayChain(ctx: BenchContext): Promise<GatewayChainRow[]> {
  return [...(await cpuRows(ctx)), ...(await latencyRows(ctx.quick))];
}

async function cpuRows(ctx: BenchContext): Promise<GatewayChainRow[]> {
  const options: Omit<WorkerOptions, "upstreamUrl"> = {
    iterations: ctx.quick ? 1 : requestsFromEnv(),
    warmup: ctx.quick ? 0 : WARMUP,
    rounds: ctx.quick ? 1 : Math.min(ctx.runs, MAX_ROUNDS),
    concurrencies: [1, CONCURRENCY],
  };
  const measurements = await withLoopbackUpstream(ctx.root, (upstreamUrl) =>
    runWorker<Measurement>(
      ctx.root,
      "gateway-chain-worker.ts",
      { upstreamUrl, ...options } satisfies WorkerOptions,
      { timeoutMs: CHAIN_WORKER_TIMEOUT_MS },
    ),
  );

  const rows: GatewayChainRow[] = [];
  for (const concurrency of options.concurrencies) {
    const series = (key: VariantKey) =>
      measurements
        .filter((m) => m.variant === key && m.concurrency === concurrency)
        .sort((a, b) => a.round - b.round);
    const bare = series("bare");
    const hand = series("noMiddy");
    for (const { key, label } of VARIANTS) {
      const own = series(key);
      const paired = own.flatMap((m, i) => {
        const base = bare[i];
        const byHand = hand[i];
        return base && byHand
          ? [{ ratio: m.cpuUs / base.cpuUs, overhead: m.cpuUs - base.cpuUs, toHand: m.cpuUs / byHand.cpuUs }]
          : [];
      });
      const overheadUs = median(paired.map((p) => p.overhead));
      const ratioToHand = median(paired.map((p) => p.toHand));
      const targeted = key === "chain" && concurrency === 1;
      rows.push({
        ...blankRow(`in-process, ${concurrency} at a time: ${label}`),
        cpuUs: round(median(own.map((m) => m.cpuUs))),
        wallUs: round(median(own.map((m) => m.wallUs))),
        ratioToBare: round(median(paired.map((p) => p.ratio)), 2),
        overheadUs: round(overheadUs),
        ratioToHand: round(ratioToHand, 2),
        ...(targeted
          ? {
              target: `≤ +${TARGET_OVERHEAD_US} µs, ≤ ${TARGET_BY_HAND}× by hand`,
              status: overheadUs <= TARGET_OVERHEAD_US && ratioToHand <= TARGET_BY_HAND ? "ok" : "MISS",
            }
          : {}),
        samples: own.map((m) => round(m.cpuUs)),
      });
    }
  }
  return rows;
}

/**
 * A key on the `pro` plan (200/s) for the probes: the demo key's `free` plan allows 50/s, which
 * back-to-back proxied requests pass once each takes under 40 ms, and a 429 is no latency figure.
 */
async function benchKey(stack: LocalStack): Promise<string> {
  const client = createDocumentClient(
    new DynamoDBClient({
      endpoint: stack.dynamodbEndpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    }),
  );
  try {
    const keys = apiKeyStore({ client, tableName: "gatehouse-local-api-keys" });
    return (await keys.create({ owner: "bench", plan: "pro" })).key;
  } finally {
    client.destroy();
  }
}

interface Probe {
  measure: string;
  url: string;
  init: RequestInit;
  status: number;
}

async function latencyRows(quick: boolean): Promise<GatewayChainRow[]> {
  const [warmup, requests] = quick ? [0, 1] : [LATENCY_WARMUP, LATENCY_REQUESTS];
  const PORTS = await freePorts();
  const stack = await startLocalStack(PORTS);
  try {
    const withKey = { "x-api-key": await benchKey(stack) };
    const probes: Probe[] = [
      {
        measure: "local stack: POST /v1/orders (API key, proxied)",
        url: `${stack.httpUrl}/v1/orders`,
        init: {
          method: "POST",
          headers: { ...withKey, "content-type": "application/json" },
          body: JSON.stringify({ productId: "p-1", quantity: 2 }),
        },
        status: 201,
      },
      {
        measure: "local stack: GET /v1/users/1 (API key, proxied)",
        url: `${stack.httpUrl}/v1/users/1`,
        init: { headers: withKey },
        status: 200,
      },
      {
        measure: "local stack: GET /health (public, no upstream)",
        url: `${stack.httpUrl}/health`,
        init: {},
        status: 200,
      },
      {
        measure: "demo upstream direct: GET /users/1",
        url: `http://127.0.0.1:${PORTS.demo}/users/1`,
        init: {},
        status: 200,
      },
    ];
    const samples = new Map<Probe, number[]>(probes.map((probe) => [probe, []]));
    let failures = 0;
    let firstFailure = "";
    // Interleaved, one request at a time, so drift in machine load is shared by all.
    for (let i = 0; i < warmup + requests; i++) {
      for (const probe of probes) {
        const t0 = performance.now();
        const response = await fetch(probe.url, probe.init);
        const body = await response.text();
        const ms = performance.now() - t0;
        if (response.status !== probe.status) {
          failures++;
          firstFailure ||= `${probe.measure}: ${response.status} ${body.slice(0, 300)}`;
        }
        if (i >= warmup) samples.get(probe)?.push(ms);
      }
    }
    if (failures > 0) {
      const total = probes.length * (warmup + requests);
      throw new Error(
        `gateway chain: ${failures} of ${total} local-stack requests failed; the first: ${firstFailure}`,
      );
    }
    return probes.map((probe) => {
      const ms = samples.get(probe) ?? [];
      return {
        ...blankRow(probe.measure),
        p50Ms: round(median(ms), 2),
        p99Ms: round(percentile(ms, 99), 2),
        maxMs: round(Math.max(...ms), 2),
        samples: ms.map((v) => round(v, 2)),
      };
    });
  } finally {
    await stack.stop();
  }
}

/**
 * Bodies through the gateway (case `gatewayBodies`): for JSON documents of several sizes, the chain's
 * CPU per request (the runtime's serialisation of the answer included) and the size of Lambda's
 * answer (the serialised result, base64 included) for each way a body travels: the upstream's coding
 * passed through, decoded, or the gateway compressing at two gzip levels and two brotli qualities.
 * Each is beside the identity request at the same size in the same run. Decides the gateway's
 * compression policy (docs/proxying.md).
 */
export interface GatewayBodyRow {
  measure: string;
  /** The JSON document's size, bytes. */
  bodyBytes: number;
  /** CPU µs per request: the median of the rounds. */
  cpuUs: number;
  /** Over the identity request's CPU at this size, median of the per-round ratios. */
  cpuRatio: number;
  /** Lambda's answer, bytes. */
  envelopeBytes: number;
  /** Over the identity request's answer. */
  envelopeRatio: number;
  /** CPU µs per round, in run order. */
  samples: number[];
}

export const gatewayBodiesColumns: Column<GatewayBodyRow>[] = [
  { header: "measure", value: (r) => r.measure },
  { header: "document B", value: (r) => r.bodyBytes },
  { header: "CPU µs", value: (r) => r.cpuUs, decimals: 1 },
  { header: "× identity CPU", value: (r) => r.cpuRatio, decimals: 2 },
  { header: "answer B", value: (r) => r.envelopeBytes },
  { header: "× identity answer", value: (r) => r.envelopeRatio, decimals: 2 },
];

/** The bodies worker's own limit: about a minute on an idle machine, several on a loaded one. */
const BODIES_WORKER_TIMEOUT_MS = 600_000;

/** Document sizes: under and around a compression threshold, a typical page, a large listing. */
const BODY_SIZES = [512, 1_024, 2_048, 16_384, 262_144];

export async function gatewayBodies(ctx: BenchContext): Promise<GatewayBodyRow[]> {
  const options = { sizes: BODY_SIZES, rounds: Math.min(ctx.runs, MAX_ROUNDS) };
  const measurements = await withLoopbackUpstream(ctx.root, (upstreamUrl) =>
    runWorker<BodyMeasurement>(
      ctx.root,
      "gateway-bodies-worker.ts",
      { upstreamUrl, ...options } satisfies BodiesWorkerOptions,
      { timeoutMs: BODIES_WORKER_TIMEOUT_MS },
    ),
  );
  const rows: GatewayBodyRow[] = [];
  for (const size of options.sizes) {
    const atSize = measurements.filter((m) => m.size === size);
    const baseline = atSize.filter((m) => m.key === "identity");
    for (const key of [...new Set(atSize.map((m) => m.key))]) {
      const own = atSize.filter((m) => m.key === key).sort((a, b) => a.round - b.round);
      const first = own[0];
      if (!first) continue;
      const ratios = own.flatMap((m) => {
        const base = baseline.find((b) => b.round === m.round);
        return base ? [m.cpuUs / base.cpuUs] : [];
      });
      const baseEnvelope = baseline[0]?.envelopeBytes ?? Number.NaN;
      rows.push({
        measure: first.label,
        bodyBytes: size,
        cpuUs: round(median(own.map((m) => m.cpuUs))),
        cpuRatio: round(median(ratios), 2),
        envelopeBytes: first.envelopeBytes,
        envelopeRatio: round(first.envelopeBytes / baseEnvelope, 2),
        samples: own.map((m) => round(m.cpuUs)),
      });
    }
  }
  return rows;
}
