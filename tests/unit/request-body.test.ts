import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";
import { type BodyRules, lazyBodySchema, parsedBody, requestBody } from "#shared/middleware/request-body.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

const rules: BodyRules = {
  maxBytes: 64,
  contentTypes: ["application/json"],
  schema: {
    type: "object",
    required: ["name", "qty"],
    properties: { name: { type: "string" }, qty: { type: "integer", minimum: 1 } },
    additionalProperties: false,
  },
};
const validate = lazyBodySchema(rules.schema as Record<string, unknown>);
let seen: unknown;
const handler = httpHandler(
  async (_event, context) => {
    seen = parsedBody(context)?.json;
    return json(200, { ok: true });
  },
  { request: [requestBody(() => ({ rules, validate }))] },
);

function post(body: string | undefined, contentType = "application/json", base64 = false) {
  const event = loadEvent<APIGatewayProxyEventV2>("health.json");
  event.requestContext.http.method = "POST";
  event.headers["content-type"] = contentType;
  event.body = body;
  event.isBase64Encoded = base64;
  return handler(event, lambdaContext());
}
const problem = (body: string | undefined) =>
  JSON.parse(body ?? "{}") as { detail: string; errors?: { field: string }[] };

describe("request body steps", () => {
  it("passes a valid JSON body on, parsed", async () => {
    const result = await post(JSON.stringify({ name: "x", qty: 2 }), "application/json; charset=utf-8");
    assert.equal(result.statusCode, 200);
    assert.deepEqual(seen, { name: "x", qty: 2 });
  });

  it("413 over the size, declared or actual (base64 counted decoded)", async () => {
    assert.equal((await post("x".repeat(65))).statusCode, 413);
    const event = loadEvent<APIGatewayProxyEventV2>("health.json");
    event.headers = { "content-type": "application/json", "content-length": "100000" };
    event.body = "{}";
    assert.equal((await handler(event, lambdaContext())).statusCode, 413);
    assert.equal(
      (
        await post(
          Buffer.from(JSON.stringify({ name: "y", qty: 1 })).toString("base64"),
          "application/json",
          true,
        )
      ).statusCode,
      200,
    );
  });

  it("415 for another media type, 400 for broken JSON", async () => {
    const wrongType = await post("name=x", "application/x-www-form-urlencoded");
    assert.equal(wrongType.statusCode, 415);
    assert.match(problem(wrongType.body).detail, /send application\/json/);
    const broken = await post('{"name": ');
    assert.equal(broken.statusCode, 400);
    assert.equal(problem(broken.body).detail, "The body is not valid JSON");
  });

  it("400 naming every failing field", async () => {
    const result = await post(JSON.stringify({ qty: 0, extra: true }));
    assert.equal(result.statusCode, 400);
    const fields = (problem(result.body).errors ?? []).map((error) => error.field).sort();
    assert.deepEqual(fields, ["/", "/name", "/qty"]);
  });

  it("a route with a schema refuses a missing body", async () => {
    assert.equal((await post(undefined)).statusCode, 400);
    assert.equal((await post("")).statusCode, 400);
  });

  it("compiles a schema on its first use, once", async () => {
    const fresh = lazyBodySchema({ type: "object", required: ["name"] });
    assert.equal(fresh.compiled, undefined);
    const compiled = await fresh.load();
    assert.equal(fresh.compiled, compiled);
    assert.equal(await fresh.load(), compiled);
    assert.equal(compiled({ name: "x" }), true);
    assert.equal(compiled({}), false);
  });
});
