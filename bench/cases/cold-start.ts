/**
 * Cold start, per Lambda function in serverless.yml: bundle size (raw and gzipped), whether any
 * `browser` build slipped into the bundle, and the time and peak memory of importing the bundle in a
 * fresh Node process, beside an empty handler built the same way in the same run.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import type { BuildOptions } from "esbuild";
import { build } from "esbuild";
import { type BenchContext, type Column, median, percentile, round } from "../lib.ts";

const run = promisify(execFile);

export interface ColdStartRow {
  function: string;
  /** Entry file, relative to the repository root; the baseline's is a temporary file. */
  entry: string;
  kb: number;
  gzKb: number;
  /** metafile inputs whose path names a `browser` build; should be 0. */
  browserInputs: number;
  importMsMedian: number;
  importMsP90: number;
  /** Median import time over the empty baseline's. */
  importRatio: number;
  /** Bundle size over the empty baseline's. */
  sizeRatio: number;
  peakRssMbMedian: number;
  /** Every import-time sample, in run order. */
  importMs: number[];
}

export const coldStartColumns: Column<ColdStartRow>[] = [
  { header: "function", value: (r) => r.function },
  { header: "KB", value: (r) => r.kb, decimals: 1 },
  { header: "gz KB", value: (r) => r.gzKb, decimals: 1 },
  { header: "browser inputs", value: (r) => r.browserInputs },
  { header: "import ms median", value: (r) => r.importMsMedian, decimals: 1 },
  { header: "p90", value: (r) => r.importMsP90, decimals: 1 },
  { header: "× baseline", value: (r) => r.importRatio, decimals: 2 },
  { header: "size × baseline", value: (r) => r.sizeRatio, decimals: 1 },
  { header: "peak RSS MB", value: (r) => r.peakRssMbMedian, decimals: 1 },
];

const BASELINE = "(empty baseline)";
const BASELINE_SOURCE = "export const handler = async () => ({ statusCode: 200 });\n";
const BROWSER_PATH = /(^|[/.-])browser([/.-]|$)/;
const ENTRY_EXTENSIONS = [".ts", ".mts", ".js", ".mjs"];

/**
 * The child's whole environment: nothing is inherited, so no NODE_OPTIONS, NODE_COMPILE_CACHE or
 * AWS profile of the caller's shell changes what is measured. Handlers read config at import.
 * NODE_OPTIONS is what serverless.yml sets for the deployed functions.
 */
const CHILD_ENV = {
  NODE_OPTIONS: "--enable-source-maps",
  // Stage "test" declares no external issuers, so importing the authorizer starts no JWKS fetch
  // (this machine reaches no network); the bundle is the same for every stage.
  GATEHOUSE_STAGE: "test",
  CONNECTIONS_TABLE: "bench-connections",
  API_KEYS_TABLE: "bench-api-keys",
  USAGE_TABLE: "bench-usage",
  CACHE_TABLE: "bench-cache",
  ROOM_MEMBERS_TABLE: "bench-room-members",
  MESSAGES_TABLE: "bench-messages",
  GATEHOUSE_WS_ENDPOINT: "https://example.execute-api.us-east-1.amazonaws.com/bench",
  GATEHOUSE_FUNCTION_PREFIX: "gatehouse-test-",
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "x",
  AWS_SECRET_ACCESS_KEY: "x",
  POWERTOOLS_LOG_LEVEL: "ERROR",
};

/** Runs in each fresh Node process: argv[1] is the bundle, argv[2] the handler's export name. */
const CHILD_SCRIPT = `
import { pathToFileURL } from "node:url";
const [bundle, exportName] = process.argv.slice(1);
const t0 = performance.now();
const mod = await import(pathToFileURL(bundle).href);
const ms = performance.now() - t0;
if (typeof mod[exportName] !== "function") throw new Error(bundle + " does not export a function " + exportName);
process.stdout.write(JSON.stringify({ ms, maxRssKb: process.resourceUsage().maxRSS }));
`;

interface Target {
  name: string;
  entry: string;
  exportName: string;
}

interface Bundle extends Target {
  file: string;
  bytes: number;
  gzBytes: number;
  browserInputs: string[];
}

interface Sample {
  ms: number;
  maxRssKb: number;
}

export async function coldStart(ctx: BenchContext): Promise<ColdStartRow[]> {
  const { esbuildOptions } = createRequire(import.meta.url)(join(ctx.root, "esbuild.config.cjs")) as {
    esbuildOptions: BuildOptions;
  };
  const caseDir = join(ctx.tmpDir, "cold-start");
  const baselineEntry = join(caseDir, "src", "empty-handler.ts");
  await mkdir(join(caseDir, "src"), { recursive: true });
  await writeFile(baselineEntry, BASELINE_SOURCE);

  const targets: Target[] = [
    { name: BASELINE, entry: baselineEntry, exportName: "handler" },
    ...(await lambdaFunctions(ctx.root)),
  ];
  const bundles: Bundle[] = [];
  for (const [i, target] of targets.entries()) {
    bundles.push(await bundle(ctx.root, target, esbuildOptions, join(caseDir, "out", String(i))));
  }
  for (const b of bundles) {
    if (b.browserInputs.length > 0) {
      console.warn(`WARNING: ${b.name} bundles ${b.browserInputs.length} browser input(s):`);
      for (const input of b.browserInputs) console.warn(`  ${input}`);
    }
  }

  // Round-robin over the bundles, one process at a time, so drift in machine load is shared by all.
  const samples = new Map<Bundle, Sample[]>(bundles.map((b) => [b, []]));
  for (let i = 0; i < ctx.runs; i++) {
    for (const b of bundles) samples.get(b)?.push(await importOnce(b));
  }

  const baseline = bundles[0];
  const baselineSamples = baseline && samples.get(baseline);
  if (!baseline || !baselineSamples) throw new Error("cold start: no baseline bundle");
  const baselineMs = median(baselineSamples.map((s) => s.ms));
  return bundles.map((b) => {
    const ms = (samples.get(b) ?? []).map((s) => s.ms);
    const rssKb = (samples.get(b) ?? []).map((s) => s.maxRssKb);
    return {
      function: b.name,
      entry: b.name === BASELINE ? "(temporary file)" : b.entry,
      kb: round(b.bytes / 1024),
      gzKb: round(b.gzBytes / 1024),
      browserInputs: b.browserInputs.length,
      importMsMedian: round(median(ms)),
      importMsP90: round(percentile(ms, 90)),
      importRatio: round(median(ms) / baselineMs, 2),
      sizeRatio: round(b.bytes / baseline.bytes, 2),
      peakRssMbMedian: round(median(rssKb) / 1024),
      importMs: ms.map((v) => round(v, 2)),
    };
  });
}

/** Every function in serverless.yml as resolved for prod (osls, offline), with its entry file. */
async function lambdaFunctions(root: string): Promise<Target[]> {
  const { stdout } = await run("npx", ["serverless", "print", "--stage", "prod", "--format", "json"], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  const config = JSON.parse(stdout) as { functions?: Record<string, { handler?: string }> };
  const targets: Target[] = [];
  for (const [name, fn] of Object.entries(config.functions ?? {})) {
    if (!fn.handler) {
      console.warn(`cold start: skipping ${name}, it has no handler (container image?)`);
      continue;
    }
    const dot = fn.handler.lastIndexOf(".");
    const base = fn.handler.slice(0, dot);
    const extension = ENTRY_EXTENSIONS.find((ext) => existsSync(join(root, base + ext)));
    if (dot <= 0 || !extension) throw new Error(`${name}: no entry file for handler ${fn.handler}`);
    targets.push({ name, entry: base + extension, exportName: fn.handler.slice(dot + 1) });
  }
  if (targets.length === 0) throw new Error("serverless print listed no functions");
  return targets;
}

/** Builds one entry with the deploy's esbuild options and measures the output. */
async function bundle(root: string, target: Target, options: BuildOptions, outdir: string): Promise<Bundle> {
  const result = await build({
    ...options,
    metafile: true,
    write: true,
    outdir,
    outExtension: { ".js": ".mjs" },
    entryPoints: [resolve(root, target.entry)],
  });
  if (!result.metafile) throw new Error(`${target.name}: esbuild returned no metafile`);
  const output = Object.keys(result.metafile.outputs).find((path) => path.endsWith(".mjs"));
  if (!output) throw new Error(`${target.name}: esbuild wrote no .mjs file`);
  const file = resolve(output); // metafile paths are relative to the working directory
  const code = await readFile(file);
  return {
    ...target,
    file,
    bytes: code.length,
    gzBytes: gzipSync(code, { level: 9 }).length,
    browserInputs: Object.keys(result.metafile.inputs).filter((path) => BROWSER_PATH.test(path)),
  };
}

/** Imports the bundle once in a fresh Node process (the Node running the bench). */
async function importOnce(b: Bundle): Promise<Sample> {
  let stdout: string;
  try {
    ({ stdout } = await run(
      process.execPath,
      ["--input-type=module", "-e", CHILD_SCRIPT, b.file, b.exportName],
      {
        env: CHILD_ENV,
        timeout: 30_000,
      },
    ));
  } catch (error) {
    const { code, signal, stderr } = error as { code?: unknown; signal?: string | null; stderr?: string };
    const how = signal ? `killed by ${signal}` : `exit code ${String(code)}`;
    // Node echoes the throwing source line, which in a minified bundle is most of the file.
    const lines = (stderr ?? "")
      .split("\n")
      .map((line) => (line.length > 300 ? `${line.slice(0, 300)}…` : line));
    throw new Error(`importing the ${b.name} bundle (${b.file}) failed, ${how}:\n${lines.join("\n")}`);
  }
  return JSON.parse(stdout) as Sample;
}
