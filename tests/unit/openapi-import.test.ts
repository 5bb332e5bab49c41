import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Ajv } from "ajv";
import { parse } from "yaml";
import { importOpenApi, OpenApiImportError } from "#shared/openapi/import.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const sample = () => parse(readFileSync(join(ROOT, "examples", "openapi", "inventory.yaml"), "utf8"));

/** A minimal spec with one operation, for one mapping at a time. */
function specWith(operation: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    openapi: "3.1.0",
    info: { title: "t", version: "1" },
    paths: { "/things/{id}": { post: { responses: { "200": { description: "ok" } }, ...operation } } },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer" },
        oauth: { type: "oauth2", flows: {} },
        oidc: { type: "openIdConnect", openIdConnectUrl: "https://idp.example.com" },
        headerKey: { type: "apiKey", in: "header", name: "X-Token" },
        queryKey: { type: "apiKey", in: "query", name: "key" },
        cookieKey: { type: "apiKey", in: "cookie", name: "key" },
        basic: { type: "http", scheme: "basic" },
        mtls: { type: "mutualTLS" },
      },
    },
    ...extra,
  };
}
const imported = (spec: unknown, existing?: Set<string>) =>
  importOpenApi(spec, { upstream: "things", ...(existing ? { existing } : {}) });

describe("OpenAPI import", () => {
  it("maps the sample spec: one proxy route per operation it can express, and lists the rest", () => {
    const result = imported(sample());
    assert.deepEqual(Object.keys(result.routes), [
      "GET /inventory/items",
      "POST /inventory/items",
      "GET /inventory/items/{itemId}",
      "PUT /inventory/items/{itemId}/stock",
    ]);
    assert.deepEqual(result.routes["GET /inventory/items/{itemId}"], {
      auth: { apiKey: { scopes: [] } },
      limit: {},
      proxy: { upstream: "things", path: "/inventory/items/{itemId}" },
    });
    assert.deepEqual(result.routes["PUT /inventory/items/{itemId}/stock"]?.auth, { jwt: { scopes: [] } });
    assert.ok(
      result.unmapped.some((line) =>
        /^DELETE \/inventory\/items\/\{itemId\}: left out — .*http basic/.test(line),
      ),
      result.unmapped.join("\n"),
    );
    assert.ok(result.unmapped.some((line) => line.includes("query parameter limit")));
    assert.ok(result.unmapped.some((line) => line.includes('format "date-time" at /discontinuedAt')));
    assert.deepEqual(result.info, {
      title: "Inventory API",
      version: "1.0.0",
      server: "https://inventory.example.internal",
    });
  });

  it("turns the 3.0 schema dialect into JSON Schema the gateway's validator applies", () => {
    const body = imported(sample()).routes["POST /inventory/items"]?.body;
    assert.ok(body?.schema);
    assert.deepEqual(body.contentTypes, ["application/json"]);
    const properties = body.schema.properties as Record<string, unknown>;
    assert.deepEqual(properties.price, { type: "number", exclusiveMinimum: 0 });
    assert.deepEqual(properties.discontinuedAt, { type: ["string", "null"] });
    assert.deepEqual(properties.sku, {
      type: "string",
      pattern: "^[A-Z]{3}-[0-9]{4}$",
      examples: ["ABC-1234"],
    });
    // What the gateway's ajv (same options as shared/middleware/request-body.ts) makes of it.
    const validate = new Ajv({ allErrors: true, strict: false }).compile(body.schema);
    const good = { sku: "ABC-1234", name: "Gear", price: 1, discontinuedAt: null };
    assert.equal(validate(good), true);
    assert.equal(validate({ ...good, price: 0 }), false, "exclusiveMinimum: 0 refuses 0");
    assert.equal(validate({ ...good, extra: 1 }), false);
  });

  it("maps bearer, oauth2 and openIdConnect to jwt with scopes, and a header API key to apiKey", () => {
    for (const [scheme, scopes] of [
      ["bearer", []],
      ["oauth", ["things:write"]],
      ["oidc", ["openid"]],
    ] as const) {
      const result = imported(specWith({ security: [{ [scheme]: scopes }] }));
      assert.deepEqual(result.routes["POST /things/{id}"]?.auth, { jwt: { scopes } }, scheme);
    }
    const keyed = imported(specWith({ security: [{ headerKey: ["admin"] }] }));
    assert.deepEqual(keyed.routes["POST /things/{id}"]?.auth, { apiKey: { scopes: ["admin"] } });
    assert.ok(keyed.unmapped.some((line) => line.includes("API key header X-Token becomes x-api-key")));
  });

  it("makes a route without security (or with optional security) public and unlimited, and says so", () => {
    for (const security of [[], [{}], [{ bearer: [] }, {}]]) {
      const result = imported(specWith({ security }));
      assert.deepEqual(result.routes["POST /things/{id}"], {
        auth: "public",
        proxy: { upstream: "things", path: "/things/{id}" },
      });
      assert.ok(result.unmapped.some((line) => line.includes("public, so not limited")));
    }
  });

  it("leaves out, and lists, every operation whose credentials the gateway cannot check", () => {
    for (const [security, why] of [
      [[{ queryKey: [] }], /API key in the query/],
      [[{ cookieKey: [] }], /API key in the cookie/],
      [[{ basic: [] }], /http basic/],
      [[{ mtls: [] }], /mutualTLS/],
      [[{ bearer: [] }, { headerKey: [] }], /alternatives \(bearer or headerKey\)/],
      [[{ bearer: [], headerKey: [] }], /several schemes at once/],
      [[{ missing: [] }], /not in components.securitySchemes/],
    ] as const) {
      const result = imported(specWith({ security }));
      assert.deepEqual(result.routes, {}, JSON.stringify(security));
      assert.equal(result.unmapped.length, 1);
      assert.match(result.unmapped[0] ?? "", why);
      assert.match(result.unmapped[0] ?? "", /^POST \/things\/\{id\}: left out — /);
    }
  });

  it("lists route keys the config already has as conflicts, and leaves them out", () => {
    const result = imported(specWith({ security: [] }), new Set(["POST /things/{id}"]));
    assert.deepEqual(result.routes, {});
    assert.deepEqual(result.conflicts, ["POST /things/{id}"]);
  });

  it("lists paths, callbacks, webhooks and bodies it cannot map", () => {
    const spec = specWith(
      {
        security: [],
        callbacks: { done: {} },
        requestBody: {
          content: {
            "application/json": { schema: { type: "object" } },
            "multipart/form-data": { schema: { type: "object" } },
          },
        },
      },
      { webhooks: { restocked: {} } },
    );
    (spec.paths as Record<string, unknown>)["/files/{name}.json"] = {
      get: { responses: { "200": { description: "ok" } } },
    };
    const result = imported(spec);
    const lines = result.unmapped.join("\n");
    assert.match(lines, /webhooks \(restocked\): not mapped/);
    assert.match(lines, /POST \/things\/\{id\}: callbacks \(done\) not mapped/);
    assert.match(
      lines,
      /multipart\/form-data body left out — a route with a JSON Schema takes JSON bodies only/,
    );
    assert.match(lines, /body optional in the spec, required by the gateway/);
    assert.match(lines, /GET \/files\/\{name\}\.json: left out — the path segment "\{name\}\.json"/);
    assert.deepEqual(result.routes["POST /things/{id}"]?.body?.contentTypes, ["application/json"]);
  });

  it("inlines local $refs, cuts a recursive one to {} and lists it", () => {
    const spec = specWith({
      security: [],
      requestBody: {
        required: true,
        content: { "application/json": { schema: { $ref: "#/components/schemas/Node" } } },
      },
    });
    (spec.components as Record<string, unknown>).schemas = {
      Node: {
        type: "object",
        properties: {
          name: { type: "string" },
          children: { type: "array", items: { $ref: "#/components/schemas/Node" } },
        },
      },
    };
    const result = imported(spec);
    assert.deepEqual(result.routes["POST /things/{id}"]?.body?.schema, {
      type: "object",
      properties: { name: { type: "string" }, children: { type: "array", items: {} } },
    });
    assert.ok(result.unmapped.some((line) => line.includes("recursive schema #/components/schemas/Node")));
  });

  it("does not require in a request body a property the spec marks readOnly", () => {
    const result = imported(
      specWith({
        security: [],
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: {
                type: "object",
                required: ["id", "name"],
                properties: { id: { type: "string", readOnly: true }, name: { type: "string" } },
              },
            },
          },
        },
      }),
    );
    assert.deepEqual(result.routes["POST /things/{id}"]?.body?.schema?.required, ["name"]);
  });

  it("refuses what is not OpenAPI 3.0/3.1, and a $ref to another file, naming the problem", () => {
    assert.throws(() => imported({ swagger: "2.0" }), OpenApiImportError);
    const remote = specWith({
      security: [],
      requestBody: { content: { "application/json": { schema: { $ref: "other.yaml#/Thing" } } } },
    });
    assert.throws(() => imported(remote), /\$ref other\.yaml#\/Thing points outside the file; bundle/);
  });
});
