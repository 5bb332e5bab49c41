import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { type BuildOptions, build, type Metafile } from "esbuild";
import { loadGateway } from "#shared/config/gateway.ts";
import definition from "../../gateway.config.ts";
import { BUNDLE_ENV, ROOT } from "../support/serverless.ts";

const run = promisify(execFile);
type Service = {
  provider: { stage: string; environment?: Record<string, unknown> };
  functions?: Record<string, { handler: string; environment?: Record<string, unknown> }>;
};
const { bundleOptions } = createRequire(import.meta.url)(join(ROOT, "esbuild.config.cjs")) as {
  bundleOptions: (root: string, service: () => Service) => BuildOptions;
};

// The build writes the stage's checked gateway config into each bundle (esbuild.config.cjs), in
// place of shared/config/checked.ts; these tests build with it and run what it wrote.
describe("the gateway config checked when building", () => {
  const outdir = mkdtempSync(join(tmpdir(), "gatehouse-checked-config-"));
  after(() => rmSync(outdir, { recursive: true, force: true }));

  /** Builds `entry` (relative to the project) for `service`; the bundle's path and its metafile. */
  const bundle = async (name: string, entry: string, service: Service) => {
    const result = await build({
      ...bundleOptions(ROOT, () => service),
      entryPoints: { [name]: join(ROOT, entry) },
      outdir,
      outExtension: { ".js": ".mjs" },
      metafile: true,
      logLevel: "silent",
    });
    return { file: join(outdir, `${name}.mjs`), metafile: result.metafile as Metafile };
  };

  /** Runs `gatewayAtStart(stage)` of a bundle of shared/config/checked.ts in a fresh process. */
  const atStart = async (file: string, stage: string) => {
    const probe = `const { gatewayAtStart } = await import(${JSON.stringify(file)});
try { process.stdout.write(JSON.stringify({ config: gatewayAtStart(${JSON.stringify(stage)}) })); }
catch (error) { process.stdout.write(JSON.stringify({ error: { name: error.name, message: error.message } })); }`;
    const { stdout } = await run(process.execPath, ["--input-type=module", "-e", probe], { env: BUNDLE_ENV });
    return JSON.parse(stdout) as { config?: unknown; error?: { name: string; message: string } };
  };

  it("gives a function the config loadGateway checks for the stage, and refuses to start as another stage", async () => {
    const { file } = await bundle("checked-test", "shared/config/checked.ts", {
      provider: { stage: "test", environment: { GATEHOUSE_STAGE: "test" } },
    });
    assert.deepEqual((await atStart(file, "test")).config, loadGateway(definition, "test"));
    const other = await atStart(file, "prod");
    assert.equal(other.config, undefined);
    assert.equal(other.error?.name, "GatewayConfigError");
    assert.match(
      other.error?.message ?? "",
      /config of stage test, not of stage prod; package it for its stage/,
    );
  });

  it("evaluates the config with the function's environment from serverless.yml, and restores the build's own", async () => {
    const before = process.env.GATEHOUSE_DEMO_SERVICES_URL;
    const { file } = await bundle("checked-env", "shared/config/checked.ts", {
      provider: { stage: "test", environment: { GATEHOUSE_DEMO_SERVICES_URL: "http://127.0.0.1:1" } },
      functions: {
        probe: {
          handler: "shared/config/checked.gatewayAtStart",
          // The function's own value wins over the provider's; a CloudFormation value is not known yet.
          environment: {
            GATEHOUSE_DEMO_SERVICES_URL: "http://127.0.0.1:9999",
            USAGE_TABLE: { Ref: "UsageTable" },
          },
        },
      },
    });
    const { config } = await atStart(file, "test");
    const upstreams = (config as { upstreams: Record<string, { targets: { url: string }[] }> }).upstreams;
    assert.equal(upstreams.users?.targets[0]?.url, "http://127.0.0.1:9999");
    assert.equal(process.env.GATEHOUSE_DEMO_SERVICES_URL, before, "the build's environment is as it was");
  });

  it("fails the build when functions sharing a handler file would get different configs", async () => {
    const service: Service = {
      provider: { stage: "test" },
      functions: {
        a: {
          handler: "shared/config/checked.gatewayAtStart",
          environment: { GATEHOUSE_DEMO_SERVICES_URL: "http://127.0.0.1:1" },
        },
        b: {
          handler: "shared/config/checked.gatewayAtStart",
          environment: { GATEHOUSE_DEMO_SERVICES_URL: "http://127.0.0.1:2" },
        },
      },
    };
    await assert.rejects(
      bundle("checked-shared", "shared/config/checked.ts", service),
      /different gateway configs/,
    );
  });

  it("leaves the config's schema and validation library out of the gateway's bundle", async () => {
    const { metafile } = await bundle("gateway", "handlers/http/gateway.ts", {
      provider: { stage: "test", environment: { GATEHOUSE_STAGE: "test" } },
      functions: { gateway: { handler: "handlers/http/gateway.handler" } },
    });
    const inputs = Object.keys(metafile.inputs);
    assert.ok(
      inputs.some((input) => input.endsWith("shared/config/checked.ts")),
      "the bundle gets the config",
    );
    const schema = inputs.filter((input) =>
      /node_modules\/valibot\/|shared\/config\/(parse|routes|upstreams|cache|limits|auth)\.ts$/.test(input),
    );
    assert.deepEqual(schema, []);
  });
});
