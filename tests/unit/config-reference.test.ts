import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { Ajv } from "ajv";
import definition from "../../gateway.config.ts";
import { configReference, DOCS_FILE, SCHEMA_FILE } from "../../scripts/config-reference.ts";

const root = new URL("../../", import.meta.url);
const committed = (file: string) => readFile(new URL(file, root), "utf8");

describe("generated config reference", () => {
  const generated = configReference();

  for (const file of [SCHEMA_FILE, DOCS_FILE]) {
    it(`${file} matches the config schema (run npm run config:docs)`, async () => {
      assert.equal(
        await committed(file),
        generated[file],
        `${file} differs from what shared/config generates: run npm run config:docs`,
      );
    });
  }

  it("accepts the project's own config for every stage, and refuses a route with no kind", () => {
    const schema = JSON.parse(generated[SCHEMA_FILE] ?? "{}");
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    for (const stage of ["local", "test", "dev", "prod"]) {
      assert.ok(validate(definition({ stage })), `${stage}: ${JSON.stringify(validate.errors)}`);
    }
    const config = definition({ stage: "test" });
    const bare = { ...config, routes: { ...config.routes, "GET /bare": { auth: "public" } } };
    assert.equal(validate(bare), false, "a route with none of proxy, aggregate, handler");
    const mixed = {
      ...config,
      routes: { ...config.routes, "GET /mixed": { auth: "public", handler: "health", body: {} } },
    };
    assert.equal(validate(mixed), false, "a handler route with body");
  });

  it("documents every route kind and every top-level member", () => {
    const markdown = generated[DOCS_FILE] ?? "";
    const schema = JSON.parse(generated[SCHEMA_FILE] ?? "{}");
    for (const member of Object.keys(schema.properties)) {
      assert.match(markdown, new RegExp(`^## ${member}$`, "m"), member);
    }
    for (const kind of ["Proxy Route", "Aggregate Route", "Handler Route"]) {
      assert.match(markdown, new RegExp(`^## ${kind}$`, "m"), kind);
    }
  });
});
