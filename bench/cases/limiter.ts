/**
 * The usage limiter (shared/quota/limiter.ts) and metering (shared/quota/metering.ts) against a real
 * dynalite with the tables of serverless.yml (tests/support/dynamo.ts), started in this process.
 *
 * - Latency p50/p99 per request and throughput (requests/s) of `limiter.check`, one request at a
 *   time and CONCURRENCY at a time, across CONCURRENCY subjects and on one hot subject (contention on
 *   one item), for a plan that refuses nothing (`PLAN`), the same plan sharded (8 shards, hot subject),
 *   a plan whose quota is used up (the refused path), and with `metering.record` after the check:
 *   the gateway's whole path (usage-limits middleware: check before the upstream call, one metering
 *   write after the answer). Concurrent requests share one limiter (one process, many in flight),
 *   except in the "one a container" measure, where each lane has its own, as Lambda containers that
 *   serve one request at a time each do. Each measure gets WARMUP untimed requests, then ROUNDS
 *   timed batches taken round-robin over all measures, so drift in machine load is shared by all;
 *   latencies are pooled over the batches, throughput is the median batch's.
 * - DynamoDB calls per request, counted on the wire by an SDK middleware on the client
 *   (bench/support/dynamodb-calls.ts): every UpdateItem, GetItem, PutItem... by operation and item
 *   kind, SDK retries included. Every batch is cross-checked against `limiter.stats` and
 *   `metering.stats`; a difference, any other call, or any error fails the case, as does any check
 *   whose outcome is not the one expected (an admitted plan refused, a used-up quota admitted).
 *   "Within one rate window" measures hold the limiter's clock still, so that no rate-window
 *   rollover falls into them; the others run on the real clock, where the plan's 1 s rate window
 *   rolls over every second (and a hot subject's batch, resumed after the other measures' batches,
 *   starts in a new window: its extra calls depend on the batch size). Events counted on their
 *   own: a rollover one request at a time and with CONCURRENCY in flight on one subject, and a
 *   fresh limiter (a new container) whose subject was already counted in the window.
 * - Item sizes: every item of the usage table read back at the end, sized by DynamoDB's rules and as
 *   DynamoDB JSON; a write request unit covers 1 KB, a strongly consistent read 4 KB. The table's
 *   indexes are read (DescribeTable) to see which items an index holds, since an update to an
 *   indexed item is also a write to the index; a metering item is queried in `byDay` to confirm.
 * - Cost per million requests: the counted calls times the request units per call times the public
 *   on-demand prices (bench/support/aws-prices.ts), beside API Gateway's own price per million requests.
 *
 * Target (issue 5): at most one DynamoDB round trip on the hot path of an admitted request, i.e.
 * one call (one write, no read) per admitted check within a rate window.
 *
 * Wall clock only: dynalite's CPU is this process's, so CPU figures would mix the two. dynalite has
 * no network hop and no replication; DynamoDB's latencies are a few ms higher. Contention on one
 * item shows here as dynalite's per-item lock; on DynamoDB a hot item is also capped by its
 * partition's 1,000 WRU/s, which sharding spreads. `BENCH_LIMITER_CHECKS` sets the timed requests per
 * measure (default 4,000); the rounds are BENCH_RUNS capped at MAX_ROUNDS. `--quick`: one round of
 * QUICK_CHECKS a measure, QUICK_WARMUP before, each event counted once.
 */
import { randomUUID } from "node:crypto";
import { type AttributeValue, QueryCommand } from "@aws-sdk/client-dynamodb";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { createLimitPolicy, type LimitPolicy } from "#shared/quota/limit-policy.ts";
import { createLimiter, type LimitDecision, type Limiter, type PlanLimits } from "#shared/quota/limiter.ts";
import { createLocalLimiter } from "#shared/quota/local-limiter.ts";
import { createMetering, type Metering } from "#shared/quota/metering.ts";
import { quotaWindow } from "#shared/quota/windows.ts";
import {
  connectionRefused,
  faultyClient,
  sleep,
  startTestStore,
  type TestStore,
  throttlingError,
} from "../../tests/support/dynamo.ts";
import { type BenchContext, type Column, median, percentile, round, timeCalls } from "../lib.ts";
import { AWS_PRICES, RRU_BYTES, WRU_BYTES } from "../support/aws-prices.ts";
import {
  addCounts,
  type CallCounter,
  type CallCounts,
  calls,
  countDynamoCalls,
  dynamoItemSize,
  emptyCounts,
  readTable,
} from "../support/dynamodb-calls.ts";

/*
 * Prices: bench/support/aws-prices.ts. Usage plans and API keys exist only on REST APIs, and AWS
 * applies their throttling and quotas on a best-effort basis, not exactly. Lambda's invocation price
 * is shown, never added in.
 */
const PRICE = {
  wru: AWS_PRICES.dynamodbWru.usd,
  rru: AWS_PRICES.dynamodbRru.usd,
  http: AWS_PRICES.apiGatewayHttp.usd,
  rest: AWS_PRICES.apiGatewayRest.usd,
  lambda: AWS_PRICES.lambdaInvocations.usd,
};

/** A plan that refuses nothing in this bench: only its counting is measured. */
const PLAN: PlanLimits = {
  name: "bench",
  quota: { limit: 1e9, period: "day" },
  rate: { perSecond: 1e6, burst: 1e6 },
  shards: 1,
};
const SHARDED: PlanLimits = { ...PLAN, name: "bench-sharded", shards: 8 };
/** A plan whose quota the bench uses up before timing, so every timed check is refused. */
const EXHAUSTED: PlanLimits = { ...PLAN, name: "exhausted", quota: { limit: 16, period: "day" } };
const EXHAUSTED_SHARDED: PlanLimits = { ...EXHAUSTED, name: "exhausted-sharded", shards: 8 };
/** The plan's rate window: burst / perSecond. */
const RATE_WINDOW_MS = ((PLAN.rate?.burst ?? 0) / (PLAN.rate?.perSecond ?? 1)) * 1000;

/** The route metered, as the gateway names it (its route key). */
const ROUTE = "POST /v1/orders";
const CONCURRENCY = 32;
const DEFAULT_CHECKS = 4_000;
const WARMUP = 500;
const MAX_ROUNDS = 5;
/** Rollovers, and fresh limiters, per counted event. */
const EVENT_REPEATS = 20;
const QUICK_CHECKS = 2 * CONCURRENCY;
const QUICK_WARMUP = CONCURRENCY;

export interface LimiterRow {
  measure: string;
  concurrency: number | null;
  /** Requests timed (or counted, for events). */
  requests: number | null;
  /** Requests admitted, on the fault rows (where it is what is checked). */
  admitted: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  /** Requests per second: the median of the timed batches. */
  perSecond: number | null;
  /** DynamoDB write calls (UpdateItem, PutItem) per request, counted on the wire. */
  writes: number | null;
  /** DynamoDB read calls (GetItem) per request, counted on the wire. */
  reads: number | null;
  /** Write request units per request: each write call times the WRUs of its item (and index). */
  wru: number | null;
  /** Read request units per request. */
  rru: number | null;
  /** Item size in bytes (DynamoDB's rules), on item rows. */
  bytes: number | null;
  /** USD per million requests: DynamoDB request units, or a listed price. */
  usdPerMillion: number | null;
  /** What the value should be, or "" if there is no target. */
  target: string;
  /** "ok" or "MISS" against `target`, "" if there is no target. */
  status: "ok" | "MISS" | "";
  /** The calls counted, by `<operation> <pk prefix>`; null on rows that count none. */
  calls: CallCounts | null;
  /** Requests/s per timed batch, in run order; empty elsewhere. */
  samples: number[];
}

export const limiterColumns: Column<LimiterRow>[] = [
  { header: "measure", value: (r) => r.measure },
  { header: "conc", value: (r) => r.concurrency },
  { header: "requests", value: (r) => r.requests },
  { header: "admitted", value: (r) => r.admitted },
  { header: "p50 ms", value: (r) => r.p50Ms, decimals: 2 },
  { header: "p99 ms", value: (r) => r.p99Ms, decimals: 2 },
  { header: "req/s", value: (r) => r.perSecond, decimals: 0 },
  { header: "W/req", value: (r) => r.writes, decimals: 3 },
  { header: "R/req", value: (r) => r.reads, decimals: 3 },
  { header: "WRU/req", value: (r) => r.wru, decimals: 3 },
  { header: "RRU/req", value: (r) => r.rru, decimals: 3 },
  { header: "bytes", value: (r) => r.bytes },
  { header: "$/M req", value: (r) => r.usdPerMillion, decimals: 3 },
  { header: "target", value: (r) => r.target },
  { header: "result", value: (r) => r.status },
];

function blankRow(measure: string): LimiterRow {
  return {
    measure,
    concurrency: null,
    requests: null,
    admitted: null,
    p50Ms: null,
    p99Ms: null,
    perSecond: null,
    writes: null,
    reads: null,
    wru: null,
    rru: null,
    bytes: null,
    usdPerMillion: null,
    target: "",
    status: "",
    calls: null,
    samples: [],
  };
}

function checksFromEnv(): number {
  const raw = process.env.BENCH_LIMITER_CHECKS;
  if (raw === undefined || raw === "") return DEFAULT_CHECKS;
  const checks = Number(raw);
  if (!Number.isInteger(checks) || checks < 500)
    throw new Error(`BENCH_LIMITER_CHECKS must be an integer of at least 500, got "${raw}"`);
  return checks;
}

/** A subject as the gateway names a JWT caller: `principal:<issuer id>:<sub>`. */
const newSubject = () => `principal:bench-issuer:${randomUUID()}`;

/** Calls per request of each kind the limiter and metering make; anything else fails the case. */
const COUNTER_WRITE = "UpdateItem limit#";
const COUNTER_READ = "GetItem limit#";
const USAGE_WRITE = "UpdateItem usage#";
const KNOWN = new Set([COUNTER_WRITE, COUNTER_READ, USAGE_WRITE]);

/** A timed measure: its counts (and target) as an event's, plus how it runs and what it timed. */
interface Measure extends EventCount {
  /** One limiter (and metering) for all lanes, or one per lane (a container each, as in Lambda). */
  limiters: Limiter[];
  meterings: Metering[];
  /** Checked per call: one request on `lane`; throws unless its outcome is the expected one. */
  request: (lane: number) => Promise<void>;
  /** Before the warm-up (a used-up quota is used up here). */
  prepare?: () => Promise<void>;
  latencies: number[];
  batchRates: number[];
}

interface Env {
  store: TestStore;
  tableName: string;
  counter: CallCounter;
  /** The held clock of the "within one rate window" measures. */
  heldMs: number;
}

/** The DynamoDB work of one batch, on the wire and by the code's own counts; they must agree. */
async function counted<T>(
  env: Env,
  m: Pick<Measure, "measure" | "limiters" | "meterings">,
  work: () => Promise<T>,
) {
  const stats = (): Record<string, number> => ({
    [COUNTER_WRITE]: m.limiters.reduce((sum, l) => sum + l.stats.writes, 0),
    [COUNTER_READ]: m.limiters.reduce((sum, l) => sum + l.stats.reads, 0),
    [USAGE_WRITE]: m.meterings.reduce((sum, l) => sum + l.stats.writes, 0),
  });
  const before = env.counter.snapshot();
  const stats0 = stats();
  const result = await work();
  const delta = env.counter.since(before);
  const claimed = Object.fromEntries(
    Object.entries(stats()).map(([key, n]) => [key, n - (stats0[key] ?? 0)]),
  );
  const unexpected = Object.keys(delta.byKind).filter((key) => !KNOWN.has(key));
  // A failed attempt the SDK retried is on the wire twice and in the code's counts once: compare the
  // calls that got an answer, and say how many failed (a loaded dynalite drops one now and then).
  const answered = (key: string) => calls(delta, key) - (delta.erroredByKind[key] ?? 0);
  const disagree = Object.entries(claimed).filter(([key, n]) => answered(key) !== n);
  if (delta.errors > 0)
    console.warn(`limiter: ${m.measure}: ${delta.errors} DynamoDB attempt(s) failed and were retried`);
  if (unexpected.length > 0 || disagree.length > 0) {
    throw new Error(
      `limiter: ${m.measure}: the calls on the wire ${JSON.stringify(delta)} are not what the code counted ${JSON.stringify(claimed)}`,
    );
  }
  return { result, delta };
}

/** `n` requests, `concurrency` at a time (tinybench); latencies and the rate go to the measure if `timed`. */
async function batch(env: Env, m: Measure, n: number, timed: boolean): Promise<void> {
  const { result, delta } = await counted(env, m, () =>
    timeCalls(m.measure, { iterations: n, concurrency: m.concurrency }, m.request),
  );
  if (!timed) return;
  const { latenciesMs, wallMs } = result;
  m.latencies.push(...latenciesMs);
  m.batchRates.push((n / wallMs) * 1000);
  m.requests += n;
  addCounts(m.counts, delta);
}

function describe(d: LimitDecision): string {
  return d.admitted ? "admitted" : `refused (${d.reason}, retry after ${d.retryAfterSeconds} s)`;
}

interface MeasureOptions {
  measure: string;
  concurrency: number;
  plan: PlanLimits;
  /** One subject for every lane (contention on one item), else one subject per lane. */
  hot: boolean;
  /** `metering.record` after each check, as the gateway does after the answer. */
  metered: boolean;
  /** The limiter's clock held still: no rate-window rollover during the measure. */
  held: boolean;
  /** One limiter and metering per lane (a Lambda container serves one request at a time). */
  containers?: boolean;
  outcome: "admitted" | "refused";
  target?: { writes: number; reads: number };
}

function defineMeasure(env: Env, o: MeasureOptions): Measure {
  const { client } = env.store;
  const clock = o.held ? { now: () => env.heldMs } : {};
  const instances = o.containers ? o.concurrency : 1;
  const limiters = Array.from({ length: instances }, () =>
    createLimiter({ client, tableName: env.tableName, ...clock }),
  );
  const meterings = o.metered
    ? Array.from({ length: instances }, () => createMetering({ client, tableName: env.tableName, ...clock }))
    : [];
  const subjects = Array.from({ length: o.hot ? 1 : o.concurrency }, newSubject);
  const subjectOf = (lane: number) => subjects[o.hot ? 0 : lane] as string;
  const request = async (lane: number) => {
    const subject = subjectOf(lane);
    const limiter = limiters[o.containers ? lane : 0] as Limiter;
    const metering = meterings[o.containers ? lane : 0];
    const decision = await limiter.check(subject, o.plan, 1);
    const expected =
      o.outcome === "admitted" ? decision.admitted : !decision.admitted && decision.reason === "quota";
    if (!expected) {
      throw new Error(
        `limiter: ${o.measure}: a check that should be ${o.outcome === "admitted" ? "admitted" : "refused by the quota"} was ${describe(decision)}`,
      );
    }
    await metering?.record({ subject, route: ROUTE, cost: 1, status: 200, admitted: decision.admitted });
  };
  const measure: Measure = {
    measure: o.measure,
    concurrency: o.concurrency,
    limiters,
    meterings,
    request,
    ...(o.target ? { target: o.target } : {}),
    latencies: [],
    batchRates: [],
    counts: emptyCounts(),
    requests: 0,
  };
  if (o.outcome === "refused") {
    // Use the quota up: admitted checks until the plan's limit is counted (a sharded plan's second
    // opinion may refuse one early while other shards still have room, hence the loop).
    measure.prepare = async () => {
      const limit = o.plan.quota?.limit ?? 0;
      for (const subject of subjects) {
        let admitted = 0;
        for (let i = 0; i < limit * 20 && admitted < limit; i++) {
          if ((await (limiters[0] as Limiter).check(subject, o.plan, 1)).admitted) admitted++;
        }
        if (admitted !== limit)
          throw new Error(`limiter: ${o.measure}: only ${admitted} of the quota's ${limit} admitted`);
      }
    };
  }
  return measure;
}

export async function limiter(ctx: BenchContext): Promise<LimiterRow[]> {
  const checks = ctx.quick ? QUICK_CHECKS : checksFromEnv();
  const warmup = ctx.quick ? QUICK_WARMUP : WARMUP;
  const rounds = Math.min(ctx.runs, MAX_ROUNDS);
  const perBatch = Math.ceil(checks / rounds);
  const store = await startTestStore();
  try {
    const tableName = store.tables.UsageTable;
    if (!tableName) throw new Error("the test store has no UsageTable");
    const env: Env = { store, tableName, counter: countDynamoCalls(store.client), heldMs: Date.now() };

    const c = CONCURRENCY;
    const one = { writes: 1, reads: 0 };
    const admitted = { outcome: "admitted", plan: PLAN, metered: false, held: false, hot: false } as const;
    type Options = Partial<MeasureOptions> & { key?: string };
    const admit = (measure: string, concurrency: number, o: Options = {}) =>
      ({ ...admitted, measure, concurrency, ...o }) as MeasureOptions & { key?: string };
    const refuse = (measure: string, concurrency: number, o: Options = {}) =>
      admit(measure, concurrency, { outcome: "refused", plan: EXHAUSTED, ...o });
    const window = "within one rate window:";
    const held = { held: true, target: one };
    const hot = { hot: true };
    const options = [
      admit("check, admitted", 1),
      admit(`check, admitted, ${c} subjects`, c),
      admit("check, admitted, 1 hot subject", c, hot),
      admit(`check, admitted, 1 hot subject, ${c} limiters (one a container)`, c, {
        ...hot,
        containers: true,
      }),
      admit("check, admitted, 1 hot subject, 8 shards", c, { ...hot, plan: SHARDED }),
      admit(`${window} check, admitted`, 1, held),
      admit(`${window} check, admitted, ${c} subjects`, c, held),
      admit(`${window} check, admitted, 1 hot subject`, c, { ...held, ...hot }),
      admit(`${window} check, admitted, 1 hot subject, 8 shards`, c, { ...held, ...hot, plan: SHARDED }),
      admit("check + record (gateway path), admitted", 1, { key: "full", metered: true }),
      admit(`check + record, admitted, ${c} subjects`, c, { metered: true }),
      admit("check + record, admitted, 1 hot subject", c, { metered: true, ...hot }),
      admit(`${window} check + record, admitted, 1 hot subject`, c, {
        metered: true,
        ...hot,
        held: true,
        target: { writes: 2, reads: 0 },
      }),
      refuse("check, refused (quota used up)", 1),
      refuse("check, refused (quota used up), 1 hot subject", c, hot),
      refuse("check, refused (quota used up), 8 shards", 1, { plan: EXHAUSTED_SHARDED }),
      refuse("check + record, refused (quota used up)", 1, { key: "fullRefused", metered: true }),
      refuse("check + record, refused (quota used up), 1 hot subject", c, { metered: true, ...hot }),
    ];
    const measures = options.map((o) => defineMeasure(env, o));

    for (const m of measures) {
      await m.prepare?.();
      await batch(env, m, warmup, false);
    }
    for (let r = 0; r < rounds; r++) {
      // A different measure goes first in each round, so none always follows the same neighbour.
      for (let j = 0; j < measures.length; j++) {
        await batch(env, measures[(r + j) % measures.length] as Measure, perBatch, true);
      }
    }
    const events = await eventCounts(env, ctx.quick ? 1 : EVENT_REPEATS);
    const faults = await faultRows(env);
    const items = await itemSizes(env);

    const rows: LimiterRow[] = [
      ...measures.map((m) => measuredRow(m, items)),
      ...events.map((e) => eventRow(e, items)),
      ...faults,
      ...items.rows,
    ];
    const full = rows[options.findIndex((o) => o.key === "full")];
    const fullRefused = rows[options.findIndex((o) => o.key === "fullRefused")];
    rows.push(...priceRows(full, fullRefused));
    return rows;
  } finally {
    await store.stop();
  }
}

/** Request units per call of each kind, from the sizes of the items read back. */
interface Units {
  perCall: Record<string, { wru: number; rru: number }>;
  rows: LimiterRow[];
}

function costOf(counts: CallCounts, requests: number, units: Units) {
  let wru = 0;
  let rru = 0;
  let writes = 0;
  let reads = 0;
  for (const [key, n] of Object.entries(counts.byKind)) {
    const perCall = units.perCall[key];
    if (!perCall) throw new Error(`limiter: no request units known for ${key}`);
    wru += n * perCall.wru;
    rru += n * perCall.rru;
    if (key.startsWith("GetItem") || key.startsWith("Query")) reads += n;
    else writes += n;
  }
  return {
    writes: round(writes / requests, 3),
    reads: round(reads / requests, 3),
    wru: round(wru / requests, 3),
    rru: round(rru / requests, 3),
    usdPerMillion: round((wru / requests) * PRICE.wru + (rru / requests) * PRICE.rru, 4),
    exact: { writes: writes / requests, reads: reads / requests },
  };
}

/** The columns every counted row has: calls and request units per request, cost, and the target verdict. */
function countedColumns(
  counts: CallCounts,
  requests: number,
  units: Units,
  target: { writes: number; reads: number } | undefined,
) {
  const { exact, ...cost } = costOf(counts, requests, units);
  const pass = target && exact.writes === target.writes && exact.reads === target.reads;
  const status: LimiterRow["status"] = pass ? "ok" : "MISS";
  return {
    ...cost,
    ...(target ? { target: `${target.writes} W + ${target.reads} R per admitted`, status } : {}),
    calls: counts,
  };
}

const latencyColumns = (ms: number[]) => ({
  p50Ms: round(median(ms), 2),
  p99Ms: round(percentile(ms, 99), 2),
});

function measuredRow(m: Measure, units: Units): LimiterRow {
  return {
    ...eventRow(m, units),
    ...latencyColumns(m.latencies),
    perSecond: round(median(m.batchRates), 0),
    samples: m.batchRates.map((v) => round(v, 0)),
  };
}

interface EventCount {
  measure: string;
  concurrency: number;
  requests: number;
  counts: CallCounts;
  /** Counted calls per request it should make, if it has a target. */
  target?: { writes: number; reads: number };
}

function eventRow(e: EventCount, units: Units): LimiterRow {
  return {
    ...blankRow(e.measure),
    concurrency: e.concurrency,
    requests: e.requests,
    ...countedColumns(e.counts, e.requests, units, e.target),
  };
}

/**
 * What the windows cost when they change: the first requests of a new rate window (the clock moved
 * on by one window) one at a time and CONCURRENCY at once on one subject, and the first check of a
 * fresh limiter (a new container: it has not seen the window) on a subject counted in this window.
 */
async function eventCounts(env: Env, repeats: number): Promise<EventCount[]> {
  const { client } = env.store;
  const tableName = env.tableName;
  const admit = (d: LimitDecision, what: string) => {
    if (!d.admitted) throw new Error(`limiter: ${what}: a check that should be admitted was ${describe(d)}`);
  };

  const rollover = async (concurrency: number, measure: string): Promise<EventCount> => {
    let clockMs = env.heldMs;
    const limiter = createLimiter({ client, tableName, now: () => clockMs });
    const subject = newSubject();
    admit(await limiter.check(subject, PLAN, 1), measure);
    const counts = emptyCounts();
    for (let i = 0; i < repeats; i++) {
      clockMs += RATE_WINDOW_MS;
      const { delta } = await counted(env, { measure, limiters: [limiter], meterings: [] }, () =>
        Promise.all(Array.from({ length: concurrency }, () => limiter.check(subject, PLAN, 1))),
      );
      addCounts(counts, delta);
    }
    // Checked after counting, so the check itself is never counted in.
    const item = await client.send(
      new GetCommand({
        TableName: tableName,
        Key: { pk: `limit#${subject}`, sk: quotaWindow("day", clockMs).id },
        ConsistentRead: true,
      }),
    );
    const counter = item.Item as { used?: number; rc?: number } | undefined;
    if (counter?.used !== 1 + repeats * concurrency || counter.rc !== concurrency)
      throw new Error(`limiter: ${measure}: the counter reads ${JSON.stringify(counter)}`);
    return { measure, concurrency, requests: repeats * concurrency, counts };
  };

  const coldMeasure = "fresh limiter (new container), subject counted this window: first check";
  const counts = emptyCounts();
  const subject = newSubject();
  const warm = createLimiter({ client, tableName, now: () => env.heldMs });
  admit(await warm.check(subject, PLAN, 1), coldMeasure);
  for (let i = 0; i < repeats; i++) {
    const fresh = createLimiter({ client, tableName, now: () => env.heldMs });
    const { result, delta } = await counted(
      env,
      { measure: coldMeasure, limiters: [fresh], meterings: [] },
      () => fresh.check(subject, PLAN, 1),
    );
    admit(result, coldMeasure);
    addCounts(counts, delta);
  }

  return [
    {
      ...(await rollover(1, "rate-window rollover: first check of a new window")),
      target: { writes: 1, reads: 0 },
    },
    await rollover(CONCURRENCY, "rate-window rollover: first checks of a new window, 1 hot subject"),
    { measure: coldMeasure, concurrency: 1, requests: repeats, counts },
  ];
}

/**
 * Reads back every item of the usage table (after the counted batches, so none of it is counted), sizes them,
 * works out which ones the table's global secondary indexes hold, and so the request units of each
 * kind of call.
 */
async function itemSizes(env: Env): Promise<Units> {
  const raw = env.store.client;
  const { table: Table, items } = await readTable(raw, env.tableName);
  const indexes = (Table.GlobalSecondaryIndexes ?? []).map((index) => ({
    name: index.IndexName ?? "",
    keys: (index.KeySchema ?? []).map((k) => k.AttributeName ?? ""),
    // An update of a held item writes the index unless only unprojected attributes change; the
    // counters change on every update, so ALL and INCLUDE projections are written, KEYS_ONLY not.
    written: index.Projection?.ProjectionType !== "KEYS_ONLY",
    projection: index.Projection?.ProjectionType ?? "",
  }));
  const kinds = [
    { prefix: "limit#", label: "item: counter (limit#)", calls: [COUNTER_WRITE, COUNTER_READ] },
    { prefix: "usage#", label: "item: metering (usage#)", calls: [USAGE_WRITE] },
  ];
  const perCall: Units["perCall"] = {};
  const rows: LimiterRow[] = [];
  for (const kind of kinds) {
    const ofKind = items.filter((item) => item.pk?.S?.startsWith(kind.prefix));
    if (ofKind.length === 0) throw new Error(`limiter: no ${kind.prefix} item in the usage table`);
    const sizes = ofKind.map(dynamoItemSize);
    const jsonSizes = ofKind.map((item) => Buffer.byteLength(JSON.stringify(item)));
    const largest = Math.max(...sizes);
    const largestJson = Math.max(...jsonSizes);
    // Index writes per update: the indexes every item of the kind is in (all or none, checked).
    const held = indexes.filter((index) =>
      ofKind.some((item) => index.keys.every((k) => item[k] !== undefined)),
    );
    for (const index of held) {
      const inIt = ofKind.filter((item) => index.keys.every((k) => item[k] !== undefined)).length;
      if (inIt !== ofKind.length)
        throw new Error(
          `limiter: ${inIt} of ${ofKind.length} ${kind.prefix} items are in the ${index.name} index`,
        );
      await confirmInIndex(raw, env.tableName, index, ofKind[0] as Record<string, AttributeValue>);
    }
    const indexWrites = held.filter((index) => index.written).length;
    const wruPerWrite = Math.ceil(largest / WRU_BYTES) * (1 + indexWrites);
    const rruPerRead = Math.ceil(largest / RRU_BYTES);
    for (const key of kind.calls) {
      perCall[key] = key.startsWith("GetItem") ? { wru: 0, rru: rruPerRead } : { wru: wruPerWrite, rru: 0 };
    }
    const where =
      held.length === 0
        ? "no index"
        : `in ${held.map((i) => `${i.name} (${i.projection})`).join(", ")}: +${indexWrites} write`;
    rows.push({
      ...blankRow(`${kind.label}, largest of ${ofKind.length} (${largestJson} B as JSON); ${where}`),
      bytes: largest,
      wru: wruPerWrite,
      rru: kind.prefix === "limit#" ? rruPerRead : null,
      target: "< 1 KB",
      status: largest < WRU_BYTES && largestJson < WRU_BYTES ? "ok" : "MISS",
    });
  }
  return { perCall, rows };
}

/** Queries `indexName` for `item` by its index key; throws if the index does not hold it. */
async function confirmInIndex(
  raw: TestStore["client"],
  tableName: string,
  { name: indexName, keys }: { name: string; keys: string[] },
  item: Record<string, AttributeValue>,
): Promise<void> {
  const names = Object.fromEntries(keys.map((k, i) => [`#k${i}`, k]));
  const values = Object.fromEntries(keys.map((k, i) => [`:k${i}`, item[k] as AttributeValue]));
  const { Items = [] } = await raw.send(
    new QueryCommand({
      TableName: tableName,
      IndexName: indexName,
      KeyConditionExpression: keys.map((_, i) => `#k${i} = :k${i}`).join(" AND "),
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
    }),
  );
  if (!Items.some((found) => found.pk?.S === item.pk?.S && found.sk?.S === item.sk?.S))
    throw new Error(`limiter: the ${indexName} index does not hold ${item.pk?.S} ${item.sk?.S}`);
}

/** API Gateway's own prices beside the DynamoDB cost of Gatehouse's limits and metering. */
function priceRows(full: LimiterRow | undefined, fullRefused: LimiterRow | undefined): LimiterRow[] {
  const price = (measure: string, usd: number): LimiterRow => ({ ...blankRow(measure), usdPerMillion: usd });
  const rows = [
    price("price: API Gateway HTTP API, per million requests (first 300M a month)", PRICE.http),
    price("price: API Gateway REST API (first 333M a month); usage plans exist only here", PRICE.rest),
    price("price: Lambda invocations (plus duration; not added in anywhere)", PRICE.lambda),
  ];
  for (const [outcome, row] of [
    ["admitted", full],
    ["refused", fullRefused],
  ] as const) {
    if (row?.usdPerMillion == null) continue;
    const measure = `HTTP API + Gatehouse check + record, ${outcome} (DynamoDB as counted above)`;
    rows.push(price(measure, round(PRICE.http + row.usdPerMillion, 4)));
  }
  return rows;
}

/** Requests per fault row, and how many are in flight at once. */
const FAULT_REQUESTS = 400;
const FAULT_QUOTA = 50;
/** Containers of the degraded-mode row (each with its own in-memory limits). */
const FAULT_CONTAINERS = 4;

/**
 * The limit policy (shared/quota/limit-policy.ts, what the gateway runs) while the store misbehaves,
 * through the real SDK against dynalite with a fault injected before each call:
 * - slow (+50 ms per call): FAULT_REQUESTS at once, CONCURRENCY in flight, on a quota of FAULT_QUOTA:
 *   admitted must be the quota exactly (slowness is waited for, never admitted uncounted);
 * - the subject's counter item throttled on half of its writes (ProvisionedThroughputExceeded):
 *   admitted must still be the quota exactly (a throttle is a refusal, never a store failure);
 * - unreachable (every call refused at connect), `onStoreFailure: open`: FAULT_CONTAINERS
 *   containers each admit from memory at most the plan's burst per rate window: the over-admission
 *   over the plan is reported, and bounded by containers × burst.
 */
async function faultRows(env: Env): Promise<LimiterRow[]> {
  const quota: PlanLimits = { name: "fault", quota: { limit: FAULT_QUOTA, period: "day" }, shards: 1 };
  const rows: LimiterRow[] = [];
  const run = async (
    measure: string,
    client: ReturnType<typeof faultyClient>,
    plan: PlanLimits,
    policies: LimitPolicy[] = [
      createLimitPolicy({
        limiter: createLimiter({ client, tableName: env.tableName }),
        onStoreFailure: "open",
        what: "bench",
      }),
    ],
  ) => {
    const subject = newSubject();
    const latencies: number[] = [];
    let admitted = 0;
    let unavailable = 0;
    let next = 0;
    const lane = async (index: number) => {
      const policy = policies[index % policies.length] as LimitPolicy;
      while (next < FAULT_REQUESTS) {
        next++;
        const began = performance.now();
        try {
          if ((await policy.check(subject, plan, 1, 20_000)).admitted) admitted++;
        } catch {
          unavailable++;
        }
        latencies.push(performance.now() - began);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, index) => lane(index)));
    return {
      ...blankRow(measure),
      concurrency: CONCURRENCY,
      requests: FAULT_REQUESTS,
      admitted,
      ...latencyColumns(latencies),
      unavailable,
    };
  };

  const slow = await run(
    "fault: store slow (+50 ms a call), quota 50",
    faultyClient(env.store.endpoint, () => sleep(50)),
    quota,
  );
  rows.push({
    ...slow,
    target: `admitted = ${FAULT_QUOTA}, no 503`,
    status: slow.admitted === FAULT_QUOTA && slow.unavailable === 0 ? "ok" : "MISS",
  });

  const throttled = await throttlingError();
  let flip = 0;
  const throttling = faultyClient(env.store.endpoint, ({ commandName }) => {
    if (commandName === "UpdateItemCommand" && flip++ % 2 === 0) throw throttled;
  });
  const half = await run("fault: counter throttled on every other write, quota 50", throttling, quota);
  rows.push({
    ...half,
    target: `admitted = ${FAULT_QUOTA}`,
    status: half.admitted === FAULT_QUOTA ? "ok" : "MISS",
  });

  const burst: PlanLimits = {
    name: "fault-burst",
    rate: { perSecond: 1, burst: 3 },
    quota: { limit: 5, period: "day" },
    shards: 1,
  };
  // Every container's clock held inside one rate window, so each admits its burst once.
  const heldMs = Math.floor(Date.now() / 3_000) * 3_000;
  const down = faultyClient(env.store.endpoint, () => {
    throw connectionRefused();
  });
  const containers = Array.from({ length: FAULT_CONTAINERS }, () =>
    createLimitPolicy({
      limiter: createLimiter({ client: down, tableName: env.tableName }),
      onStoreFailure: "open",
      what: "bench",
      local: createLocalLimiter({ now: () => heldMs }),
    }),
  );
  const degraded = await run(
    `fault: store unreachable (open), ${FAULT_CONTAINERS} containers, burst 3`,
    down,
    burst,
    containers,
  );
  const bound = FAULT_CONTAINERS * 3;
  const { unavailable: _degradedUnavailable, ...degradedRow } = degraded;
  rows.push({
    ...degradedRow,
    target: `admitted <= ${FAULT_CONTAINERS} containers x burst 3 = ${bound} (${degraded.admitted / FAULT_CONTAINERS} a container; the plan alone: 3)`,
    status: degraded.admitted <= bound ? "ok" : "MISS",
  });
  return rows;
}
