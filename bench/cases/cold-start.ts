/**
 * Cold start, per Lambda function in serverless.yml: bundle size and the time of importing the bundle
 * in a fresh Node process (wall and CPU, up to the first idle tick, so work started at import counts),
 * plain and as under X-Ray (`AWS_EXECUTION_ENV` set: the tracer loads). Beside two floors measured in
 * the same run, round-robin: `health` and a bundle holding only the DynamoDB document client made at
 * module scope, built with the deploy's own esbuild options. Each function is built as `npm run
 * package` builds it for stage prod: with that stage's checked gateway config, and an authorizer with
 * its issuers' JWKS shipped beside it. Prints each bundle's largest packages.
 */
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { type BuildOptions, build, type Metafile } from "esbuild";
import { fetchJwksToShip, SHIPPED_JWKS_FILE } from "#shared/auth/shipped-jwks.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../../gateway.config.ts";
import { type BenchContext, type Column, formatTable, median, round } from "../lib.ts";

const run = promisify(execFile);
const HEALTH = "health";
/** The stage measured: what `npm run package` packages and a production deploy runs. */
const STAGE = "prod";
const FLOOR = "(DynamoDB floor)";
const FLOOR_SOURCE = `import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
const client = DynamoDBDocumentClient.from(new DynamoDBClient({}));
export const handler = async () => client.config.region;`;
const TOP_INPUTS = 5;

export interface ColdStartRow {
  function: string;
  kb: number;
  ms: number;
  cpuMs: number;
  xrayMs: number;
  /** Median import over health's, and over the DynamoDB floor's (each in the same mode). */
  xHealth: number;
  xFloor: number;
  xrayXFloor: number;
  /** The largest packages (or project files) by bytes in the output, KB. */
  top: [string, number][];
}

const columns: Column<ColdStartRow>[] = [
  { header: "function", value: (r) => r.function },
  { header: "KB", value: (r) => r.kb, decimals: 1 },
  { header: "import ms", value: (r) => r.ms, decimals: 1 },
  { header: "cpu ms", value: (r) => r.cpuMs, decimals: 1 },
  { header: "× health", value: (r) => r.xHealth, decimals: 2 },
  { header: "× DynamoDB", value: (r) => r.xFloor, decimals: 2 },
  { header: "X-Ray ms", value: (r) => r.xrayMs, decimals: 1 },
  { header: "X-Ray × DynamoDB", value: (r) => r.xrayXFloor, decimals: 2 },
];

export const formatColdStart = (rows: ColdStartRow[]): string =>
  `${formatTable(rows, columns)}\n\nLargest inputs (KB in the bundle):\n${rows
    .map((r) => `  ${r.function}: ${r.top.map(([name, kb]) => `${name} ${kb}`).join(", ")}`)
    .join("\n")}`;

/** The child's whole environment (nothing inherited); handlers read config at import. */
const CHILD_ENV = {
  GATEHOUSE_STAGE: STAGE,
  ...Object.fromEntries(
    ["CONNECTIONS", "API_KEYS", "USAGE", "CACHE", "ROOM_MEMBERS", "MESSAGES"].map((t) => [
      `${t}_TABLE`,
      "bench",
    ]),
  ),
  GATEHOUSE_WS_ENDPOINT: "https://example.execute-api.us-east-1.amazonaws.com/bench",
  GATEHOUSE_FUNCTION_PREFIX: "gatehouse-test-",
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "x",
  AWS_SECRET_ACCESS_KEY: "x",
  POWERTOOLS_LOG_LEVEL: "ERROR",
};

const CHILD_SCRIPT = `
import { pathToFileURL } from "node:url";
const [bundle, exportName] = process.argv.slice(1);
const c0 = process.cpuUsage(), t0 = performance.now();
const mod = await import(pathToFileURL(bundle).href);
await new Promise((resolve) => setImmediate(resolve));
const ms = performance.now() - t0, { user, system } = process.cpuUsage(c0);
if (typeof mod[exportName] !== "function") throw new Error(bundle + " exports no function " + exportName);
process.stdout.write(JSON.stringify({ ms, cpuMs: (user + system) / 1000 }));`;

interface Bundle {
  name: string;
  file: string;
  exportName: string;
  bytes: number;
  top: [string, number][];
}
type Sample = { ms: number; cpuMs: number };

export async function coldStart(ctx: BenchContext): Promise<ColdStartRow[]> {
  const { bundleOptions } = createRequire(import.meta.url)(join(ctx.root, "esbuild.config.cjs")) as {
    bundleOptions: (root: string, service: () => Service) => BuildOptions;
  };
  const service = await resolvedService(ctx.root);
  // NODE_OPTIONS as serverless.yml sets it for the stage (params.nodeOptions: source maps or not).
  const env = { ...CHILD_ENV, NODE_OPTIONS: String(service.provider.environment?.NODE_OPTIONS ?? "") };
  const outDir = join(ctx.tmpDir, "cold-start");
  const targets = [
    {
      name: FLOOR,
      stdin: { contents: FLOOR_SOURCE, resolveDir: ctx.root, loader: "ts" as const },
      exportName: "handler",
    },
    ...lambdaFunctions(ctx.root, service),
  ];
  const bundles: Bundle[] = [];
  for (const [i, { name, exportName, ...entry }] of targets.entries()) {
    const outdir = join(outDir, String(i));
    const { metafile } = await build({
      // As serverless-esbuild builds them, with the stage's checked gateway config.
      ...bundleOptions(ctx.root, () => service),
      ...entry,
      metafile: true,
      outdir,
      outExtension: { ".js": ".mjs" },
    });
    // A package specifier resolved to a browser build (the SDK's node code itself imports some
    // `*.browser.js` helpers by relative path; those are not a wrong resolution).
    const browser = Object.values(metafile.inputs)
      .flatMap((input) => input.imports)
      .filter((i) => i.original && !i.original.startsWith(".") && /(^|[/.-])browser([/.-]|$)/.test(i.path))
      .map((i) => i.path);
    if (browser.length > 0) console.warn(`WARNING: ${name} bundles browser builds: ${browser.join(", ")}`);
    // esbuild names inputs relative to the working directory; stdin is `<stdin>`.
    const from = "stdin" in entry ? "<stdin>" : relative(process.cwd(), entry.entryPoints[0] as string);
    bundles.push({ name, exportName, ...loadedAtImport(metafile, from) });
    if (
      "entryPoints" in entry &&
      relative(ctx.root, entry.entryPoints[0] as string).startsWith("authorizers/")
    ) {
      await shipJwks(outdir);
    }
  }

  // Round-robin, one process at a time, so drift in machine load is shared by every bundle.
  const samples = new Map(bundles.map((b) => [b, { plain: [] as Sample[], xray: [] as Sample[] }]));
  for (let i = 0; i < (ctx.quick ? 1 : ctx.runs); i++) {
    for (const b of bundles) {
      samples.get(b)?.plain.push(await importOnce(b, env));
      samples.get(b)?.xray.push(await importOnce(b, { ...env, AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x" }));
    }
  }
  const med = (b: Bundle | undefined, mode: "plain" | "xray", key: keyof Sample = "ms") =>
    median((b && samples.get(b)?.[mode].map((s) => s[key])) ?? [Number.NaN]);
  const floor = bundles.find((b) => b.name === FLOOR);
  const health = bundles.find((b) => b.name === HEALTH);
  return bundles.map((b) => ({
    function: b.name,
    kb: round(b.bytes / 1024),
    ms: round(med(b, "plain")),
    cpuMs: round(med(b, "plain", "cpuMs")),
    xrayMs: round(med(b, "xray")),
    xHealth: round(med(b, "plain") / med(health, "plain"), 2),
    xFloor: round(med(b, "plain") / med(floor, "plain"), 2),
    xrayXFloor: round(med(b, "xray") / med(floor, "xray"), 2),
    top: b.top,
  }));
}

/**
 * The entry's output and the chunks it imports statically (what a cold start reads; chunks imported
 * dynamically load on first use): the entry file, total bytes, and the largest inputs, a package under
 * node_modules counted as one.
 */
function loadedAtImport(metafile: Metafile, from: string): Pick<Bundle, "file" | "bytes" | "top"> {
  const outputs = metafile.outputs;
  // The output built from the function's own file: a dynamic import's target (the authorizers'
  // API-key store, say) is an entry point too.
  const entry = Object.keys(outputs).find((path) => outputs[path]?.entryPoint === from);
  const loaded = new Set<string>();
  const visit = (path: string) => {
    if (loaded.has(path)) return;
    loaded.add(path);
    for (const i of outputs[path]?.imports ?? [])
      if (i.kind === "import-statement" && !i.external) visit(i.path);
  };
  if (entry === undefined) throw new Error("esbuild wrote no entry output");
  visit(entry);
  const sizes = new Map<string, number>();
  let bytes = 0;
  for (const path of loaded) {
    bytes += outputs[path]?.bytes ?? 0;
    for (const [input, { bytesInOutput }] of Object.entries(outputs[path]?.inputs ?? {})) {
      const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input;
      sizes.set(pkg, (sizes.get(pkg) ?? 0) + bytesInOutput);
    }
  }
  const top = [...sizes].sort((a, b) => b[1] - a[1]).slice(0, TOP_INPUTS);
  return { file: resolve(entry), bytes, top: top.map(([name, size]) => [name, round(size / 1024)]) };
}

type Service = {
  provider: { stage: string; environment?: Record<string, unknown> };
  functions?: Record<string, { handler: string; environment?: Record<string, unknown> }>;
};

/** serverless.yml as resolved for the stage measured, whose config the bundles hold. */
async function resolvedService(root: string): Promise<Service> {
  const { stdout } = await run("npx", ["serverless", "print", "--stage", STAGE, "--format", "json"], {
    cwd: root,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Service;
}

/**
 * What plugins/shipped-jwks.mjs puts beside an authorizer's bundle when packaging can reach the
 * issuers, so the authorizer starts without fetching, as deployed. The example Cognito pool cannot be
 * reached here: each issuer's JWKS is one freshly generated RSA key, through the same
 * `fetchJwksToShip` the plugin runs.
 */
async function shipJwks(outdir: string) {
  const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "jwk" });
  const jwks = { keys: [{ ...key, kid: "bench", alg: "RS256", use: "sig" }] };
  const { file } = await fetchJwksToShip(loadGateway(definition, STAGE).auth, STAGE, {
    wrapFetcher: () => ({ fetch: async () => new TextEncoder().encode(JSON.stringify(jwks)).buffer }),
  });
  if (!file) throw new Error("no JWKS to ship");
  await writeFile(join(outdir, SHIPPED_JWKS_FILE), JSON.stringify(file));
}

/** Every function in serverless.yml, with its entry file. */
function lambdaFunctions(root: string, { functions = {} }: Service) {
  return Object.entries(functions).map(([name, { handler }]) => {
    const base = handler.slice(0, handler.lastIndexOf("."));
    const entry = [".ts", ".mjs", ".js"].map((ext) => join(root, base + ext)).find((f) => existsSync(f));
    if (!entry) throw new Error(`${name}: no entry file for handler ${handler}`);
    return { name, entryPoints: [entry], exportName: handler.slice(handler.lastIndexOf(".") + 1) };
  });
}

/** Imports the bundle once in a fresh Node process (the Node running the bench). */
async function importOnce(b: Bundle, env: Record<string, string>): Promise<Sample> {
  try {
    const args = ["--input-type=module", "-e", CHILD_SCRIPT, b.file, b.exportName];
    const { stdout } = await run(process.execPath, args, { env, timeout: 30_000 });
    return JSON.parse(stdout) as Sample;
  } catch (error) {
    // Node echoes the throwing source line, which in a minified bundle is most of the file.
    const { stderr = "" } = error as { stderr?: string };
    throw new Error(`importing ${b.name} (${b.file}) failed: ${stderr.slice(0, 2000)}`);
  }
}
