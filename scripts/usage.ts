// Prints metered usage from a stage's usage table (what GET /usage and GET /admin/usage answer).
//   npm run usage -- --key <keyId> [--from 2026-11-01] [--to 2026-11-30]     one API key
//   npm run usage -- --subject principal:<sub> | ip:<address>               any other subject
//   npm run usage -- --all [--from …] [--to …] [--csv]                      everyone (billing export)
// Days are UTC; --from and --to default to today. Options: --stage <stage> (default local: the local
// stack's store on 127.0.0.1), --region <region>, --table <name> (default gatehouse-<stage>-usage).
// Against a deployed stage it uses your usual AWS credentials (AWS_PROFILE, environment, SSO).
import { parseArgs } from "node:util";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { createMetering, UsageRangeError, type UsageRecord, usageCsv } from "#shared/quota/metering.ts";
import { isoDay } from "#shared/quota/windows.ts";
import { runCli, stageDynamoClient, UsageError } from "./cli.ts";

const USAGE = `usage: npm run usage -- (--key <keyId> | --subject <subject> | --all) [--from YYYY-MM-DD] [--to YYYY-MM-DD] [--csv]
options: --stage <stage> (default local)  --region <region>  --table <name>`;

const { values } = parseArgs({
  options: {
    key: { type: "string" },
    subject: { type: "string" },
    all: { type: "boolean", default: false },
    from: { type: "string" },
    to: { type: "string" },
    csv: { type: "boolean", default: false },
    stage: { type: "string", default: "local" },
    region: { type: "string" },
    table: { type: "string" },
  },
});
const stage = values.stage;
const raw = stageDynamoClient(stage, values.region);
const metering = createMetering({
  client: createDocumentClient(raw),
  tableName: values.table ?? `gatehouse-${stage}-usage`,
});

async function main(): Promise<void> {
  const today = isoDay(Date.now());
  const from = values.from ?? today;
  const to = values.to ?? today;
  const subject = values.key ? `key:${values.key}` : values.subject;
  if (!subject && !values.all)
    throw new UsageError("say whose usage: --key <keyId>, --subject <subject> or --all");
  if (subject && values.all) throw new UsageError("--all prints everyone; leave out --key and --subject");
  let records: UsageRecord[];
  try {
    records = subject ? await metering.forSubject(subject, from, to) : await metering.forRange(from, to);
  } catch (error) {
    if (error instanceof UsageRangeError) throw new UsageError(error.message);
    throw error;
  }
  records.sort(
    (a, b) =>
      a.day.localeCompare(b.day) || a.subject.localeCompare(b.subject) || a.route.localeCompare(b.route),
  );
  if (values.csv) {
    process.stdout.write(usageCsv(records));
    return;
  }
  if (records.length === 0) {
    console.log(`no usage for ${subject ?? "anyone"} from ${from} to ${to} (stage ${stage})`);
    return;
  }
  console.table(records.map(({ subject: who, ...rest }) => (subject ? rest : { subject: who, ...rest })));
  const total = (field: "requests" | "units" | "limited") => records.reduce((sum, r) => sum + r[field], 0);
  console.log(
    `total: ${total("requests")} requests, ${total("units")} units, ${total("limited")} refused by a limit`,
  );
}

runCli(main, { usage: USAGE, stage, client: raw });
