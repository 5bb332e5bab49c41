import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";

export const ROOT = join(import.meta.dirname, "..", "..");
/** The `serverless` command (osls), run on the same Node as the tests. */
export const SERVERLESS_BIN = createRequire(import.meta.url).resolve("serverless/bin/serverless.js");

const run = promisify(execFile);

// biome-ignore lint/suspicious/noExplicitAny: the resolved service is free-form YAML
export type ResolvedService = Record<string, any>;

const printed = new Map<string, Promise<ResolvedService>>();

/** serverless.yml as the framework resolves it for a stage (variables, params), via `serverless print`. */
export function resolvedService(stage = "local"): Promise<ResolvedService> {
  let result = printed.get(stage);
  if (!result) {
    result = run(process.execPath, [SERVERLESS_BIN, "print", "--stage", stage, "--format", "json"], {
      cwd: ROOT,
      env: { ...process.env, SLS_TELEMETRY_DISABLED: "1" },
      maxBuffer: 16 * 1024 * 1024,
    }).then(({ stdout }) => JSON.parse(stdout.slice(stdout.indexOf("{"))) as ResolvedService);
    printed.set(stage, result);
  }
  return result;
}

/** `serverless <args>` in the project folder (or `cwd`); resolves with its output whatever the exit code. */
export async function serverless(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = ROOT,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [SERVERLESS_BIN, ...args], {
      cwd,
      env: { ...process.env, SLS_TELEMETRY_DISABLED: "1", ...env },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof failed.code === "number" ? failed.code : 1,
      stdout: failed.stdout ?? "",
      stderr: failed.stderr ?? "",
    };
  }
}

/**
 * The environment a function's bundle is imported with in the bundle tests: what serverless.yml sets
 * for stage "test", and nothing of the caller's (no AWS profile, no NODE_OPTIONS). Stage "test"
 * declares no external issuers, so loading an authorizer never reaches out to a JWKS.
 */
export const BUNDLE_ENV = {
  PATH: process.env.PATH,
  GATEHOUSE_STAGE: "test",
  CONNECTIONS_TABLE: "gatehouse-test-connections",
  API_KEYS_TABLE: "gatehouse-test-api-keys",
  USAGE_TABLE: "gatehouse-test-usage",
  CACHE_TABLE: "gatehouse-test-cache",
  ROOM_MEMBERS_TABLE: "gatehouse-test-room-members",
  MESSAGES_TABLE: "gatehouse-test-messages",
  GATEHOUSE_WS_ENDPOINT: "https://example.execute-api.us-east-1.amazonaws.com/test",
  GATEHOUSE_FUNCTION_PREFIX: "gatehouse-test-",
  AWS_REGION: "us-east-1",
  POWERTOOLS_LOG_LEVEL: "ERROR",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};
