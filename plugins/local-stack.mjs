// @ts-check
// The local stack, as a Serverless Framework plugin so that it reads the same, fully resolved
// serverless.yml that `serverless deploy` reads: `serverless offline start` (what `npm start` runs)
// gets an embedded DynamoDB-compatible store (dynalite), the tables declared under `resources`,
// seed data, fake AWS credentials and a banner of ready-to-paste commands. Ctrl-C stops it all.
//
// Environment:
//   GATEHOUSE_DYNAMODB_PORT  port of the embedded store (default 8000; see custom.localStack)
//   GATEHOUSE_DATA_DIR       keep the store's data in this folder between runs (default: in memory)
//   GATEHOUSE_ISSUER_PORT    port of the development token issuer (default 3003; see custom.localStack)
//   GATEHOUSE_DEMO_PORT      port of the demo upstream services (default 3100)
//   GATEHOUSE_WEB_PORT       port of the browser chat page, which mints dev tokens (default 3004)
//   GATEHOUSE_METRICS_PORT   port of the metrics page, plots of the functions' EMF records (default 3005)

import { mkdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { resolve } from "node:path";
import { CreateTableCommand, DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import dynalite from "dynalite";
import { startChatPage } from "./chat-page.mjs";
import { startDemoServices } from "./demo-services.mjs";
import { DEV_AUDIENCE, devIssuerUrl, startDevIssuer } from "./dev-issuer.mjs";
import { createEmfSeries } from "./emf-series.mjs";
import { closeServer, HOST, listenOnLoopback } from "./loopback.mjs";
import { startMetricsPage, tapStdout } from "./metrics-page.mjs";

/**
 * The seeded demo key (scripts/seed/local.json holds its SHA-256). Fixed and public, so the README's
 * commands work on any fresh local stack; it has the `ghk_` format's checksum, like any issued key.
 */
export const DEMO_API_KEY = "ghk_localDemoKey0123456789abcdefghijklmnopqrstu25iXxg";

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
    /** @type {import('node:https').Server | undefined} */
    this.issuer = undefined;
    /** @type {import('node:http').Server | undefined} */
    this.demo = undefined;
    /** @type {import('node:http').Server | undefined} */
    this.web = undefined;
    /** @type {import('node:http').Server | undefined} */
    this.metricsPage = undefined;
    /** @type {(() => void) | undefined} stops collecting the functions' EMF lines */
    this.untapStdout = undefined;
    this.hooks = {
      "before:offline:start:init": () => this.start(),
      "before:offline:start": () => this.start(),
      "after:offline:start:init": () => this.banner(),
      "before:offline:start:end": () => this.stop(),
      "before:invoke:local:invoke": () => this.startForInvoke(),
      "after:invoke:local:invoke": () => this.stop(),
    };
  }

  get settings() {
    const custom = this.serverless.service.custom ?? {};
    const offline = custom["serverless-offline"] ?? {};
    const local = custom.localStack ?? {};
    return {
      /** @type {number} */
      dynamodbPort: Number(local.dynamodbPort ?? 8000),
      issuerPort: Number(local.issuerPort ?? 3003),
      demoPort: Number(local.demoPort ?? 3100),
      webPort: Number(local.webPort ?? 3004),
      metricsPort: Number(local.metricsPort ?? 3005),
      httpPort: Number(offline.httpPort ?? 3000),
      websocketPort: Number(offline.websocketPort ?? 3001),
      lambdaPort: Number(offline.lambdaPort ?? 3002),
      seedFile: local.seed ? resolve(this.serverless.serviceDir, local.seed) : undefined,
      dataDir: process.env.GATEHOUSE_DATA_DIR ? resolve(process.env.GATEHOUSE_DATA_DIR) : undefined,
      region: this.serverless.service.provider.region ?? "us-east-1",
    };
  }

  /** `offline start`: the store on its fixed port, tables, seed. */
  async start() {
    if (this.server) return;
    const { dynamodbPort, dataDir } = this.settings;
    try {
      this.server = await startStore({ port: dynamodbPort, dataDir });
      this.issuer = await startDevIssuer(this.serverless.serviceDir, this.settings.issuerPort);
      this.demo = await startDemoServices(this.settings.demoPort);
      // Only `offline start` serves the page: it signs tokens for any name, a local-stack-only thing.
      const { webPort, issuerPort, websocketPort, httpPort } = this.settings;
      this.web = await startChatPage({
        port: webPort,
        root: this.serverless.serviceDir,
        wsUrl: `ws://${HOST}:${websocketPort}`,
        httpUrl: `http://${HOST}:${httpPort}`,
        issuerPort,
      });
      // The functions' EMF records, from their worker threads' stdout (plugins/metrics-page.mjs).
      const series = createEmfSeries();
      this.metricsPage = await startMetricsPage({
        port: this.settings.metricsPort,
        root: this.serverless.serviceDir,
        snapshot: () => series.snapshot(Date.now()),
      });
      this.untapStdout = tapStdout((line) => series.addLine(line));
    } catch (error) {
      await this.stop();
      throw new this.serverless.classes.Error(error instanceof Error ? error.message : String(error));
    }
    this.useLocalAws(dynamodbPort);
    await this.prepareTables();
  }

  /**
   * `invoke local --stage local`: use the running local stack's store if there is one, else an
   * in-memory store of its own for the one invocation. Other stages talk to AWS as usual.
   */
  async startForInvoke() {
    if (this.serverless.service.provider.stage !== "local") return;
    const { dynamodbPort, issuerPort, demoPort } = this.settings;
    if (!(await isListening(issuerPort))) {
      this.issuer = await startDevIssuer(this.serverless.serviceDir, issuerPort);
    }
    if (!(await isListening(demoPort))) this.demo = await startDemoServices(demoPort);
    if (await isListening(dynamodbPort)) {
      this.useLocalAws(dynamodbPort);
      return;
    }
    this.server = await startStore({ port: 0 });
    this.useLocalAws(/** @type {import('node:net').AddressInfo} */ (this.server.address()).port);
    await this.prepareTables();
  }

  /** Local only: fake credentials so no call reaches a real account; SDK clients use the local store. */
  useLocalAws(/** @type {number} */ port) {
    // serverless-offline passes AWS_* variables through to the handlers.
    process.env.AWS_ACCESS_KEY_ID = "local";
    process.env.AWS_SECRET_ACCESS_KEY = "local";
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    process.env.AWS_REGION = this.settings.region;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = `http://${HOST}:${port}`;
    // The gateway's `lambda` upstreams invoke through serverless-offline's Lambda endpoint.
    process.env.AWS_ENDPOINT_URL_LAMBDA = `http://${HOST}:${this.settings.lambdaPort}`;
    // Deployed code runs on Node 24; the SDK's notice about a Node 20 development machine is noise here.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  }

  async prepareTables() {
    const client = new DynamoDBClient({ region: this.settings.region });
    try {
      const resources = this.serverless.service.resources?.Resources ?? {};
      this.tables = tableNames(resources);
      const created = await createTables(client, resources);
      const { seedFile } = this.settings;
      this.seeded = seedFile
        ? await seedTables(client, JSON.parse(readFileSync(seedFile, "utf8")), created)
        : 0;
    } finally {
      client.destroy();
    }
  }

  banner() {
    const { httpPort, websocketPort, dynamodbPort, dataDir, issuerPort, demoPort, webPort, metricsPort } =
      this.settings;
    const seedKey = DEMO_API_KEY;
    const lines = [
      "",
      `Gatehouse local stack is up (stage ${this.serverless.service.provider.stage})`,
      `  HTTP API       http://${HOST}:${httpPort}`,
      `  WebSocket API  ws://${HOST}:${websocketPort}`,
      `  DynamoDB       http://${HOST}:${dynamodbPort}  (dynalite, ${dataDir ? `data kept in ${dataDir}` : "in memory"})`,
      `  Tables         ${(this.tables ?? []).join(", ")}`,
      `  Seed           ${this.seeded ?? 0} item(s) written this run`,
      `  Token issuer   ${devIssuerUrl(issuerPort)}  (audience ${DEV_AUDIENCE}; JWKS at /.well-known/jwks.json)`,
      `  Demo API key   ${seedKey}  (plan free, scope chat:write)`,
      `  Demo services  http://${HOST}:${demoPort}  (users, orders, prices, echo, slow, flaky: the upstreams of /v1/*)`,
      `  Chat page      http://${HOST}:${webPort}  (two tabs, two names, one room)`,
      `  Metrics page   http://${HOST}:${metricsPort}  (the functions' EMF metrics, plotted per route)`,
      "",
      "Try:",
      `  curl -i http://${HOST}:${httpPort}/health`,
      `  curl -i -H 'x-api-key: ${seedKey}' http://${HOST}:${httpPort}/keys/self`,
      `  curl -i -H 'x-api-key: ${seedKey}' http://${HOST}:${httpPort}/v1/users/1`,
      `  curl -i -H "authorization: Bearer $(npm run -s token -- --sub alice --scope chat:write)" http://${HOST}:${httpPort}/me`,
      "  npm run keys -- create --plan free --owner you",
      `  npm run ws -- '{"action":"ping"}' '{"action":"nope"}'`,
      "  npm run chat -- --room lobby",
      "",
      "Ctrl-C stops everything.",
      "",
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }

  async stop() {
    const { server, issuer, demo, web, metricsPage } = this;
    this.untapStdout?.();
    this.untapStdout = undefined;
    this.metricsPage = undefined;
    this.server = undefined;
    this.issuer = undefined;
    this.demo = undefined;
    this.web = undefined;
    await Promise.all(
      [metricsPage, web, demo, issuer, server].map((running) => running && closeServer(running)),
    );
  }
}

/**
 * Starts dynalite on 127.0.0.1. `port` 0 picks a free one.
 * @param {{ port: number, dataDir?: string }} options
 * @returns {Promise<import('node:http').Server>}
 */
export async function startStore({ port, dataDir }) {
  if (dataDir) mkdirSync(dataDir, { recursive: true });
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, path: dataDir });
  return listenOnLoopback(server, port, "GATEHOUSE_DYNAMODB_PORT");
}

/** Stops a store started by `startStore`. */
export const stopStore = closeServer;

/**
 * Whether something accepts TCP connections on 127.0.0.1:`port`.
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function isListening(port) {
  return new Promise((done) => {
    const socket = connect({ host: HOST, port });
    socket.once("connect", () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

/** @param {Record<string, any>} resources CloudFormation resources, as serverless.yml declares them */
export function tableNames(resources) {
  return Object.values(resources)
    .filter((resource) => resource?.Type === "AWS::DynamoDB::Table")
    .map((resource) => String(resource.Properties.TableName));
}

/**
 * Creates every AWS::DynamoDB::Table among `resources` that does not exist yet.
 * @param {DynamoDBClient} client
 * @param {Record<string, any>} resources
 * @returns {Promise<Map<string, string>>} logical id → table name, for the tables created now
 */
export async function createTables(client, resources) {
  const { TableNames: existing = [] } = await client.send(new ListTablesCommand({}));
  const created = new Map();
  for (const [logicalId, resource] of Object.entries(resources)) {
    if (resource?.Type !== "AWS::DynamoDB::Table") continue;
    const properties = { ...resource.Properties };
    for (const key of AWS_ONLY_TABLE_PROPERTIES) delete properties[key];
    if (existing.includes(properties.TableName)) continue;
    await client.send(new CreateTableCommand(properties));
    created.set(logicalId, properties.TableName);
  }
  return created;
}

/**
 * Writes seed items into the tables created in this run (a kept data folder is not seeded twice).
 * @param {DynamoDBClient} client
 * @param {Record<string, unknown>} seed items by table logical id; keys starting with "$" are comments
 * @param {Map<string, string>} created
 */
export async function seedTables(client, seed, created) {
  const documents = DynamoDBDocumentClient.from(client);
  let count = 0;
  for (const [logicalId, items] of Object.entries(seed)) {
    const tableName = created.get(logicalId);
    if (logicalId.startsWith("$") || !tableName || !Array.isArray(items)) continue;
    for (const item of items) {
      await documents.send(new PutCommand({ TableName: tableName, Item: item }));
      count++;
    }
  }
  return count;
}
