import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { loadGateway } from "#shared/config/gateway.ts";
import type { HttpResult } from "#shared/http.ts";
import { openApiDocument } from "#shared/openapi/document.ts";
import { documentHandler } from "#shared/openapi/serve.ts";
import definition from "../../gateway.config.ts";
import { httpEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

// biome-ignore lint/suspicious/noExplicitAny: the test walks a plain JSON document
type Json = Record<string, any>;
const info = { title: "gatehouse", version: "1.2.3" };

function documentFor(stage: string): Json {
  return openApiDocument(loadGateway(definition, stage), info) as Json;
}

/** Every operation as [method, path, operation]. */
function operations(document: Json): [string, string, Json][] {
  return Object.entries<Json>(document.paths).flatMap(([path, item]) =>
    Object.entries<Json>(item).map(([method, op]) => [method, path, op] as [string, string, Json]),
  );
}

const operationOf = (document: Json, method: string, path: string): Json => {
  const op = document.paths[path]?.[method];
  assert.ok(op, `${method} ${path} is in the document`);
  return op;
};

describe("OpenAPI document from the gateway config", () => {
  it("is a valid OpenAPI 3.1 document for every stage (@seriousme/openapi-schema-validator)", async () => {
    for (const stage of ["local", "prod"]) {
      const validator = new Validator();
      const result = await validator.validate(documentFor(stage));
      assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
      assert.equal(validator.version, "3.1");
    }
    // The validator does check: a response without its description is refused.
    const broken = documentFor("local");
    delete broken.paths["/health"].get.responses["2XX"].description;
    assert.equal((await new Validator().validate(broken)).valid, false);
  });

  it("lists exactly the config's routes: one operation per key, ANY as every method, no preflight", () => {
    // Prepare: the keys as written in gateway.config.ts (the loaded config adds OPTIONS preflights).
    const declared = Object.keys(definition({ stage: "local" }).routes).sort();
    const loaded = loadGateway(definition, "local");
    assert.ok(
      Object.keys(loaded.routes).some((key) => !declared.includes(key)),
      "a preflight was added",
    );
    // Act
    const document = openApiDocument(loaded, info) as Json;
    // Assess
    const listed = [
      ...new Set(operations(document).map(([, , op]) => op["x-gatehouse-route"] as string)),
    ].sort();
    assert.deepEqual(listed, declared);
    const echo = document.paths["/v1/echo/{rest}"] as Json;
    assert.deepEqual(Object.keys(echo).sort(), ["delete", "get", "head", "patch", "post", "put"]);
    for (const [method, path, op] of operations(document)) {
      if (op["x-gatehouse-route"].startsWith("ANY ")) continue;
      const [declaredMethod, declaredPath] = op["x-gatehouse-route"].split(" ");
      assert.equal(method, declaredMethod.toLowerCase());
      assert.equal(path, declaredPath.replace("+}", "}"));
    }
  });

  it("states each route's security: bearer JWT or API key with its scopes, none when public", () => {
    const document = documentFor("local");
    assert.deepEqual(operationOf(document, "post", "/admin/keys").security, [
      { bearerAuth: ["gatehouse:admin"] },
    ]);
    assert.deepEqual(operationOf(document, "post", "/rooms/{room}/messages").security, [
      { apiKey: ["chat:write"] },
    ]);
    assert.deepEqual(operationOf(document, "get", "/v1/users").security, [{ apiKey: [] }]);
    assert.deepEqual(operationOf(document, "get", "/health").security, []);
    assert.deepEqual(document.components.securitySchemes.bearerAuth, {
      type: "http",
      scheme: "bearer",
      bearerFormat: "JWT",
      description: "A JWT from https://127.0.0.1:3003.",
    });
    assert.deepEqual(
      { ...document.components.securitySchemes.apiKey, description: undefined },
      { type: "apiKey", in: "header", name: "x-api-key", description: undefined },
    );
  });

  it("lists every status the gateway answers on a proxied route with a body, with its headers", () => {
    const document = documentFor("local");
    const op = operationOf(document, "post", "/v1/orders");
    assert.deepEqual(Object.keys(op.responses).sort(), [
      "2XX",
      "400",
      "401",
      "403",
      "413",
      "415",
      "429",
      "500",
      "502",
      "503",
      "504",
      "default",
    ]);
    assert.deepEqual(op.responses["429"], { $ref: "#/components/responses/TooManyRequests" });
    const tooMany = document.components.responses.TooManyRequests;
    assert.deepEqual(Object.keys(tooMany.headers).sort(), [
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
      "Retry-After",
    ]);
    assert.deepEqual(Object.keys(tooMany.content), ["application/problem+json"]);
    assert.deepEqual(tooMany.content["application/problem+json"].schema, {
      $ref: "#/components/schemas/Problem",
    });
    // The authorizer's refusals are API Gateway's own bodies, a function's are problems.
    assert.deepEqual(Object.keys(document.components.responses.Unauthorized.content).sort(), [
      "application/json",
      "application/problem+json",
    ]);
    // The request body: the route's own schema and size; the upstream's answer is of unknown shape.
    const config = loadGateway(definition, "local");
    assert.deepEqual(
      op.requestBody.content["application/json"].schema,
      config.routes["POST /v1/orders"]?.body?.schema,
    );
    assert.equal(op.requestBody.required, true);
    assert.equal(op.requestBody["x-gatehouse-max-bytes"], 16_384);
    assert.deepEqual(op.responses["2XX"].content, { "*/*": { schema: {} } });
    assert.deepEqual(Object.keys(op.responses["2XX"].headers).sort(), [
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
      "X-Request-Id",
    ]);
  });

  it("answers only its own statuses on a public system route, and takes no body there", () => {
    const op = operationOf(documentFor("local"), "get", "/health");
    assert.deepEqual(Object.keys(op.responses).sort(), ["2XX", "500", "default"]);
    assert.deepEqual(Object.keys(op.responses.default.content), ["application/problem+json"]);
    assert.equal(op.requestBody, undefined);
  });

  it("marks a deprecated route, with Deprecation, Sunset and Link on every answer", () => {
    const op = operationOf(documentFor("local"), "get", "/v0/users/{id}");
    assert.equal(op.deprecated, true);
    for (const status of ["2XX", "429", "502"]) {
      const headers = Object.keys(op.responses[status].headers);
      for (const name of ["Deprecation", "Sunset", "Link"])
        assert.ok(headers.includes(name), `${status} ${name}`);
    }
  });

  it("writes a greedy parameter as one path parameter marked greedy", () => {
    const op = operationOf(documentFor("local"), "get", "/v1/echo/{rest}");
    assert.equal(op.parameters.length, 1);
    assert.deepEqual(
      { ...op.parameters[0], description: undefined },
      {
        name: "rest",
        in: "path",
        required: true,
        schema: { type: "string" },
        description: undefined,
        "x-gatehouse-greedy": true,
      },
    );
    // Any bytes: every media type, no schema.
    assert.deepEqual(operationOf(documentFor("local"), "post", "/v1/echo/{rest}").requestBody.content, {
      "*/*": { schema: {} },
    });
  });
});

describe("GET /openapi.json handler", () => {
  const invoke = (headers: Record<string, string> = {}) =>
    documentHandler(documentFor("local"))(
      httpEvent({ method: "GET", routeKey: "GET /openapi.json", path: "/openapi.json", headers }),
      lambdaContext(),
    ) as Promise<HttpResult>;

  it("answers the document, public and cacheable, with a strong ETag", async () => {
    const response = await invoke();
    assert.equal(response.statusCode, 200);
    assert.deepEqual(JSON.parse(String(response.body)), documentFor("local"));
    assert.equal(response.headers["cache-control"], "public, max-age=300");
    assert.match(String(response.headers.etag), /^"[A-Za-z0-9_-]{43}"$/);
  });

  it("answers 304 with no body to a matching If-None-Match, weak or strong, and 200 to another", async () => {
    const { etag } = (await invoke()).headers;
    for (const tag of [String(etag), `W/${etag}`, `"other", ${etag}`]) {
      const response = await invoke({ "if-none-match": tag });
      assert.equal(response.statusCode, 304, tag);
      assert.equal(response.body, undefined);
      assert.equal(response.headers.etag, etag);
    }
    assert.equal((await invoke({ "if-none-match": '"other"' })).statusCode, 200);
  });
});
