import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

const ROOT = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

/**
 * The drift guard of the committed import: gateway.config.ts without its inventory wiring, in a copy
 * inside the project (so `#shared` resolves and biome formats as it does here), run through
 * `npm run openapi:import` on the sample spec, gives back exactly the committed module and config.
 */
describe("npm run openapi:import on the sample spec", () => {
  let dir: string;
  let output: { stdout: string; stderr: string };
  const committedConfig = readFileSync(join(ROOT, "gateway.config.ts"), "utf8");

  /** The command the README and docs/openapi.md show, against the copy of the config. */
  const importInventory = () =>
    run(
      process.execPath,
      [
        "--import",
        "tsx",
        "scripts/openapi-import.ts",
        "examples/openapi/inventory.yaml",
        "--upstream",
        "inventory",
        "--config",
        join(dir, "gateway.config.ts"),
      ],
      { cwd: ROOT },
    );

  before(async () => {
    // Prepare: the config as it was before the import (its import line, comment and spread removed).
    dir = mkdtempSync(join(ROOT, "tests", ".openapi-import-"));
    const unwired = committedConfig
      .split("\n")
      .filter((line) => !/inventoryRoutes|Imported from inventory's OpenAPI document/.test(line))
      .join("\n");
    assert.equal(committedConfig.split("\n").length - unwired.split("\n").length, 3, "three lines unwired");
    writeFileSync(join(dir, "gateway.config.ts"), unwired);
    // Act
    output = await importInventory();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reproduces the committed module gateway/imported/inventory.ts byte for byte", () => {
    assert.equal(
      readFileSync(join(dir, "gateway", "imported", "inventory.ts"), "utf8"),
      readFileSync(join(ROOT, "gateway", "imported", "inventory.ts"), "utf8"),
    );
  });

  it("wires the module into the config as committed", () => {
    assert.equal(readFileSync(join(dir, "gateway.config.ts"), "utf8"), committedConfig);
  });

  it("prints the routes it added and lists what it could not map", () => {
    assert.match(output.stdout, /^4 route\(s\) from inventory\.yaml/);
    assert.match(
      output.stdout,
      /Not mapped:\n(.*\n)* {2}- DELETE \/inventory\/items\/\{itemId\}: left out — .*http basic/,
    );
    assert.match(output.stdout, /query parameter limit — passed on unchecked/);
    assert.match(output.stdout, /The config loads for stage local\.\n$/);
  });

  it("run again, rewrites the module only and reports no conflict with its own routes", async () => {
    const again = await importInventory();
    assert.doesNotMatch(again.stdout, /Conflicts/);
    assert.doesNotMatch(again.stdout, /imports the module/);
    assert.equal(readFileSync(join(dir, "gateway.config.ts"), "utf8"), committedConfig);
  });
});
