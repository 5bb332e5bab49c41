/**
 * The authorizer's hot path, in this process, against real local servers:
 *
 * - JWT (RS256) verifications per CPU second: raw `crypto.verify` of one token (the baseline), the JWT
 *   authenticator with its verified-token cache off (every call is a full aws-jwt-verify
 *   verification, JWKS already loaded) and warm, and the whole identity decision through the
 *   authorizer runtime with a warm cache. The issuer is the tests' HTTPS JWKS server on 127.0.0.1.
 * - DynamoDB reads per API-key request against dynalite with the project's tables: over a run of
 *   requests, on the first (miss) request and on hits; checks per CPU second with a warm cache, and the
 *   latency of a cache miss (a fresh authenticator each time).
 * - What random keys cost: DynamoDB reads for RANDOM_KEYS random keys of each shape (ghk_ with a
 *   wrong checksum; gh_ refused by `legacyKeys`; gh_ accepted, from one IP, bounded by the miss
 *   budget), and refusals per CPU second of a ghk_ key with a wrong checksum.
 *
 * Throughput is per second of this process's CPU time (`cpuMs`), the median of timed batches, the
 * measures taken round-robin so that drift in machine load is shared by all; each batch is sized to
 * take about BATCH_MS of CPU. With `--quick` each measure is one operation timed once (no warm-up)
 * and the counts run on small workloads: it proves the case runs, it does not time it.
 */
import { randomBytes, verify } from "node:crypto";
import { createApiKeyAuthenticator, issueApiKey } from "#shared/auth/api-key-check.ts";
import { apiKeyStore } from "#shared/auth/api-keys.ts";
import { createAuthorizerRuntime } from "#shared/auth/authorizer-runtime.ts";
import { createJwtAuthenticator } from "#shared/auth/jwt.ts";
import type { GatewayConfig } from "#shared/config/gateway.ts";
import { apiKeysConfig } from "../../tests/support/api-keys.ts";
import { startTestStore, type TestStore } from "../../tests/support/dynamo.ts";
import {
  gatewayTrusting,
  signJwt,
  startJwksServer,
  TEST_AUDIENCE,
  type TestIssuer,
} from "../../tests/support/jwks-server.ts";
import { type BenchContext, type Column, median, percentile, round } from "../lib.ts";

/** Distinct tokens cycled through a cache of MISS_CACHE_ENTRIES, so every lookup misses. */
const MISS_CYCLE = 2_000;
const MISS_CACHE_ENTRIES = 100;

export interface AuthorizerRow {
  measure: string;
  /** In `unit`. */
  value: number;
  unit: string;
  /** Throughput over the raw `crypto.verify` baseline's; null where it does not apply. */
  ratioToRaw: number | null;
  /** What the value should be, or "" if there is no target. */
  target: string;
  /** "ok" or "MISS" against `target`, "" if there is no target. */
  status: "ok" | "MISS" | "";
  /** Ops/s per timed batch, or ms per latency sample, in run order; empty for counts. */
  samples: number[];
}

export const authorizerColumns: Column<AuthorizerRow>[] = [
  { header: "measure", value: (r) => r.measure },
  { header: "value", value: (r) => r.value },
  { header: "unit", value: (r) => r.unit },
  // Right-aligned by hand: rows without a ratio make this a text column.
  { header: " × raw", value: (r) => (r.ratioToRaw === null ? "" : r.ratioToRaw.toFixed(2).padStart(6)) },
  { header: "target", value: (r) => r.target },
  { header: "result", value: (r) => r.status },
];

/**
 * The clock of the throughput measures: this process's CPU time in ms (user + system, GC threads
 * included), as in the gateway-chain case. On a shared machine, wall time also counts the time the
 * process waits for a core: under load the JWT ratios moved by more than the margin they are judged by.
 */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1_000;
}
/** The finest step of `cpuMs` (process.cpuUsage is in µs): a batch is never timed as taking less. */
const CPU_RESOLUTION_MS = 0.001;

/** Timed batches per throughput measure (the median is reported), and the CPU time each aims at. */
const BATCHES = 7;
const BATCH_MS = 200;
/** Warm-up CPU time (also used to size the batches) per throughput measure. */
const WARMUP_MS = 150;
/** API-key authentications counted for reads per request. */
const KEY_REQUESTS = 1_000;
/** Random keys per shape for the reads they cost. */
const RANDOM_KEYS = 10_000;
/** Cache-miss latency samples (each with a fresh authenticator), after a few untimed ones. */
const MISS_SAMPLES = 50;
const MISS_WARMUP = 5;

const COLD_TARGET_RATIO = 0.7;

interface Throughput {
  measure: string;
  unit: string;
  /** Runs the operation `n` times, failing if a result is not the expected one. */
  run: (n: number) => Promise<void>;
}

interface ThroughputResult {
  opsPerSecond: number;
  samples: number[];
}

/**
 * Warms each measure up, sizes its batch, then times BATCHES rounds of one batch per measure; `quick`
 * times one operation of each, once.
 */
async function measureThroughput(
  measures: Throughput[],
  quick: boolean,
): Promise<Map<Throughput, ThroughputResult>> {
  const batchSize = new Map<Throughput, number>();
  for (const m of measures) {
    if (quick) {
      batchSize.set(m, 1);
      continue;
    }
    let ops = 0;
    let chunk = 1;
    const t0 = cpuMs();
    while (cpuMs() - t0 < WARMUP_MS) {
      await m.run(chunk);
      ops += chunk;
      chunk = Math.min(chunk * 2, 1_000);
    }
    const opsPerMs = ops / (cpuMs() - t0);
    batchSize.set(m, Math.max(1, Math.round(opsPerMs * BATCH_MS)));
  }
  const samples = new Map<Throughput, number[]>(measures.map((m) => [m, []]));
  for (let i = 0; i < (quick ? 1 : BATCHES); i++) {
    for (const m of measures) {
      const n = batchSize.get(m) ?? 1;
      const t0 = cpuMs();
      await m.run(n);
      samples.get(m)?.push((n / Math.max(cpuMs() - t0, CPU_RESOLUTION_MS)) * 1000);
    }
  }
  return new Map(
    measures.map((m) => {
      const values = samples.get(m) ?? [];
      return [m, { opsPerSecond: median(values), samples: values.map((v) => round(v, 0)) }];
    }),
  );
}

function gatewayFor(issuer: TestIssuer, tokenCacheEntries: number): GatewayConfig {
  return gatewayTrusting(issuer, { auth: { tokenCacheEntries }, stage: "bench" });
}

function row(
  measure: string,
  value: number,
  unit: string,
  options: { ratioToRaw?: number; target?: string; pass?: boolean; samples?: number[] } = {},
): AuthorizerRow {
  return {
    measure,
    value,
    unit,
    ratioToRaw: options.ratioToRaw === undefined ? null : round(options.ratioToRaw, 2),
    target: options.target ?? "",
    status: options.pass === undefined ? "" : options.pass ? "ok" : "MISS",
    samples: options.samples ?? [],
  };
}

export async function authorizer({ quick }: BenchContext): Promise<AuthorizerRow[]> {
  let jwks: TestIssuer | undefined;
  let store: TestStore | undefined;
  try {
    jwks = await startJwksServer();
    store = await startTestStore();
    return [
      ...(await jwtRows(jwks, store, quick)),
      ...(await apiKeyRows(store, quick)),
      ...(await randomKeyRows(store, quick)),
    ];
  } finally {
    await jwks?.stop();
    await store?.stop();
  }
}

async function jwtRows(jwks: TestIssuer, store: TestStore, quick: boolean): Promise<AuthorizerRow[]> {
  // Quick: just more tokens than the cache holds, so every call still misses.
  const missCycle = quick ? MISS_CACHE_ENTRIES + 1 : MISS_CYCLE;
  const now = Math.floor(Date.now() / 1000);
  const token = signJwt(
    { alg: "RS256", kid: jwks.rsa.kid, typ: "JWT" },
    { iss: jwks.issuer, aud: TEST_AUDIENCE, sub: "alice", iat: now, exp: now + 3600, scope: "a b" },
    { alg: "RS256", privateKey: jwks.rsa.privateKey },
  );
  const dot = token.lastIndexOf(".");
  const signingInput = Buffer.from(token.slice(0, dot));
  const signature = Buffer.from(token.slice(dot + 1), "base64url");
  const publicKey = jwks.rsa.publicKey;

  // A cold cache that is really on: distinct tokens cycled through a cache far smaller than the cycle,
  // so every call is a miss that pays for hashing the token as well as verifying it.
  const distinct = Array.from({ length: missCycle }, (_, i) =>
    signJwt(
      { alg: "RS256", kid: jwks.rsa.kid, typ: "JWT" },
      { iss: jwks.issuer, aud: TEST_AUDIENCE, sub: `user-${i}`, iat: now, exp: now + 3600, scope: "a b" },
      { alg: "RS256", privateKey: jwks.rsa.privateKey },
    ),
  );
  const missing = createJwtAuthenticator({ auth: gatewayFor(jwks, MISS_CACHE_ENTRIES).auth });
  await missing.hydrate();
  let next = 0;
  const cold = createJwtAuthenticator({ auth: gatewayFor(jwks, 0).auth });
  const warm = createJwtAuthenticator({ auth: gatewayFor(jwks, 10_000).auth });
  await cold.hydrate();
  await warm.hydrate();
  const decide = createAuthorizerRuntime({
    gateway: gatewayFor(jwks, 10_000),
    client: store.client,
    apiKeysTable: store.tables.ApiKeysTable ?? "",
  });
  const request = { routeKey: "GET /jwt", sourceIp: "127.0.0.1", credentials: { bearer: token } };

  // One checked call each before timing: a refusal here would make every figure meaningless.
  if (!verify("sha256", signingInput, publicKey, signature)) throw new Error("raw verify refused the token");
  for (const authenticator of [cold, warm]) {
    const verified = await authenticator.verify(token);
    if (verified.subject !== "alice") throw new Error(`token verified as ${JSON.stringify(verified)}`);
  }
  const first = await decide(request);
  if (!first.allow) throw new Error(`the authorizer runtime refused the token: ${first.reason}`);

  const authenticatorRun = (authenticator: typeof cold) => async (n: number) => {
    for (let i = 0; i < n; i++) {
      if ((await authenticator.verify(token)).subject !== "alice") throw new Error("wrong subject");
    }
  };
  const raw: Throughput = {
    measure: "JWT RS256: raw crypto.verify (baseline)",
    unit: "verifies/CPU s",
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        if (!verify("sha256", signingInput, publicKey, signature)) throw new Error("raw verify failed");
      }
    },
  };
  const coldMeasure: Throughput = {
    measure: "JWT authenticator, token cache off (cold)",
    unit: "verifies/CPU s",
    run: authenticatorRun(cold),
  };
  const missMeasure: Throughput = {
    measure: `JWT authenticator, cache on, every call a miss (${missCycle} tokens)`,
    unit: "verifies/CPU s",
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        const token = distinct[next++ % missCycle] as string;
        if (!(await missing.verify(token)).subject.startsWith("user-")) throw new Error("wrong subject");
      }
    },
  };
  const warmMeasure: Throughput = {
    measure: "JWT authenticator, token cache warm",
    unit: "verifies/CPU s",
    run: authenticatorRun(warm),
  };
  const runtimeMeasure: Throughput = {
    measure: "authorizer runtime decision, JWT route, warm",
    unit: "decisions/CPU s",
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        if (!(await decide(request)).allow) throw new Error("the authorizer runtime refused the token");
      }
    },
  };
  const measures = [raw, coldMeasure, missMeasure, warmMeasure, runtimeMeasure];
  const results = await measureThroughput(measures, quick);
  const rawOps = results.get(raw)?.opsPerSecond ?? Number.NaN;
  return measures.map((m) => {
    const result = results.get(m) ?? { opsPerSecond: Number.NaN, samples: [] };
    const ratio = result.opsPerSecond / rawOps;
    const targeted = m === coldMeasure || m === missMeasure;
    return row(m.measure, round(result.opsPerSecond, 0), m.unit, {
      ratioToRaw: ratio,
      samples: result.samples,
      ...(targeted ? { target: `≥ ${COLD_TARGET_RATIO}x raw`, pass: ratio >= COLD_TARGET_RATIO } : {}),
    });
  });
}

async function apiKeyRows({ client, tables }: TestStore, quick: boolean): Promise<AuthorizerRow[]> {
  const keyRequests = quick ? 2 : KEY_REQUESTS;
  const missSamples = quick ? 1 : MISS_SAMPLES;
  const missWarmup = quick ? 0 : MISS_WARMUP;
  const tableName = tables.ApiKeysTable;
  if (!tableName) throw new Error("the test store has no ApiKeysTable");
  const store = apiKeyStore({ client, tableName });
  const { key } = await store.create({ owner: "bench", plan: "free" });
  const authenticatorOptions = { store, ...apiKeysConfig({ cacheSeconds: 10, cacheEntries: 1000 }) };
  const check = async (authenticate: (key: string) => Promise<{ owner: string }>) => {
    if ((await authenticate(key)).owner !== "bench") throw new Error("the API key resolved to another owner");
  };

  // Reads per request: one fresh authenticator, keyRequests sequential requests.
  const counted = createApiKeyAuthenticator(authenticatorOptions);
  const before = store.reads;
  await check(counted);
  const firstReads = store.reads - before;
  for (let i = 1; i < keyRequests; i++) await check(counted);
  const totalReads = store.reads - before;
  const hitReads = totalReads - firstReads;

  // Throughput with a warm cache: a fresh authenticator, primed, so its entry is young (cacheSeconds).
  const warm = createApiKeyAuthenticator(authenticatorOptions);
  await check(warm);
  const readsBeforeWarm = store.reads;
  const warmMeasure: Throughput = {
    measure: "API key checks, cache warm",
    unit: "checks/CPU s",
    run: async (n) => {
      for (let i = 0; i < n; i++) await check(warm);
    },
  };
  const warmResult = (await measureThroughput([warmMeasure], quick)).get(warmMeasure);
  const warmReads = store.reads - readsBeforeWarm;
  if (warmReads > 0) console.warn(`authorizer: ${warmReads} DynamoDB read(s) during the warm-cache timing`);

  // Cache-miss latency: a fresh authenticator per sample, so each call reads the table once.
  const missMs: number[] = [];
  for (let i = 0; i < missWarmup + missSamples; i++) {
    const fresh = createApiKeyAuthenticator(authenticatorOptions);
    const t0 = performance.now();
    await check(fresh);
    if (i >= missWarmup) missMs.push(performance.now() - t0);
  }

  return [
    row(`API key: reads per request (${keyRequests} requests)`, round(totalReads / keyRequests, 4), "reads"),
    row("API key: reads on the first request (miss)", firstReads, "reads", {
      target: "≤ 1",
      pass: firstReads <= 1,
    }),
    row("API key: reads per request on hits", round(hitReads / (keyRequests - 1), 4), "reads", {
      target: "0",
      pass: hitReads === 0,
    }),
    row(warmMeasure.measure, round(warmResult?.opsPerSecond ?? Number.NaN, 0), warmMeasure.unit, {
      samples: warmResult?.samples ?? [],
    }),
    row(
      `API key: cache miss latency, median of ${missSamples} (p90 ${round(percentile(missMs, 90), 2)})`,
      round(median(missMs), 2),
      "ms",
      { samples: missMs.map((v) => round(v, 2)) },
    ),
  ];
}

async function randomKeyRows({ client, tables }: TestStore, quick: boolean): Promise<AuthorizerRow[]> {
  // Quick: still past the miss budget (unknownKeys.perIp, 20 by default), so the bound is checked.
  const randomKeys = quick ? 30 : RANDOM_KEYS;
  const tableName = tables.ApiKeysTable;
  if (!tableName) throw new Error("the test store has no ApiKeysTable");
  const store = apiKeyStore({ client, tableName });
  // A real key with its last checksum character changed: refused on its text.
  const issued = issueApiKey();
  const badChecksum = (key: string) => `${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}`;
  const ghk = Array.from({ length: randomKeys }, () => badChecksum(issueApiKey()));
  const gh = Array.from({ length: randomKeys }, () => `gh_${randomBytes(32).toString("base64url")}`);
  const accepting = apiKeysConfig({ legacyKeys: "accept" });

  /** DynamoDB reads for `keys` from one source IP, every one of them refused. */
  const readsFor = async (keys: string[], config: ReturnType<typeof apiKeysConfig>) => {
    const authenticate = createApiKeyAuthenticator({ store, ...config });
    const before = store.reads;
    for (const key of keys) {
      const admitted = await authenticate(key, "198.51.100.1").then(
        () => true,
        () => false,
      );
      if (admitted) throw new Error(`a random key was admitted: ${key}`);
    }
    return store.reads - before;
  };
  const ghkReads = await readsFor(ghk, apiKeysConfig());
  const refusedReads = await readsFor(gh, apiKeysConfig({ legacyKeys: "refuse" }));
  const acceptedReads = await readsFor(gh, accepting);

  const refuse = createApiKeyAuthenticator({ store, ...apiKeysConfig() });
  const wrong = badChecksum(issued);
  const refusal: Throughput = {
    measure: "API key refusals, ghk_ key with a wrong checksum",
    unit: "checks/CPU s",
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        if (
          await refuse(wrong).then(
            () => true,
            () => false,
          )
        )
          throw new Error("a bad checksum was admitted");
      }
    },
  };
  const refusalResult = (await measureThroughput([refusal], quick)).get(refusal);

  const n = randomKeys.toLocaleString("en");
  const budget = accepting.unknownKeys.perIp;
  return [
    row(`API key: reads for ${n} random ghk_ keys (wrong checksum)`, ghkReads, "reads", {
      target: "0",
      pass: ghkReads === 0,
    }),
    row(`API key: reads for ${n} random gh_ keys, legacyKeys refuse`, refusedReads, "reads", {
      target: "0",
      pass: refusedReads === 0,
    }),
    row(`API key: reads for ${n} unknown gh_ keys from one IP, legacyKeys accept`, acceptedReads, "reads", {
      target: `≤ ${budget} (unknownKeys.perIp)`,
      pass: acceptedReads <= budget,
    }),
    row(refusal.measure, round(refusalResult?.opsPerSecond ?? Number.NaN, 0), refusal.unit, {
      samples: refusalResult?.samples ?? [],
    }),
  ];
}
