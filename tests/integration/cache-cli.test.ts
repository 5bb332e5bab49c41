import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer } from "node:net";
import { after, before, beforeEach, describe, it } from "node:test";
import { promisify } from "node:util";
import { loadGateway } from "#shared/config/gateway.ts";
import cachedGateway, { ALL_LABELS, except, seedCacheTable } from "../support/cached-gateway.ts";
import { startTestStore, type TestStore } from "../support/dynamo.ts";
import { ROOT } from "../support/serverless.ts";

const run = promisify(execFile);
const CONFIG = "tests/support/cached-gateway.ts";

/** A port nothing listens on: taken from the system, then freed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// `npm run cache -- purge` (scripts/cache.ts) as a person runs it, against a dynalite of its own: the
// CLI's `local` stage reaches the store through GATEHOUSE_DYNAMODB_PORT, --table names the table and
// --config a gateway config with cached routes (gateway.config.ts has none yet).
describe("npm run cache -- purge", () => {
  let store: TestStore;
  let remaining: () => Promise<string[]>;
  const gateway = loadGateway(cachedGateway, "local");

  /** Runs the CLI; its exit code and everything it printed. */
  async function cacheCli(
    args: string[],
    { port, table = true }: { port?: number; table?: boolean } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(
        process.execPath,
        [
          "--import",
          "tsx",
          "scripts/cache.ts",
          ...args,
          ...(table ? ["--table", store.tables.CacheTable as string, "--config", CONFIG] : []),
        ],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            GATEHOUSE_DYNAMODB_PORT: String(port ?? new URL(store.endpoint).port),
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          },
          timeout: 60_000,
        },
      );
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  }

  before(async () => {
    store = await startTestStore("local");
  });
  after(() => store.stop());
  beforeEach(async () => {
    ({ remaining } = await seedCacheTable(store, gateway));
  });

  it("--help prints the usage, says it talks to the table directly, and exits 0", async () => {
    const { code, stdout } = await cacheCli(["--help"], { table: false });
    assert.equal(code, 0);
    assert.match(stdout, /^usage: npm run cache -- purge <selector> \[options\]/);
    assert.match(stdout, /deletes from the stage's cache table directly/);
    assert.match(stdout, /keep serving it until its TTL/);
  });

  it("purges by tag and prints what it deleted per route, the total and how long memory may lag", async () => {
    // Act
    const { code, stdout, stderr } = await cacheCli(["purge", "--tag", "product:42"]);

    // Assess
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^GET \/v1\/products\/\{id\}: 2 deleted$/m);
    assert.match(stdout, /^total: 2 deleted from the cache table of stage local$/m);
    assert.match(
      stdout,
      /drops its in-memory copies of these routes .* within 5 s \(cache\.memory\.purgeCheckSeconds\)/,
    );
    assert.deepEqual(await remaining(), except("42 page 1", "42 page 2"));
  });

  it("purges by route and --param, by path and by prefix; --json prints the endpoint's answer", async () => {
    const route = await cacheCli(["purge", "--route", "GET /v1/products/{id}", "--param", "id=café"]);
    assert.equal(route.code, 0, route.stderr);
    assert.deepEqual(await remaining(), except("café"));

    const path = await cacheCli(["purge", "--path", "/v1/files/alice/docs/a.txt", "--json"]);
    assert.equal(path.code, 0, path.stderr);
    const answer = JSON.parse(path.stdout) as Record<string, unknown>;
    assert.deepEqual(answer.selector, { path: "/v1/files/alice/docs/a.txt" });
    assert.deepEqual([answer.deleted, answer.total], [{ "GET /v1/files/{owner}/{rest+}": 1 }, 1]);
    assert.deepEqual(await remaining(), except("café", "alice docs"));

    const prefix = await cacheCli(["purge", "--prefix", "/v1/products/4"]);
    assert.equal(prefix.code, 0, prefix.stderr);
    assert.deepEqual(await remaining(), except("café", "alice docs", "42 page 1", "42 page 2", "43"));
  });

  it("purges everything for --prefix / and says so", async () => {
    const { code, stdout, stderr } = await cacheCli(["purge", "--prefix", "/"]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^The prefix \/ purges every cached route\.$/m);
    assert.match(stdout, /^total: 8 deleted/m);
    assert.deepEqual(await remaining(), []);
  });

  const refused: [string, string[], RegExp][] = [
    ["no command", [], /^no command\n\nusage: npm run cache/],
    ["an unknown command", ["flush"], /^unknown command flush/],
    ["an unknown option", ["purge", "--force"], /Unknown option '--force'/],
    [
      "an option without its value",
      ["purge", "--path"],
      /Option '--path( <value>)?' argument (missing|is ambiguous)/,
    ],
    ["no selector", ["purge"], /^say what to purge/],
    [
      "two selectors",
      ["purge", "--path", "/v1/products/42", "--tag", "products"],
      /exactly one of route, path, prefix or tag/,
    ],
    [
      "--param without --route",
      ["purge", "--path", "/v1/products/42", "--param", "id=42"],
      /^--param: params narrows a route/,
    ],
    [
      "--param that is not name=value",
      ["purge", "--route", "GET /v1/products/{id}", "--param", "42"],
      /^--param takes name=value/,
    ],
    [
      "a route that is not cached",
      ["purge", "--route", "GET /v1/plain"],
      /^--route: GET \/v1\/plain is not a cached route/,
    ],
    [
      "a parameter the route lacks",
      ["purge", "--route", "GET /v1/products/{id}", "--param", "sku=1"],
      /^--param sku: GET \/v1\/products\/\{id\} has no path parameter \{sku\}/,
    ],
    [
      "%zz in a path",
      ["purge", "--path", "/v1/products/%zz"],
      /^--path: the path is not valid percent-encoding/,
    ],
    ["a tag no route has", ["purge", "--tag", "nope"], /^--tag: no cached route has the tag nope/],
  ];
  for (const [what, args, message] of refused) {
    it(`refuses ${what} (exit 2) with a clear message and the usage, and deletes nothing`, async () => {
      const { code, stderr } = await cacheCli(args);
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
      assert.match(stderr, /\n\nusage: npm run cache -- purge/);
      assert.deepEqual(await remaining(), ALL_LABELS);
    });
  }

  it("says the local store is not running when nothing listens (exit 1)", async () => {
    const { code, stderr } = await cacheCli(["purge", "--tag", "products"], { port: await closedPort() });
    assert.equal(code, 1);
    assert.match(stderr, /cannot reach the local stack's store: is `npm start` running\?/);
  });
});
