import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { apiKeyShape } from "#shared/auth/api-keys.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../../gateway.config.ts";
import { startTestStore, type TestStore } from "../support/dynamo.ts";
import { ROOT } from "../support/serverless.ts";

const run = promisify(execFile);

// `npm run keys` (scripts/keys.ts) as a person runs it, against a dynalite of its own: the CLI's
// `local` stage reaches the store through GATEHOUSE_DYNAMODB_PORT, and --table names the table.
describe("npm run keys -- create: only plans the gateway config declares", () => {
  let store: TestStore;
  const declared = Object.keys(loadGateway(definition, "local").limits?.plans ?? {});

  /** Runs the CLI; its exit code and everything it printed. */
  async function keysCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const table = store.tables.ApiKeysTable as string;
    try {
      const { stdout, stderr } = await run(
        process.execPath,
        ["--import", "tsx", "scripts/keys.ts", ...args, "--table", table],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            GATEHOUSE_DYNAMODB_PORT: new URL(store.endpoint).port,
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
  const storedPlans = async () => {
    const { Items = [] } = await store.client.send(
      new ScanCommand({ TableName: store.tables.ApiKeysTable as string }),
    );
    return Items.map((item) => item.plan as string);
  };

  before(async () => {
    store = await startTestStore("local");
  });
  after(() => store.stop());

  for (const plan of ["constructor", "gold"]) {
    it(`refuses --plan ${plan} (exit 2), names the declared plans, and writes nothing`, async () => {
      // Act
      const { code, stderr } = await keysCli("create", "--plan", plan, "--owner", "cli-test");

      // Assess
      assert.equal(code, 2, stderr);
      assert.ok(
        stderr.includes(
          `plan "${plan}" is not declared in the gateway config (limits.plans: ${declared.join(", ")})`,
        ),
        stderr,
      );
      assert.deepEqual(await storedPlans(), []);
    });
  }

  it("creates a key on a declared plan (--plan free) and prints it in the ghk_ format", async () => {
    // Act
    const { code, stdout, stderr } = await keysCli("create", "--plan", "free", "--owner", "cli-test");

    // Assess
    assert.equal(code, 0, stderr);
    const key = stdout.match(/ghk_[0-9A-Za-z]{49}/)?.[0] ?? "";
    assert.equal(apiKeyShape(key), "current", stdout);
    assert.deepEqual(await storedPlans(), ["free"]);
  });
});
