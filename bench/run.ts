/**
 * `npm run bench`: runs every bench case, prints a table per case and writes all rows to
 * bench/results/latest.json (git-ignored). `npm run bench -- gatewayChain authorizer` runs only the
 * cases named (by key). `BENCH_RUNS` sets the samples per measurement
 * (default 15, at least 10). `--quick` is a smoke run, to prove every case runs, not to time it: one
 * sample per measurement (`runs` is 1) and the smallest workload each case supports. Exits non-zero
 * if any build or measured process fails.
 *
 * A case is a module under bench/cases exporting an async function (BenchContext) => rows and the
 * columns to print them with (or a result and a function that formats it, for a case that prints
 * several tables); add it to `cases` below.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { authorizer, authorizerColumns } from "./cases/authorizer.ts";
import { cache, formatCache } from "./cases/cache.ts";
import { coldStart, formatColdStart } from "./cases/cold-start.ts";
import { fanout, fanoutColumns } from "./cases/fanout.ts";
import {
  gatewayBodies,
  gatewayBodiesColumns,
  gatewayChain,
  gatewayChainColumns,
} from "./cases/gateway-chain.ts";
import { limiter, limiterColumns } from "./cases/limiter.ts";
import { localStack, localStackColumns } from "./cases/local-stack.ts";
import { type BenchContext, type Column, formatTable } from "./lib.ts";

const DEFAULT_RUNS = 15;
const MIN_RUNS = 10;

/** One case, with its result's type erased once it is printed. */
interface Case {
  key: string;
  title: string;
  run: (ctx: BenchContext) => Promise<unknown>;
}

/** A case whose result is printed by its own `format` (several tables, e.g.); the result goes to the JSON. */
function defineReport<T>(
  key: string,
  title: string,
  measure: (ctx: BenchContext) => Promise<T>,
  format: (result: T) => string,
): Case {
  return {
    key,
    title,
    run: async (ctx) => {
      const result = await measure(ctx);
      console.log(`\n${title}\n\n${format(result)}\n`);
      return result;
    },
  };
}

/** A case printed as one table of its rows. */
function defineCase<R>(
  key: string,
  title: string,
  measure: (ctx: BenchContext) => Promise<R[]>,
  columns: Column<R>[],
): Case {
  return defineReport(key, title, measure, (rows) => formatTable(rows, columns));
}

const cases: Case[] = [
  defineReport(
    "coldStart",
    "Cold start: bundle size and import time per function, beside health and the DynamoDB floor",
    coldStart,
    formatColdStart,
  ),
  defineCase(
    "localStack",
    "Local stack: `npm start` from spawn to ready (build included)",
    localStack,
    localStackColumns,
  ),
  defineCase(
    "authorizer",
    "Authorizer: JWT verifications/s against raw crypto.verify, DynamoDB reads per API-key request",
    authorizer,
    authorizerColumns,
  ),
  defineCase(
    "gatewayChain",
    "Gateway chain: CPU per request in-process (chain, bare handler, same work without Middy), latency through the local stack",
    gatewayChain,
    gatewayChainColumns,
  ),
  defineCase(
    "gatewayBodies",
    "Gateway bodies: CPU per request and Lambda answer size by how a body travels (pass an upstream's coding, decode it, compress at two levels), beside identity",
    gatewayBodies,
    gatewayBodiesColumns,
  ),
  defineCase(
    "limiter",
    "Limiter: check latency and throughput against dynalite, DynamoDB calls per request (counted), cost per million requests",
    limiter,
    limiterColumns,
  ),
  defineReport(
    "cache",
    "Response cache: a hit per tier over the uncached route, upstream calls per 1,000 requests at 90 % hits, DynamoDB calls per request, cost per million beside the REST API's cache",
    cache,
    formatCache,
  ),
  defineCase(
    "fanout",
    "WebSocket fan-out: one message to N real connections through the local stack, beside fanOut called in the bench; deliveries checked, stack process memory",
    fanout,
    fanoutColumns,
  ),
];

function runsFromEnv(): number {
  const raw = process.env.BENCH_RUNS;
  if (raw === undefined || raw === "") return DEFAULT_RUNS;
  const runs = Number(raw);
  if (!Number.isInteger(runs) || runs < 1)
    throw new Error(`BENCH_RUNS must be a positive integer, got "${raw}"`);
  if (runs < MIN_RUNS) console.warn(`BENCH_RUNS=${runs} is below the minimum; using ${MIN_RUNS}`);
  return Math.max(runs, MIN_RUNS);
}

async function main(): Promise<void> {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..");
  const args = process.argv.slice(2);
  const flags = args.filter((arg) => arg.startsWith("--"));
  const badFlags = flags.filter((flag) => flag !== "--quick");
  if (badFlags.length > 0)
    throw new Error(`unknown option ${badFlags.join(", ")}; the only option is --quick`);
  const quick = flags.includes("--quick");
  const runs = quick ? 1 : runsFromEnv();
  console.log(
    `Gatehouse bench: Node ${process.version} (${process.platform}-${process.arch}), ${quick ? "quick: one sample per measurement, smallest workloads (a smoke run, not timings)" : `${runs} runs per bundle, one process at a time`}`,
  );
  const wanted = args.filter((arg) => !arg.startsWith("--"));
  const unknown = wanted.filter((key) => !cases.some((c) => c.key === key));
  if (unknown.length > 0) {
    throw new Error(
      `unknown case ${unknown.join(", ")}; the cases are ${cases.map((c) => c.key).join(", ")}`,
    );
  }
  const selected = wanted.length > 0 ? cases.filter((c) => wanted.includes(c.key)) : cases;
  const results: Record<string, unknown> = {};
  const tmpDir = await mkdtemp(join(tmpdir(), "gatehouse-bench-"));
  try {
    for (const c of selected) results[c.key] = await c.run({ root, runs, tmpDir, quick });
  } finally {
    await rm(tmpDir, { recursive: true, force: true });
  }

  const file = join(root, "bench", "results", "latest.json");
  await mkdir(dirname(file), { recursive: true });
  const report = { node: process.version, date: new Date().toISOString(), runs, quick, cases: results };
  await writeFile(file, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`Results written to ${relative(process.cwd(), file)}`);
}

main().catch((error: unknown) => {
  console.error(`\nbench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
