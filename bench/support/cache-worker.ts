/**
 * The in-process half of the cache bench (bench/cases/cache.ts), in a Node process of its own:
 * forked by the case with an IPC channel, which carries the measurements back, and stdout discarded
 * (the chain writes its EMF record there per request, as in Lambda). The DynamoDB store (dynalite)
 * runs in the case's process and the upstream (bench/support/loopback-upstream.mjs) in another, so
 * the CPU measured here is the gateway's and the SDK's, never the store's or the upstream's.
 *
 * A "container" is what one Lambda container of the gateway function holds: the real gateway
 * handler (`createGatewayHandler` over the bench's config) with its own response cache, made as
 * handlers/http/gateway.ts makes it: a container tier from the stage's `cache.memory` and the shared
 * tier on the cache table, through the project's cache client (`createCacheDocumentClient`, endpoint
 * from `AWS_ENDPOINT_URL_DYNAMODB`). Every DynamoDB call is counted on the wire by a middleware on
 * that client (bench/support/dynamodb-calls.ts); upstream calls are what the upstream says it got.
 *
 * - Request classes, timed one request at a time (tinybench): the uncached route, a hit in the container tier,
 *   a hit in the shared tier (a container whose container tier is off), and a miss (a key never
 *   seen). Each round takes every class once, in rotated order.
 * - Runs of 1,000 requests (or what the case asks for) over a key distribution, counted: upstream
 *   calls, hits by tier, misses, DynamoDB calls.
 *
 * Every answer's status and `X-Cache` are checked, and every batch's tier events (the cache's own
 * `onEvent`) against the class; a failing table call (silently a miss in production) fails the run.
 */
import { createMemoryTier } from "#shared/cache/memory.ts";
import { createResponseCache } from "#shared/cache/response-cache.ts";
import { createTableTier } from "#shared/cache/table.ts";
import { createCacheDocumentClient } from "#shared/clients/dynamodb.ts";
import { defineGateway, type GatewayConfig, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "#shared/http.ts";
import { httpEvent } from "../../tests/support/events.ts";
import { lambdaContext } from "../../tests/support/lambda-context.ts";
import { timeCalls } from "../lib.ts";
import { byOperation, type CallCounter, countDynamoCalls } from "./dynamodb-calls.ts";
import { runForkedWorker } from "./forked-worker.ts";
import { generator } from "./json-document.mjs";

export interface CacheWorkerOptions {
  /** The loopback upstream's base URL, `http://127.0.0.1:<port>`. */
  upstreamUrl: string;
  /** The cache table (its endpoint is in `AWS_ENDPOINT_URL_DYNAMODB`). */
  tableName: string;
  /** The JSON document the upstream answers, bytes. */
  documentBytes: number;
  /** Timed rounds; each takes every request class once. */
  rounds: number;
  /** Timed requests per class per round, and untimed ones per class before the first round. */
  requests: number;
  warmup: number;
  /** Keys the hit classes cycle over (stored before the rounds). */
  hotKeys: number;
  /** The counted runs. */
  runs: RunSpec[];
}

/** One counted run: `keys` keys `repeats` times each, over `containers` containers. */
export interface RunSpec {
  key: string;
  label: string;
  route: "cached" | "uncached";
  keys: number;
  repeats: number;
  /** `interleaved`: every key once, then again (k0…k99, k0…k99, …); `shuffled`: the same, seeded shuffle. */
  order: "interleaved" | "shuffled";
  containers: number;
  /** Requests in flight at once; each lane keeps to one container (lane mod containers). */
  concurrency: number;
  /** The upstream answers after this long (so concurrent misses overlap). */
  upstreamDelayMs: number;
}

export type ClassKey = "uncached" | "memoryHit" | "tableHit" | "miss";

/** One class's timed batch in one round. */
export interface ClassSample {
  kind: "class";
  key: ClassKey;
  round: number;
  requests: number;
  /** Each request's wall time, ms (tinybench's samples). */
  latenciesMs: number[];
  /** Process CPU (user + system, all threads) per request, µs. */
  cpuUs: number;
  /** DynamoDB calls by operation, upstream requests received, for the batch. */
  calls: Record<string, number>;
  upstream: number;
}

/** One counted run. */
export interface RunSample {
  kind: "run";
  key: string;
  label: string;
  requests: number;
  containers: number;
  concurrency: number;
  upstream: number;
  /** Answers by `X-Cache`, and hits by the tier that answered them (the cache's own events). */
  answered: { hit: number; miss: number };
  tiers: { memory: number; table: number };
  calls: Record<string, number>;
  wallMs: number;
}

export type CacheMeasurement = ClassSample | RunSample;

type Handler = (event: HttpEvent, context: GatehouseContext) => Promise<HttpResult>;

/** Lambda's longest function timeout: a loaded machine never meets Middy's early timeout. */
const LAMBDA_MAX_TIMEOUT_MS = 900_000;
/** What a browser or an HTTP library sends: the upstream's coding passes through on both routes. */
const CLIENT_HEADERS = { accept: "application/json", "accept-encoding": "gzip, deflate, br" };
const ROUTES = { cached: "/v1/cached", uncached: "/v1/docs" } as const;

/**
 * The bench's gateway: one upstream and the same proxied route twice, with and without `cache`. The
 * cached route keys the query parameters it sends (what is keyed is what is sent): `k` tells keys
 * apart, `bytes` and `delay` reach the loopback upstream.
 */
const benchGateway = (upstreamUrl: string) =>
  defineGateway(() => ({
    auth: { issuers: [] },
    upstreams: { docs: { targets: [{ url: upstreamUrl }], timeoutMs: 2_000, retries: 0 } },
    routes: {
      [`GET ${ROUTES.uncached}`]: { auth: "public", proxy: { upstream: "docs", path: "/doc" } },
      [`GET ${ROUTES.cached}`]: {
        auth: "public",
        proxy: { upstream: "docs", path: "/doc" },
        // The longest TTL: no entry may expire while the bench runs.
        cache: { ttlSeconds: 3_600, key: { query: ["k", "bytes", "delay"] } },
      },
    },
  }));

interface Container {
  handler: Handler;
  /** The cache's events so far: hits by tier, misses, failed table calls. */
  events: { memory: number; table: number; miss: number; stale: number; tableErrors: unknown[] };
}

/** One gateway container: its own container tier (off when `memory` is false) and the shared table. */
function container(gateway: GatewayConfig, tableName: string, counter: Counted, memory = true): Container {
  const events: Container["events"] = { memory: 0, table: 0, miss: 0, stale: 0, tableErrors: [] };
  const cache = createResponseCache({
    memory: createMemoryTier(memory ? gateway.cache.memory : { ...gateway.cache.memory, maxBytes: 0 }),
    table: createTableTier({ client: counter.client, tableName }),
    onEvent: (event) => {
      if (event.type === "hit") events[event.tier]++;
      else if (event.type === "miss" || event.type === "stale") events[event.type]++;
      else if (event.type === "table-error") events.tableErrors.push(event.error);
    },
  });
  return { handler: createGatewayHandler(gateway, { cache }), events };
}

interface Counted {
  client: ReturnType<typeof createCacheDocumentClient>;
  counter: CallCounter;
}

async function upstreamCount(upstreamUrl: string): Promise<number> {
  const response = await fetch(`${upstreamUrl}/count`);
  return ((await response.json()) as { requests: number }).requests;
}

/** A seeded shuffle (json-document.mjs's xorshift): the same order in every run. */
function shuffled<T>(items: readonly T[]): T[] {
  const random = generator(2_654_435_761);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

async function main(options: CacheWorkerOptions): Promise<CacheMeasurement[]> {
  const gateway = loadGateway(benchGateway(options.upstreamUrl), "bench");
  const client = createCacheDocumentClient();
  const counted: Counted = { client, counter: countDynamoCalls(client) };
  const { tableName, upstreamUrl } = options;

  const event = (route: keyof typeof ROUTES, key: string, delayMs = 0): HttpEvent =>
    httpEvent({
      method: "GET",
      routeKey: `GET ${ROUTES[route]}`,
      path: ROUTES[route],
      query: `k=${key}&bytes=${options.documentBytes}${delayMs > 0 ? `&delay=${delayMs}` : ""}`,
      headers: CLIENT_HEADERS,
    });
  const context = () => lambdaContext("gatehouse-bench-gateway", LAMBDA_MAX_TIMEOUT_MS);

  /** What an answer should be; a description of what is wrong, or undefined. */
  const wrong = (result: HttpResult, xCache: string | undefined): string | undefined =>
    result.statusCode === 200 && result.headers["x-cache"] === xCache
      ? undefined
      : `${result.statusCode}, X-Cache ${String(result.headers["x-cache"])} (expected 200, ${String(xCache)}): ${String(result.body).slice(0, 200)}`;

  const checkTable = (containers: Container[], what: string) => {
    const errors = containers.flatMap((c) => c.events.tableErrors);
    if (errors.length > 0)
      throw new Error(`${what}: ${errors.length} cache table call(s) failed: ${String(errors[0])}`);
  };

  // Container A has both tiers; container B only the table (its container tier is off).
  const a = container(gateway, tableName, counted);
  const b = container(gateway, tableName, counted, false);
  const hot = Array.from({ length: options.hotKeys }, (_, i) => `hot-${i}`);
  for (const key of hot) {
    const problem = wrong(await a.handler(event("cached", key), context()), "miss");
    if (problem) throw new Error(`storing ${key}: ${problem}`);
  }

  const hotKey = (route: keyof typeof ROUTES) => (_: string, i: number) =>
    event(route, hot[i % hot.length] as string);
  const classes: {
    key: ClassKey;
    container: Container;
    /** The i-th request's event of a batch (`batch` names it, so a miss's key is never reused). */
    event: (batch: string, i: number) => HttpEvent;
    xCache?: string;
    /** The tier event each request must produce. */
    tierEvent?: "memory" | "table" | "miss";
  }[] = [
    { key: "uncached", container: a, event: hotKey("uncached") },
    { key: "memoryHit", container: a, event: hotKey("cached"), xCache: "hit", tierEvent: "memory" },
    { key: "tableHit", container: b, event: hotKey("cached"), xCache: "hit", tierEvent: "table" },
    {
      key: "miss",
      container: a,
      event: (batch, i) => event("cached", `miss-${batch}-${i}`),
      xCache: "miss",
      tierEvent: "miss",
    },
  ];

  /** `work`, with the DynamoDB calls (by operation) and upstream calls it made. */
  const counting = async <T>(work: () => Promise<T>) => {
    const upstream0 = await upstreamCount(upstreamUrl);
    const calls0 = counted.counter.snapshot();
    const result = await work();
    const calls = byOperation(counted.counter.since(calls0));
    return { result, calls, upstream: (await upstreamCount(upstreamUrl)) - upstream0 };
  };

  const batch = async (c: (typeof classes)[number], name: string, n: number) => {
    const inputs = Array.from({ length: n }, (_, i) => ({ event: c.event(name, i), context: context() }));
    const events0 = { ...c.container.events };
    let problem: string | undefined;
    let next = 0;
    const { result, calls, upstream } = await counting(() =>
      timeCalls(`${c.key} (${name})`, { iterations: n }, async () => {
        const input = inputs[next++ % n] as (typeof inputs)[number];
        problem ??= wrong(await c.container.handler(input.event, input.context), c.xCache);
      }),
    );
    const { latenciesMs, cpuUs } = result;
    if (problem) throw new Error(`${c.key} (${name}): ${problem}`);
    checkTable([c.container], `${c.key} (${name})`);
    const tier = c.tierEvent;
    if (tier && c.container.events[tier] - events0[tier] !== n)
      throw new Error(
        `${c.key} (${name}): ${c.container.events[tier] - events0[tier]} ${tier} events for ${n} requests`,
      );
    return { latenciesMs, cpuUs, calls, upstream };
  };

  for (const c of classes) await batch(c, "warmup", options.warmup);
  const measurements: CacheMeasurement[] = [];
  for (let round = 0; round < options.rounds; round++) {
    // A different class goes first in each round, so none always follows the same neighbour.
    for (let j = 0; j < classes.length; j++) {
      const c = classes[(round + j) % classes.length] as (typeof classes)[number];
      const result = await batch(c, `r${round}`, options.requests);
      measurements.push({ kind: "class", key: c.key, round, requests: options.requests, ...result });
    }
  }

  for (const spec of options.runs) measurements.push(await countedRun(spec));
  return measurements;

  /** One counted run on fresh containers and keys of its own (cold in both tiers). */
  async function countedRun(spec: RunSpec): Promise<RunSample> {
    const containers = Array.from({ length: spec.containers }, () => container(gateway, tableName, counted));
    const interleaved = Array.from(
      { length: spec.keys * spec.repeats },
      (_, i) => `${spec.key}-${i % spec.keys}`,
    );
    const keys = spec.order === "shuffled" ? shuffled(interleaved) : interleaved;
    const expected: (string | undefined)[] = spec.route === "cached" ? ["hit", "miss"] : [undefined];
    const answered = { hit: 0, miss: 0 };
    let problem: string | undefined;
    let next = 0;
    const lane = async (laneIndex: number) => {
      while (next < keys.length) {
        const index = next++;
        const target = containers[laneIndex % containers.length] as Container;
        const result = await target.handler(
          event(spec.route, keys[index] as string, spec.upstreamDelayMs),
          context(),
        );
        const xCache = result.headers["x-cache"] as string | undefined;
        if (xCache === "hit" || xCache === "miss") answered[xCache]++;
        if (result.statusCode !== 200 || !expected.includes(xCache))
          problem ??= `${result.statusCode}, X-Cache ${String(xCache)}: ${String(result.body).slice(0, 200)}`;
      }
    };
    const { result: wallMs, ...work } = await counting(async () => {
      const t0 = performance.now();
      await Promise.all(Array.from({ length: spec.concurrency }, (_, i) => lane(i)));
      return performance.now() - t0;
    });
    if (problem) throw new Error(`${spec.label}: ${problem}`);
    checkTable(containers, spec.label);
    const tiers = {
      memory: containers.reduce((sum, c) => sum + c.events.memory, 0),
      table: containers.reduce((sum, c) => sum + c.events.table, 0),
    };
    if (tiers.memory + tiers.table !== answered.hit)
      throw new Error(
        `${spec.label}: ${answered.hit} hits answered, ${tiers.memory + tiers.table} hit events`,
      );
    return {
      kind: "run",
      key: spec.key,
      label: spec.label,
      requests: keys.length,
      containers: spec.containers,
      concurrency: spec.concurrency,
      upstream: work.upstream,
      answered,
      tiers,
      calls: work.calls,
      wallMs,
    };
  }
}

await runForkedWorker("cache-worker", main);
