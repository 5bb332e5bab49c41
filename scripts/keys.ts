// Manages API keys in a stage's API keys table.
//   npm run keys -- create --plan <plan> [--owner <name>] [--scopes "a b"] [--tenant <t>] [--expires-in-days <n>]
//   npm run keys -- list
//   npm run keys -- revoke <keyId>
//   npm run keys -- rotate <keyId>
// Options: --stage <stage> (default local: the local stack's store on 127.0.0.1), --region <region>,
// --table <name> (default gatehouse-<stage>-api-keys, as serverless.yml names it).
// Against a deployed stage it uses your usual AWS credentials (AWS_PROFILE, environment, SSO).
import { parseArgs } from "node:util";
import { type ApiKeyRecord, apiKeyStore, undeclaredPlan } from "#shared/auth/api-keys.ts";
import { parseScopes } from "#shared/auth/scopes.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../gateway.config.ts";
import { runCli, stageDynamoClient, UsageError } from "./cli.ts";

const USAGE = `usage: npm run keys -- <create|list|revoke|rotate> [options]
  create --plan <plan> [--owner <name>] [--scopes "a b"] [--tenant <t>] [--expires-in-days <n>]
  list
  revoke <keyId>
  rotate <keyId>
options: --stage <stage> (default local)  --region <region>  --table <name>`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    stage: { type: "string", default: "local" },
    region: { type: "string" },
    table: { type: "string" },
    plan: { type: "string" },
    owner: { type: "string", default: process.env.USER ?? "cli" },
    scopes: { type: "string", default: "" },
    tenant: { type: "string" },
    "expires-in-days": { type: "string" },
  },
});
const [command, keyId] = positionals;
const stage = values.stage;
const raw = stageDynamoClient(stage, values.region);
const store = apiKeyStore({
  client: createDocumentClient(raw),
  tableName: values.table ?? `gatehouse-${stage}-api-keys`,
});

const show = (record: ApiKeyRecord) => ({
  keyId: record.keyId,
  owner: record.owner,
  plan: record.plan,
  scopes: record.scopes.join(" "),
  status: record.status,
  tenant: record.tenant ?? "",
  createdAt: record.createdAt,
  expiresAt: record.expiresAt ? new Date(record.expiresAt * 1000).toISOString() : "",
  revokedAt: record.revokedAt ?? "",
  // Keys of the old format have no `format`: rotate them before setting auth.apiKeys.legacyKeys to refuse.
  format: record.format ?? "gh_ (old)",
});

/** `--scopes "a b"` or `"a,b"`: each one RFC 6749 scope-token, or the command is refused. */
function scopesOption(text: string): string[] {
  const words = text.split(/[ ,]+/).filter(Boolean);
  const bad = words.filter((word) => parseScopes(word).length === 0);
  if (bad.length > 0)
    throw new UsageError(`not a scope (printable ASCII, no quote or backslash): ${bad.join(" ")}`);
  return parseScopes(words.join(" "));
}

async function main(): Promise<void> {
  switch (command) {
    case "create": {
      if (!values.plan) throw new UsageError("create needs --plan <plan>");
      // The plans of this stage's gateway config, as its authorizers and limits will read them.
      const problem = undeclaredPlan(loadGateway(definition, stage).limits, values.plan);
      if (problem) throw new UsageError(problem);
      const days = values["expires-in-days"] === undefined ? undefined : Number(values["expires-in-days"]);
      if (days !== undefined && !(days > 0))
        throw new UsageError("--expires-in-days takes a positive number");
      const { key, record } = await store.create({
        owner: values.owner,
        plan: values.plan,
        scopes: scopesOption(values.scopes),
        ...(values.tenant ? { tenant: values.tenant } : {}),
        ...(days ? { expiresAt: Math.floor(Date.now() / 1000) + Math.round(days * 86_400) } : {}),
      });
      console.log(`API key (shown once; only its hash is stored):\n\n  ${key}\n`);
      console.table([show(record)]);
      return;
    }
    case "list": {
      const records = await store.list();
      if (records.length === 0) console.log(`no API keys in stage ${stage}`);
      else console.table(records.map(show));
      return;
    }
    case "revoke":
    case "rotate": {
      if (!keyId) throw new UsageError(`${command} needs a key id (see: npm run keys -- list)`);
      if (command === "revoke") {
        console.table([show(await store.revoke(keyId))]);
        return;
      }
      const { key, record, revoked } = await store.rotate(keyId);
      console.log(`New API key (shown once):\n\n  ${key}\n\n${revoked.keyId} is revoked.`);
      console.table([show(record)]);
      return;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : "no command");
  }
}

runCli(main, { usage: USAGE, stage, client: raw });
