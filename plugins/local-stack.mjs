// @ts-check
// The local stack, as a Serverless Framework plugin so that it reads the same, fully resolved
// serverless.yml that `serverless deploy` reads: `serverless offline start` (what `npm start` runs)
// gets an embedded DynamoDB-compatible store (dynalite), the tables declared under `resources`,
// seed data, fake AWS credentials and a banner of ready-to-paste commands. Ctrl-C stops it all.
//
// Environment:
//   GATEHOUSE_DYNAMODB_PORT  port of the embedded store (default 8000; see custom.localStack)
//   GATEHOUSE_DATA_DIR       keep the store's data in this folder between runs (default: in memory)

import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import dynalite from "dynalite";

const HOST = "127.0.0.1";
/** CreateTable properties that dynalite does not take; on AWS they still apply. */
const AWS_ONLY_TABLE_PROPERTIES = [
  "SSESpecification",
  "PointInTimeRecoverySpecification",
  "TimeToLiveSpecification",
  "Tags",
  "StreamSpecification",
  "DeletionProtectionEnabled",
];

export default class LocalStack {
  /** @param {any} serverless @param {Record<string, unknown>} options @param {{ log: any }} utils */
  constructor(serverless, options, utils) {
    this.serverless = serverless;
    this.options = options;
    this.log = utils.log;
    /** @type {import('node:http').Server | undefined} */
    this.server = undefined;
    this.hooks = {
      "before:offline:start:init": () => this.start(),
      "before:offline:start": () => this.start(),
      "after:offline:start:init": () => this.banner(),
      "before:offline:start:end": () => this.stop(),
    };
  }

  get settings() {
    const custom = this.serverless.service.custom ?? {};
    const offline = custom["serverless-offline"] ?? {};
    const local = custom.localStack ?? {};
    return {
      dynamodbPort: Number(local.dynamodbPort ?? 8000),
      httpPort: Number(offline.httpPort ?? 3000),
      websocketPort: Number(offline.websocketPort ?? 3001),
      seedFile: local.seed ? resolve(this.serverless.serviceDir, local.seed) : undefined,
      dataDir: process.env.GATEHOUSE_DATA_DIR ? resolve(process.env.GATEHOUSE_DATA_DIR) : undefined,
      region: this.serverless.service.provider.region ?? "us-east-1",
    };
  }

  async start() {
    if (this.server) return;
    const { dynamodbPort, dataDir, region } = this.settings;

    // Local only: fake credentials so no call can reach a real account, and every SDK client in the
    // handlers (serverless-offline passes AWS_* variables through) talks to the embedded store.
    process.env.AWS_ACCESS_KEY_ID = "local";
    process.env.AWS_SECRET_ACCESS_KEY = "local";
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    process.env.AWS_REGION = region;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = `http://${HOST}:${dynamodbPort}`;

    if (dataDir) mkdirSync(dataDir, { recursive: true });
    const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, path: dataDir });
    await new Promise((done, fail) => {
      server.once("error", (/** @type {NodeJS.ErrnoException} */ error) =>
        fail(
          error.code === "EADDRINUSE"
            ? new this.serverless.classes.Error(
                `Port ${dynamodbPort} is taken: is another local stack running? Stop it, or set GATEHOUSE_DYNAMODB_PORT.`,
              )
            : error,
        ),
      );
      server.listen(dynamodbPort, HOST, () => done(undefined));
    });
    // The offline servers keep the process alive while it runs; the store alone must not keep a
    // process that failed to start from exiting.
    server.unref();
    this.server = server;

    const client = new DynamoDBClient({ region, endpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB });
    try {
      const created = await this.createTables(client);
      this.seeded = await this.seed(client, created);
    } finally {
      client.destroy();
    }
  }

  /** Creates every AWS::DynamoDB::Table of `resources` that does not exist yet; returns their logical ids. */
  async createTables(/** @type {DynamoDBClient} */ client) {
    const resources = this.serverless.service.resources?.Resources ?? {};
    const { TableNames: existing = [] } = await client.send(new ListTablesCommand({}));
    /** @type {Map<string, string>} logical id → table name, for tables created now */
    const created = new Map();
    for (const [logicalId, resource] of Object.entries(resources)) {
      if (resource?.Type !== "AWS::DynamoDB::Table") continue;
      const properties = { ...resource.Properties };
      for (const key of AWS_ONLY_TABLE_PROPERTIES) delete properties[key];
      if (existing.includes(properties.TableName)) continue;
      await client.send(new CreateTableCommand(properties));
      created.set(logicalId, properties.TableName);
    }
    this.tables = Object.values(resources)
      .filter((resource) => resource?.Type === "AWS::DynamoDB::Table")
      .map((resource) => resource.Properties.TableName);
    return created;
  }

  /** Seeds the tables created in this run (a kept data folder is not seeded twice). */
  async seed(/** @type {DynamoDBClient} */ client, /** @type {Map<string, string>} */ created) {
    const { seedFile } = this.settings;
    if (!seedFile || created.size === 0) return 0;
    /** @type {Record<string, Record<string, unknown>[]>} */
    const seed = JSON.parse(readFileSync(seedFile, "utf8"));
    const documents = DynamoDBDocumentClient.from(client);
    let count = 0;
    for (const [logicalId, items] of Object.entries(seed)) {
      if (logicalId.startsWith("$")) continue; // "$comment" and the like
      const tableName = created.get(logicalId);
      if (!tableName) continue;
      for (const item of items) {
        await documents.send(new PutCommand({ TableName: tableName, Item: item }));
        count++;
      }
    }
    return count;
  }

  banner() {
    const { httpPort, websocketPort, dynamodbPort, dataDir } = this.settings;
    const lines = [
      "",
      `Gatehouse local stack is up (stage ${this.serverless.service.provider.stage})`,
      `  HTTP API       http://${HOST}:${httpPort}`,
      `  WebSocket API  ws://${HOST}:${websocketPort}`,
      `  DynamoDB       http://${HOST}:${dynamodbPort}  (dynalite, ${dataDir ? `data kept in ${dataDir}` : "in memory"})`,
      `  Tables         ${(this.tables ?? []).join(", ")}`,
      `  Seed           ${this.seeded ?? 0} item(s) written this run`,
      "",
      "Try:",
      `  curl -i http://${HOST}:${httpPort}/health`,
      `  npm run ws -- '{"action":"ping"}' '{"action":"nope"}'`,
      "",
      "Ctrl-C stops everything.",
      "",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }

  async stop() {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise((done) => server.close(() => done(undefined)));
  }
}
