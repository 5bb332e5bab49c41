/** Shared bits of the bench harness: what a case receives, statistics, table printing, bench keys. */
import { Bench } from "tinybench";
import { loadGateway } from "#shared/config/gateway.ts";
import gatewayDefinition from "../gateway.config.ts";
import { devToken } from "../plugins/dev-issuer.mjs";
import type { LocalStack } from "../tests/support/local-stack.ts";
import { ROOT } from "../tests/support/serverless.ts";

/** What `bench/run.ts` hands to every case. */
export interface BenchContext {
  /** Repository root (absolute). */
  root: string;
  /** Samples per measurement: at least 10, or 1 with `--quick`. */
  runs: number;
  /** A temporary directory owned by this run, removed at the end; cases make subfolders in it. */
  tmpDir: string;
  /** `--quick`: a smoke run that proves the case runs: the same measures, the smallest workload. */
  quick: boolean;
}

/**
 * One column of a printed table. Numbers are right-aligned (with `decimals` fixed if given), text
 * left-aligned; `null` is a blank cell that leaves a number column a number column.
 */
export interface Column<R> {
  header: string;
  value: (row: R) => string | number | null;
  decimals?: number;
}

/**
 * The p-th percentile (0..100) by linear interpolation between closest ranks (the common
 * "type 7" definition, as in numpy and spreadsheets). Throws on an empty list.
 */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const last = sorted.length - 1;
  const rank = (Math.min(Math.max(p, 0), 100) / 100) * last;
  const lower = sorted[Math.floor(rank)];
  const upper = sorted[Math.ceil(rank)];
  if (lower === undefined || upper === undefined) throw new Error("percentile of an empty list");
  return lower + (upper - lower) * (rank - Math.floor(rank));
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Rounds to a fixed number of decimals, as a number (for JSON and tables). */
export function round(value: number, decimals = 1): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

/** An aligned plain-text table, one line per row, under a header and a rule. */
export function formatTable<R>(rows: readonly R[], columns: readonly Column<R>[]): string {
  const values = rows.map((row) => columns.map((column) => column.value(row)));
  const numeric = columns.map(
    (_, i) =>
      values.some((line) => typeof line[i] === "number") &&
      values.every((line) => typeof line[i] === "number" || line[i] === null),
  );
  const cells = values.map((line) =>
    line.map((value, i) => {
      const decimals = columns[i]?.decimals;
      if (value === null) return "";
      return typeof value === "number" && decimals !== undefined ? value.toFixed(decimals) : String(value);
    }),
  );
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((line) => line[i]?.length ?? 0)),
  );
  const render = (line: readonly string[]) =>
    line
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [
    render(columns.map((column) => column.header)),
    widths.map((width) => "-".repeat(width)).join("  "),
    ...cells.map(render),
  ].join("\n");
}

/** Several tables, each under its heading (for a case that prints more than one). */
export function formatSections(sections: readonly { heading: string; table: string }[]): string {
  return sections.map(({ heading, table }) => `${heading}\n\n${table}`).join("\n\n");
}

/**
 * A fresh API key of its own for a case that calls the local stack (`POST /admin/keys` with an admin
 * token from the stack's dev issuer), so no case relies on the demo key's plan or what is left of its
 * quota. `plan` must be one gateway.config.ts declares; the admin scope is the config's own.
 */
export async function createBenchKey(
  stack: Pick<LocalStack, "httpUrl" | "ports">,
  { owner, plan, scopes = [] }: { owner: string; plan: string; scopes?: string[] },
): Promise<string> {
  const config = loadGateway(gatewayDefinition, "local");
  if (!config.limits?.plans[plan]) throw new Error(`bench: gateway.config.ts declares no plan "${plan}"`);
  const token = await devToken(ROOT, {
    port: stack.ports.issuer,
    sub: "bench",
    scope: config.auth.adminScope,
  });
  const response = await fetch(`${stack.httpUrl}/admin/keys`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ owner, plan, scopes }),
  });
  const body = (await response.json()) as { key?: string };
  if (response.status !== 201 || typeof body.key !== "string")
    throw new Error(`bench: POST /admin/keys answered ${response.status} ${JSON.stringify(body)}`);
  return body.key;
}

/** What `timeCalls` measured: each call's wall time, and the run's. */
export interface TimedCalls {
  /** Each call's wall time, ms (tinybench's samples, sorted). */
  latenciesMs: number[];
  /** The process's CPU (user + system, all threads) over the run, per call, µs. */
  cpuUs: number;
  /** Wall time of the whole run, ms. */
  wallMs: number;
}

/**
 * Times `iterations` calls of `call` with tinybench (no warm-up of its own: the case warms up), at
 * most `concurrency` in flight. Each call gets a lane (0 … concurrency - 1) that no other call in
 * flight holds, so a lane can stand for a subject or a container that serves one request at a time.
 * A call that throws fails the run.
 */
export async function timeCalls(
  name: string,
  { iterations, concurrency = 1 }: { iterations: number; concurrency?: number },
  call: (lane: number) => Promise<unknown>,
): Promise<TimedCalls> {
  const free = Array.from({ length: concurrency }, (_, lane) => concurrency - 1 - lane);
  let cpu0 = process.cpuUsage();
  let t0 = 0;
  let cpu = cpu0;
  let wallMs = 0;
  const bench = new Bench({
    iterations,
    time: 0,
    warmup: false,
    retainSamples: true,
    throws: true,
    ...(concurrency > 1 ? { concurrency: "task" as const, threshold: concurrency } : {}),
  });
  bench.add(
    name,
    async () => {
      const lane = free.pop();
      if (lane === undefined) throw new Error(`${name}: more than ${concurrency} calls in flight`);
      try {
        await call(lane);
      } finally {
        free.push(lane);
      }
    },
    {
      beforeAll() {
        (globalThis as { gc?: () => void }).gc?.();
        cpu0 = process.cpuUsage();
        t0 = performance.now();
      },
      afterAll() {
        wallMs = performance.now() - t0;
        cpu = process.cpuUsage(cpu0);
      },
    },
  );
  try {
    await bench.run();
  } catch (error) {
    // Concurrent calls' failures come as one AggregateError: the first says what went wrong.
    throw error instanceof AggregateError && error.errors[0] instanceof Error ? error.errors[0] : error;
  }
  const result = bench.tasks[0]?.result;
  if (result?.state !== "completed") throw new Error(`${name}: tinybench ended ${result?.state}`);
  const latenciesMs = [...(result.latency.samples ?? [])];
  if (latenciesMs.length !== iterations)
    throw new Error(`${name}: tinybench ran ${latenciesMs.length} calls, not ${iterations}`);
  return { latenciesMs, cpuUs: (cpu.user + cpu.system) / iterations, wallMs };
}
