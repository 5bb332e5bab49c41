// Purges the response cache's shared table of a stage: what DELETE /admin/cache does, done directly.
//   npm run cache -- purge --route "GET /v1/products/{id}" [--param id=42]...
//   npm run cache -- purge --path /v1/products/42
//   npm run cache -- purge --prefix /v1/products/
//   npm run cache -- purge --tag product:42
// Options: --stage <stage> (default local: the local stack's store on 127.0.0.1), --region <region>,
// --table <name> (default gatehouse-<stage>-cache, as serverless.yml names it), --config <file> (the
// gateway config module, default gateway.config.ts), --json (print the answer DELETE /admin/cache gives).
// Like `npm run keys`, it talks to the stage's table with your usual AWS credentials (AWS_PROFILE,
// environment, SSO), not to the HTTP API.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { purgeTable } from "#shared/cache/purge.ts";
import { createPurgeRecord } from "#shared/cache/purge-record.ts";
import { compilePurgeSelector, parsePurgeRequest } from "#shared/cache/purge-selector.ts";
import { createTableTier } from "#shared/cache/table.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { type GatewayDefinition, loadGateway } from "#shared/config/gateway.ts";
import { runCli, stageDynamoClient, UsageError } from "./cli.ts";

const USAGE = `usage: npm run cache -- purge <selector> [options]
selector, exactly one:
  --route "GET /v1/products/{id}" [--param id=42]...   a cached route, all of it or the entries with
                                                       these path parameters (values as decoded: a b)
  --path /v1/products/42                               the path's entries, every query and caller
  --prefix /v1/products/                               every entry whose path starts with it (/ is all)
  --tag product:42                                     the routes whose cache.tags fit the tag
options: --stage <stage> (default local)  --region <region>  --table <name>
         --config <file> (default gateway.config.ts)  --json  --help
It deletes from the stage's cache table directly, with your AWS credentials (it does not call
DELETE /admin/cache). Gateway containers that hold an entry in memory keep serving it until its TTL.`;

const OPTIONS = {
  route: { type: "string" },
  param: { type: "string", multiple: true },
  path: { type: "string" },
  prefix: { type: "string" },
  tag: { type: "string" },
  stage: { type: "string", default: "local" },
  region: { type: "string" },
  table: { type: "string" },
  config: { type: "string", default: "gateway.config.ts" },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

let args: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
try {
  args = parseArgs({ options: OPTIONS, allowPositionals: true });
} catch (error) {
  // An unknown option, or one without its value: said before anything is read or deleted.
  console.error(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
  process.exit(2);
}
const { values, positionals } = args;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const stage = values.stage;
const raw = stageDynamoClient(stage, values.region);

/** `--param id=42` → `{ id: "42" }`; the value is everything after the first `=`. */
function paramsOption(pairs: readonly string[] | undefined): Record<string, string> | undefined {
  if (!pairs) return undefined;
  const params: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at < 1) throw new UsageError(`--param takes name=value, such as --param id=42 (not ${pair})`);
    const name = pair.slice(0, at);
    if (Object.hasOwn(params, name)) throw new UsageError(`--param ${name} is given twice`);
    params[name] = pair.slice(at + 1);
  }
  return params;
}

/** A problem's field as the flag that says it: `params.id` → `--param id: `; none for the whole request. */
function flagOf(field: string): string {
  if (field === "(request)" || field.includes(",")) return "";
  if (field.startsWith("params")) return `--param${field.slice("params".length).replace(".", " ")}: `;
  return `--${field}: `;
}

async function main(): Promise<void> {
  const [command, ...extra] = positionals;
  if (command !== "purge") throw new UsageError(command ? `unknown command ${command}` : "no command");
  if (extra.length > 0) throw new UsageError(`unexpected ${extra.join(" ")}`);
  const parsed = parsePurgeRequest({
    route: values.route,
    params: paramsOption(values.param),
    path: values.path,
    prefix: values.prefix,
    tag: values.tag,
  });
  if (!parsed.ok) {
    throw new UsageError(parsed.errors.map(({ field, message }) => `${flagOf(field)}${message}`).join("\n"));
  }
  // The stage's gateway config, as its functions load it: which routes are cached, their tags.
  const { default: definition } = (await import(pathToFileURL(resolve(values.config)).href)) as {
    default: GatewayDefinition;
  };
  const gateway = loadGateway(definition, stage);
  const selection = compilePurgeSelector(gateway)(parsed.selector);
  if (!selection.ok) throw new UsageError(`${flagOf(selection.field)}${selection.message}`);
  const client = createDocumentClient(raw);
  const tableName = values.table ?? `gatehouse-${stage}-cache`;
  const report = await purgeTable(
    createTableTier({ client, tableName }),
    createPurgeRecord({ client, tableName }),
    selection,
    { lagSeconds: gateway.cache.memory.purgeCheckSeconds },
  );
  if (values.json) {
    console.log(JSON.stringify({ selector: parsed.selector, ...report }, null, 2));
    return;
  }
  if (report.everything) console.log("The prefix / purges every cached route.");
  for (const [routeKey, count] of Object.entries(report.deleted))
    console.log(`${routeKey}: ${count} deleted`);
  console.log(`total: ${report.total} deleted from the cache table of stage ${stage}`);
  console.log(report.memory);
}

runCli(main, { usage: USAGE, stage, client: raw });
