import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { Validator } from "@seriousme/openapi-schema-validator";
import pkg from "../../package.json" with { type: "json" };

const ROOT = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
const openapi = (args: string[]) =>
  run(process.execPath, ["--import", "tsx", "scripts/api-document.ts", "openapi", ...args], {
    cwd: ROOT,
    env: { ...process.env, GATEHOUSE_HTTP_PORT: "3999" },
  });

// `npm run openapi`, as the README and docs/openapi.md show it.
describe("npm run openapi", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-openapi-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("prints the local stage's valid document, with the local stack as its server", async () => {
    const { stdout } = await openapi([]);
    const document = JSON.parse(stdout);
    assert.equal((await new Validator().validate(document)).valid, true);
    assert.deepEqual(document.info.title, pkg.name);
    assert.deepEqual(document.info.version, pkg.version);
    assert.deepEqual(document.servers, [{ url: "http://127.0.0.1:3999", description: "The local stack" }]);
  });

  it("writes another stage's document to --out, with API Gateway's address as its server", async () => {
    const out = join(dir, "prod.json");
    const { stdout } = await openapi(["--stage", "prod", "--out", out]);
    assert.equal(stdout, "");
    const document = JSON.parse(readFileSync(out, "utf8"));
    assert.equal((await new Validator().validate(document)).valid, true);
    assert.equal(document.servers[0].url, "https://{apiId}.execute-api.{region}.amazonaws.com");
    assert.match(
      document.components.securitySchemes.bearerAuth.description,
      /Cognito user pool us-east-1_ExampLe12/,
    );
  });
});
