/**
 * The response cache (docs/caching.md): what a hit costs over the bare proxied call, per tier; how
 * many upstream calls it saves; the DynamoDB calls it makes; and what that comes to per million
 * requests, beside the REST API's own cache.
 *
 * Set-up: a real dynalite with the tables of serverless.yml (tests/support/dynamo.ts) in this
 * process, the loopback upstream (bench/support/loopback-upstream.mjs) in a process of its own, and
 * the gateway in a forked worker (bench/support/cache-worker.ts) whose stdout (the chain's EMF
 * records) is discarded. Each "container" there is the real gateway handler (`createGatewayHandler`)
 * with its own response cache made as handlers/http/gateway.ts makes it. All on 127.0.0.1, on free
 * ports; nothing of the local stack is started.
 *
 * - Request classes, one request at a time, ROUNDS rounds of REQUESTS each (every class once a round,
 *   in rotated order): the uncached route (the same proxied call through the same handler, without
 *   `cache`: the baseline), a hit in the container tier, a hit in the shared tier (a container whose
 *   container tier is off, so every hit reads the table), and a miss (a key never seen: a table read,
 *   the upstream call, a table write). p50/p99 pooled over every request of the class; "× uncached"
 *   is the median over rounds of the class's p50 over the uncached route's p50 in the same round;
 *   CPU is the worker's (the gateway and the SDK client, never the store's or the upstream's).
 *   dynalite is not DynamoDB: per operation it is far slower (a JavaScript emulator over LevelDB,
 *   sharing this machine's cores with the worker), and it has no network hop, no replication and no
 *   throttling. The table-hit and miss times are dynalite's and say nothing of DynamoDB's latency;
 *   DynamoDB is priced from the calls counted, never from these times.
 * - DynamoDB calls per request, counted on the wire (bench/support/dynamodb-calls.ts), by class; the
 *   request units per call from the items the bench stored, read back and sized by DynamoDB's rules
 *   (the table's global secondary indexes read with DescribeTable: a write to an item an index holds
 *   writes the index too).
 * - Upstream calls per 1,000 requests at a 90 % hit rate: 100 keys × 10 requests, counted by the
 *   upstream itself: the uncached route; the cached route on one container, one at a time
 *   (interleaved keys); one container with 8 in flight (shuffled keys; the upstream answers after
 *   20 ms, so misses of one key overlap and coalesce); 4 containers, each one request at a time (as
 *   Lambda runs them: the container tier of each fills on its own, the table shares); and a cold key
 *   asked 50 times at once, on one container and over 4 (coalescing is per container).
 * - Cost per million requests (prices: bench/support/aws-prices.ts, printed with their pages): API
 *   Gateway, Lambda invocations, Lambda duration and DynamoDB request units, with and without the
 *   cache, beside a REST API with its smallest cache in front of the same function. Lambda's duration
 *   is not measured here: it is modelled per class as the worker's CPU per request plus the calls it
 *   makes times an assumed time per call (ASSUMED), rounded up to Lambda's 1 ms, at the gateway
 *   function's memory size in serverless.yml (prod). Upstream calls are counted, not priced.
 *
 * Every answer's status and X-Cache are checked, and the tier that answered each hit; a failing
 * table call fails the case. `BENCH_RUNS` sets the rounds; `--quick` takes one round of 5 requests.
 */
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { startTestStore, type TestStore } from "../../tests/support/dynamo.ts";
import { resolvedService } from "../../tests/support/serverless.ts";
import {
  type BenchContext,
  type Column,
  formatSections,
  formatTable,
  median,
  percentile,
  round,
} from "../lib.ts";
import { AWS_PRICES, HOURS_PER_MONTH, RRU_BYTES, WRU_BYTES } from "../support/aws-prices.ts";
import type {
  CacheMeasurement,
  CacheWorkerOptions,
  ClassKey,
  ClassSample,
  RunSample,
  RunSpec,
} from "../support/cache-worker.ts";
import { dynamoItemSize, readTable } from "../support/dynamodb-calls.ts";
import { runWorker } from "../support/forked-worker.ts";
import { withLoopbackUpstream } from "../support/loopback.ts";

/** Timed requests per class per round (and untimed before the first), full and `--quick`. */
const REQUESTS = 200;
const QUICK_REQUESTS = 5;
/** A JSON answer of a typical API listing's size. */
const DOCUMENT_BYTES = 2_048;
/** The keys the hit classes cycle over. */
const HOT_KEYS = 50;
/** The 90 % hit-rate runs: KEYS keys asked REPEATS times each. */
const KEYS = 100;
const REPEATS = 10;
const CONTAINERS = 4;
const CONCURRENCY = 8;
/** Identical requests for one cold key, at once. */
const BURST = 50;
/** How long the upstream takes in the concurrent runs, so that misses of one key overlap. */
const UPSTREAM_DELAY_MS = 20;
const WORKER_TIMEOUT_MS = 600_000;

/**
 * Stated assumptions of the cost model (not measured here): an upstream's answer as a Lambda in the
 * region waits for it, and one DynamoDB GetItem or PutItem from a Lambda in the region (single-digit
 * ms). The REST API's hourly cache is spread over each monthly volume.
 */
const ASSUMED = { upstreamMs: 50, dynamodbMs: 5 };
const MONTHLY_REQUESTS = [1e6, 1e7, 1e8];

const CLASS_LABELS: Record<ClassKey, string> = {
  uncached: "uncached route (the bare proxied call, same handler)",
  memoryHit: "hit, container tier (memory)",
  tableHit: "hit, shared tier (table; container tier off)",
  miss: "miss (table read, upstream call, table write)",
};

/** A counted run: KEYS keys REPEATS times each, interleaved, unless it says otherwise. */
const countedRun = (spec: Pick<RunSpec, "key" | "label"> & Partial<RunSpec>): RunSpec => ({
  route: "cached",
  keys: KEYS,
  repeats: REPEATS,
  order: "interleaved",
  containers: 1,
  concurrency: 1,
  upstreamDelayMs: 0,
  ...spec,
});
const delayed = { order: "shuffled", upstreamDelayMs: UPSTREAM_DELAY_MS } as const;
const burst = { keys: 1, repeats: BURST, concurrency: BURST, upstreamDelayMs: UPSTREAM_DELAY_MS };

/** The counted runs (upstream calls per 1,000 requests and coalescing). */
const RUNS: RunSpec[] = [
  countedRun({ key: "uncached", label: "uncached route, 1 container, 1 at a time", route: "uncached" }),
  countedRun({ key: "one", label: "cached, 1 container, 1 at a time" }),
  countedRun({
    key: "oneConcurrent",
    label: `cached, 1 container, ${CONCURRENCY} in flight (shuffled; upstream ${UPSTREAM_DELAY_MS} ms)`,
    concurrency: CONCURRENCY,
    ...delayed,
  }),
  countedRun({
    key: "containers",
    label: `cached, ${CONTAINERS} containers, 1 at a time each (shuffled; upstream ${UPSTREAM_DELAY_MS} ms)`,
    containers: CONTAINERS,
    concurrency: CONTAINERS,
    ...delayed,
  }),
  countedRun({
    key: "burst",
    label: `cold key × ${BURST} at once, 1 container (upstream ${UPSTREAM_DELAY_MS} ms)`,
    ...burst,
  }),
  countedRun({
    key: "burstContainers",
    label: `cold key × ${BURST} at once over ${CONTAINERS} containers (upstream ${UPSTREAM_DELAY_MS} ms)`,
    containers: CONTAINERS,
    ...burst,
  }),
];

interface CacheClassRow {
  measure: string;
  key: ClassKey;
  p50Ms: number;
  p99Ms: number;
  /** The class's p50 over the uncached route's, median over rounds. */
  ratioToUncached: number;
  /** Worker CPU per request, µs: median over rounds. */
  cpuUs: number;
  upstreamPerRequest: number;
  /** DynamoDB GetItem calls per request, and writes (PutItem, DeleteItem). */
  readsPerRequest: number;
  writesPerRequest: number;
  rruPerRequest: number;
  wruPerRequest: number;
  /** Lambda's duration as modelled (CPU + calls × ASSUMED), whole ms. */
  lambdaMs: number;
  /** HTTP API + Lambda + DynamoDB for a million requests of this class alone, USD. */
  usdPerMillion: number;
  /** p50 ms per round, in run order. */
  samples: number[];
}

interface CacheRunRow {
  measure: string;
  requests: number;
  containers: number;
  concurrency: number;
  upstreamCalls: number;
  /** Null on a run of other than 1,000 requests. */
  upstreamPer1000: number | null;
  hitPercent: number;
  memoryHits: number;
  tableHits: number;
  /** Answered `X-Cache: miss`; more than the upstream calls when waiters shared a call. */
  misses: number;
  coalesced: number;
  readsPerRequest: number;
  writesPerRequest: number;
  wallMs: number;
}

interface CacheCostRow {
  setup: string;
  apiUsd: number;
  invocationsUsd: number;
  durationUsd: number;
  dynamodbUsd: number;
  cacheHoursUsd: number;
  totalUsd: number;
  upstreamPerMillion: number;
  ratioToNoCache: number;
}

/** A cost row before its total and ratio. */
type CostParts = Omit<CacheCostRow, "totalUsd" | "ratioToNoCache">;

interface CachePriceRow {
  item: string;
  value: number;
  unit: string;
  source: string;
}

export interface CacheResult {
  classes: CacheClassRow[];
  runs: CacheRunRow[];
  costs: CacheCostRow[];
  prices: CachePriceRow[];
  /** Request units per call, from the items stored. */
  units: Units;
}

interface Units {
  itemBytes: number;
  /** The index items a write also writes, by index, bytes. */
  indexBytes: Record<string, number>;
  rruPerRead: number;
  wruPerWrite: number;
}

const classColumns: Column<CacheClassRow>[] = [
  { header: "request class", value: (r) => r.measure },
  { header: "p50 ms", value: (r) => r.p50Ms, decimals: 3 },
  { header: "p99 ms", value: (r) => r.p99Ms, decimals: 3 },
  { header: "× uncached", value: (r) => r.ratioToUncached, decimals: 2 },
  { header: "CPU µs", value: (r) => r.cpuUs, decimals: 0 },
  { header: "upstream/req", value: (r) => r.upstreamPerRequest, decimals: 2 },
  { header: "reads/req", value: (r) => r.readsPerRequest, decimals: 2 },
  { header: "writes/req", value: (r) => r.writesPerRequest, decimals: 2 },
  { header: "RRU/req", value: (r) => r.rruPerRequest, decimals: 2 },
  { header: "WRU/req", value: (r) => r.wruPerRequest, decimals: 2 },
  { header: "Lambda ms*", value: (r) => r.lambdaMs },
  { header: "$/M alone", value: (r) => r.usdPerMillion, decimals: 3 },
];

const runColumns: Column<CacheRunRow>[] = [
  { header: "run (100 keys × 10 unless said)", value: (r) => r.measure },
  { header: "requests", value: (r) => r.requests },
  { header: "upstream calls", value: (r) => r.upstreamCalls },
  { header: "per 1,000", value: (r) => r.upstreamPer1000, decimals: 0 },
  { header: "hit %", value: (r) => r.hitPercent, decimals: 1 },
  { header: "memory hits", value: (r) => r.memoryHits },
  { header: "table hits", value: (r) => r.tableHits },
  { header: "misses", value: (r) => r.misses },
  { header: "coalesced", value: (r) => r.coalesced },
  { header: "reads/req", value: (r) => r.readsPerRequest, decimals: 3 },
  { header: "writes/req", value: (r) => r.writesPerRequest, decimals: 3 },
];

const usd = (header: string, value: (r: CacheCostRow) => number): Column<CacheCostRow> => ({
  header,
  value,
  decimals: 3,
});
const costColumns: Column<CacheCostRow>[] = [
  { header: "per million requests, USD", value: (r) => r.setup },
  usd("API Gateway", (r) => r.apiUsd),
  usd("Lambda req", (r) => r.invocationsUsd),
  usd("Lambda GB-s*", (r) => r.durationUsd),
  usd("DynamoDB", (r) => r.dynamodbUsd),
  usd("cache hours", (r) => r.cacheHoursUsd),
  usd("total", (r) => r.totalUsd),
  { header: "× no cache", value: (r) => r.ratioToNoCache, decimals: 2 },
  { header: "upstream calls", value: (r) => r.upstreamPerMillion },
];

const priceColumns: Column<CachePriceRow>[] = [
  { header: "price or assumption", value: (r) => r.item },
  { header: "value", value: (r) => r.value },
  { header: "unit", value: (r) => r.unit },
  { header: "source", value: (r) => r.source },
];

export function formatCache(result: CacheResult): string {
  const { units } = result;
  const index = Object.entries(units.indexBytes)
    .map(([name, bytes]) => `${name} ${bytes} B`)
    .join(", ");
  return formatSections([
    {
      heading:
        "Request classes, one at a time: time through the real handler (the table's is dynalite's, not DynamoDB's); DynamoDB calls counted",
      table: `${formatTable(result.classes, classColumns)}\n\nRequest units: the cache item is ${units.itemBytes} B (index items: ${index || "none"}): ${units.rruPerRead} RRU a GetItem (eventually consistent), ${units.wruPerWrite} WRU a PutItem (the table and its indexes). * Lambda ms is modelled: see the last table.`,
    },
    {
      heading:
        "Upstream calls per 1,000 requests at a 90 % hit rate, and coalescing (counted by the upstream)",
      table: formatTable(result.runs, runColumns),
    },
    {
      heading:
        "Cost per million requests, with and without the cache, beside the REST API's cache (* duration modelled)",
      table: formatTable(result.costs, costColumns),
    },
    {
      heading: "Prices (US East, on demand) and the cost model's assumptions",
      table: formatTable(result.prices, priceColumns),
    },
  ]);
}

export async function cache(ctx: BenchContext): Promise<CacheResult> {
  const store = await startTestStore();
  try {
    const tableName = store.tables.CacheTable;
    if (!tableName) throw new Error("serverless.yml has no CacheTable");
    const memoryMb = await gatewayMemoryMb();
    const requests = ctx.quick ? QUICK_REQUESTS : REQUESTS;
    const options: Omit<CacheWorkerOptions, "upstreamUrl"> = {
      tableName,
      documentBytes: DOCUMENT_BYTES,
      rounds: ctx.runs,
      requests,
      warmup: requests,
      hotKeys: HOT_KEYS,
      runs: RUNS,
    };
    const measurements = await withLoopbackUpstream(ctx.root, (upstreamUrl) =>
      runWorker<CacheMeasurement>(
        ctx.root,
        "cache-worker.ts",
        { upstreamUrl, ...options } satisfies CacheWorkerOptions,
        {
          timeoutMs: WORKER_TIMEOUT_MS,
          env: {
            AWS_ENDPOINT_URL_DYNAMODB: store.endpoint,
            AWS_ACCESS_KEY_ID: "local",
            AWS_SECRET_ACCESS_KEY: "local",
          },
        },
      ),
    );
    const units = await requestUnits(store.client, tableName);
    const classes = classRows(
      measurements.filter((m): m is ClassSample => m.kind === "class"),
      units,
      memoryMb,
    );
    const runs = measurements.filter((m): m is RunSample => m.kind === "run");
    return {
      classes,
      runs: runs.map(runRow),
      costs: costRows(classes, runs, units, memoryMb),
      prices: priceRows(memoryMb),
      units,
    };
  } finally {
    await store.stop();
  }
}

/** The gateway function's memory in the prod stage, as serverless.yml resolves it. */
async function gatewayMemoryMb(): Promise<number> {
  const prod = await resolvedService("prod");
  const memory = Number(prod.functions?.gateway?.memorySize ?? prod.provider?.memorySize);
  if (!Number.isFinite(memory) || memory <= 0)
    throw new Error("no memorySize for the gateway in serverless.yml");
  return memory;
}

const reads = (calls: Record<string, number>) => calls.GetItem ?? 0;
const writes = (calls: Record<string, number>) => (calls.PutItem ?? 0) + (calls.DeleteItem ?? 0);
/** Throws if `calls` has any the cache should never make on these paths. */
function checkCalls(what: string, ...calls: Record<string, number>[]): void {
  const known = ["GetItem", "PutItem", "DeleteItem"];
  const unexpected = calls.flatMap((c) => Object.entries(c).filter(([op]) => !known.includes(op)));
  if (unexpected.length > 0)
    throw new Error(`cache: ${what} made DynamoDB calls it should not: ${JSON.stringify(unexpected)}`);
}

function classRows(samples: ClassSample[], units: Units, memoryMb: number): CacheClassRow[] {
  const keys: ClassKey[] = ["uncached", "memoryHit", "tableHit", "miss"];
  const uncached = samples.filter((s) => s.key === "uncached");
  return keys.map((key) => {
    const own = samples.filter((s) => s.key === key).sort((a, b) => a.round - b.round);
    checkCalls(key, ...own.map((s) => s.calls));
    const requests = own.reduce((sum, s) => sum + s.requests, 0);
    const total = (f: (s: ClassSample) => number) => own.reduce((sum, s) => sum + f(s), 0) / requests;
    const readsPerRequest = total((s) => reads(s.calls));
    const writesPerRequest = total((s) => writes(s.calls));
    const upstreamPerRequest = total((s) => s.upstream);
    const cpuUs = median(own.map((s) => s.cpuUs));
    const lambdaMs = modelledLambdaMs(cpuUs, upstreamPerRequest, readsPerRequest + writesPerRequest);
    const rruPerRequest = readsPerRequest * units.rruPerRead;
    const wruPerRequest = writesPerRequest * units.wruPerWrite;
    const ratios = own.flatMap((s) => {
      const base = uncached.find((u) => u.round === s.round);
      return base ? [median(s.latenciesMs) / median(base.latenciesMs)] : [];
    });
    const all = own.flatMap((s) => s.latenciesMs);
    return {
      measure: CLASS_LABELS[key],
      key,
      p50Ms: round(median(all), 3),
      p99Ms: round(percentile(all, 99), 3),
      ratioToUncached: round(median(ratios), 2),
      cpuUs: round(cpuUs, 0),
      upstreamPerRequest: round(upstreamPerRequest, 3),
      readsPerRequest: round(readsPerRequest, 3),
      writesPerRequest: round(writesPerRequest, 3),
      rruPerRequest: round(rruPerRequest, 3),
      wruPerRequest: round(wruPerRequest, 3),
      lambdaMs,
      usdPerMillion: round(
        AWS_PRICES.apiGatewayHttp.usd +
          AWS_PRICES.lambdaInvocations.usd +
          durationUsdPerMillion(lambdaMs, memoryMb) +
          dynamodbUsdPerMillion(rruPerRequest, wruPerRequest),
        4,
      ),
      samples: own.map((s) => round(median(s.latenciesMs), 3)),
    };
  });
}

/** Lambda's billed duration as modelled: CPU here plus each call's assumed time, up to the next 1 ms. */
function modelledLambdaMs(cpuUs: number, upstreamCalls: number, dynamodbCalls: number): number {
  return Math.ceil(cpuUs / 1_000 + upstreamCalls * ASSUMED.upstreamMs + dynamodbCalls * ASSUMED.dynamodbMs);
}

const durationUsdPerMillion = (lambdaMs: number, memoryMb: number) =>
  (memoryMb / 1_024) * (lambdaMs / 1_000) * AWS_PRICES.lambdaArmGbSecond.usd * 1e6;
const dynamodbUsdPerMillion = (rru: number, wru: number) =>
  rru * AWS_PRICES.dynamodbRru.usd + wru * AWS_PRICES.dynamodbWru.usd;

function runRow(run: RunSample): CacheRunRow {
  checkCalls(run.label, run.calls);
  return {
    measure: run.label,
    requests: run.requests,
    containers: run.containers,
    concurrency: run.concurrency,
    upstreamCalls: run.upstream,
    upstreamPer1000: run.requests === 1_000 ? run.upstream : null,
    hitPercent: round((run.answered.hit / run.requests) * 100, 1),
    memoryHits: run.tiers.memory,
    tableHits: run.tiers.table,
    misses: run.answered.miss,
    coalesced: Math.max(0, run.answered.miss - run.upstream),
    readsPerRequest: round(reads(run.calls) / run.requests, 3),
    writesPerRequest: round(writes(run.calls) / run.requests, 3),
    wallMs: round(run.wallMs, 1),
  };
}

/**
 * Per million requests: the uncached route on the HTTP API; the cached route at the mixes counted in
 * the runs with one container and with several (each class at its modelled duration, DynamoDB as
 * counted); and a REST API whose stage cache answers the hits itself, so only its misses invoke the
 * function (uncached), at the one-container run's miss rate (one cache for the whole stage).
 */
function costRows(
  classes: CacheClassRow[],
  runs: RunSample[],
  units: Units,
  memoryMb: number,
): CacheCostRow[] {
  const find = <T extends { key: string }>(items: T[], key: string): T => {
    const found = items.find((item) => item.key === key);
    if (!found) throw new Error(`cache: no ${key} measurement`);
    return found;
  };
  const lambdaMs = (key: ClassKey) => find(classes, key).lambdaMs;
  const uncached = find(classes, "uncached");
  const http = { apiUsd: AWS_PRICES.apiGatewayHttp.usd, invocationsUsd: AWS_PRICES.lambdaInvocations.usd };
  const noCache: CostParts = {
    setup: "HTTP API + gateway, no cache",
    ...http,
    durationUsd: durationUsdPerMillion(uncached.lambdaMs, memoryMb),
    dynamodbUsd: 0,
    cacheHoursUsd: 0,
    upstreamPerMillion: Math.round(uncached.upstreamPerRequest * 1e6),
  };
  const cached = (key: string, setup: string): CostParts => {
    const r = find(runs, key);
    const share = (n: number) => n / r.requests;
    const ms =
      share(r.tiers.memory) * lambdaMs("memoryHit") +
      share(r.tiers.table) * lambdaMs("tableHit") +
      share(r.answered.miss) * lambdaMs("miss");
    return {
      setup,
      ...http,
      durationUsd: durationUsdPerMillion(ms, memoryMb),
      dynamodbUsd: dynamodbUsdPerMillion(
        share(reads(r.calls)) * units.rruPerRead,
        share(writes(r.calls)) * units.wruPerWrite,
      ),
      cacheHoursUsd: 0,
      upstreamPerMillion: Math.round(share(r.upstream) * 1e6),
    };
  };
  const one = find(runs, "one");
  const missRate = one.upstream / one.requests;
  const rest = MONTHLY_REQUESTS.map(
    (monthly): CostParts => ({
      setup: `REST API + 0.5 GB cache, ${monthly / 1e6}M requests a month; function on misses`,
      apiUsd: AWS_PRICES.apiGatewayRest.usd,
      invocationsUsd: missRate * AWS_PRICES.lambdaInvocations.usd,
      durationUsd: missRate * durationUsdPerMillion(uncached.lambdaMs, memoryMb),
      dynamodbUsd: 0,
      cacheHoursUsd: (AWS_PRICES.apiGatewayRestCache05.usd * HOURS_PER_MONTH) / (monthly / 1e6),
      upstreamPerMillion: Math.round(missRate * 1e6),
    }),
  );
  const rows = [
    noCache,
    cached("one", "HTTP API + gateway + cache, 1 container (run above)"),
    cached("containers", `HTTP API + gateway + cache, ${CONTAINERS} containers (run above)`),
    ...rest,
  ];
  const totalOf = (r: (typeof rows)[number]) =>
    r.apiUsd + r.invocationsUsd + r.durationUsd + r.dynamodbUsd + r.cacheHoursUsd;
  const base = totalOf(noCache);
  return rows.map((r) => ({
    ...r,
    apiUsd: round(r.apiUsd, 4),
    invocationsUsd: round(r.invocationsUsd, 4),
    durationUsd: round(r.durationUsd, 4),
    dynamodbUsd: round(r.dynamodbUsd, 4),
    cacheHoursUsd: round(r.cacheHoursUsd, 4),
    totalUsd: round(totalOf(r), 4),
    ratioToNoCache: round(totalOf(r) / base, 2),
  }));
}

function priceRows(memoryMb: number): CachePriceRow[] {
  const prices = Object.values(AWS_PRICES).map((price) => ({
    item: price.what,
    value: price.usd,
    unit: `USD ${price.unit}`,
    source: `${price.source} (checked ${price.checked})`,
  }));
  return [
    ...prices,
    {
      item: "gateway function memory",
      value: memoryMb,
      unit: "MB",
      source: "serverless.yml, stage prod (resolved by `serverless print`)",
    },
    {
      item: "an upstream answer, as the function waits for it",
      value: ASSUMED.upstreamMs,
      unit: "ms a call (Lambda ms* = worker CPU + calls × these, up to the next 1 ms)",
      source: "assumed",
    },
    {
      item: "a DynamoDB GetItem or PutItem from the function",
      value: ASSUMED.dynamodbMs,
      unit: "ms a call",
      source: "assumed (single-digit ms in the region)",
    },
  ];
}

/**
 * Request units per call from what the bench stored: every item of the cache table read back (in
 * this process: the worker's counter never sees it) and sized by DynamoDB's rules, with the items each global secondary index
 * holds of it (table keys, index keys and projected attributes).
 */
async function requestUnits(client: TestStore["client"], tableName: string): Promise<Units> {
  const { table: Table, items } = await readTable(client, tableName);
  const tableKeys = (Table.KeySchema ?? []).map((k) => k.AttributeName ?? "");
  if (items.length === 0) throw new Error("cache: the cache table is empty after the run");
  const itemBytes = Math.max(...items.map(dynamoItemSize));
  const indexBytes: Record<string, number> = {};
  for (const index of Table.GlobalSecondaryIndexes ?? []) {
    const keys = (index.KeySchema ?? []).map((k) => k.AttributeName ?? "");
    const projection = index.Projection;
    const held = items.filter((item) => keys.every((k) => item[k] !== undefined));
    if (held.length === 0) continue;
    const projected = (item: Record<string, AttributeValue>) =>
      projection?.ProjectionType === "ALL"
        ? item
        : Object.fromEntries(
            Object.entries(item).filter(
              ([name]) =>
                tableKeys.includes(name) ||
                keys.includes(name) ||
                (projection?.ProjectionType === "INCLUDE" &&
                  (projection.NonKeyAttributes ?? []).includes(name)),
            ),
          );
    indexBytes[index.IndexName ?? "?"] = Math.max(...held.map((item) => dynamoItemSize(projected(item))));
  }
  const units = (bytes: number, per: number) => Math.max(1, Math.ceil(bytes / per));
  return {
    itemBytes,
    indexBytes,
    // The shared tier reads without ConsistentRead (shared/cache/table.ts): half a unit per 4 KB, and
    // a read that finds nothing still costs the half.
    rruPerRead: units(itemBytes, RRU_BYTES) / 2,
    wruPerWrite:
      units(itemBytes, WRU_BYTES) +
      Object.values(indexBytes).reduce((sum, bytes) => sum + units(bytes, WRU_BYTES), 0),
  };
}
