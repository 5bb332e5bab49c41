import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type ApiKeyStore, apiKeyStore, createApiKeyAuthenticator } from "#shared/auth/api-keys.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import type { HttpEvent, HttpResult } from "#shared/http.ts";
import definition from "../../gateway.config.ts";
import { apiKeysConfig } from "../support/api-keys.ts";
import { startTestStore, type TestStore } from "../support/dynamo.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

type AdminModule = typeof import("../../handlers/http/admin-keys.ts");
const bodyOf = (result: HttpResult) => JSON.parse(String(result.body)) as Record<string, unknown>;

describe("API-key admin endpoints against dynalite", () => {
  let store: TestStore;
  let keys: ApiKeyStore;
  let admin: (event: HttpEvent) => Promise<HttpResult>;
  /** The same endpoints for a gateway config without `limits`. */
  let adminWithoutLimits: (event: HttpEvent) => Promise<HttpResult>;
  const declared = Object.keys(loadGateway(definition, "test").limits?.plans ?? {});

  before(async () => {
    store = await startTestStore();
    keys = apiKeyStore({ client: store.client, tableName: store.tables.ApiKeysTable as string });
    const saved = { stage: process.env.GATEHOUSE_STAGE, table: process.env.API_KEYS_TABLE };
    process.env.GATEHOUSE_STAGE = "test"; // read when the module loads, as on a cold start
    process.env.API_KEYS_TABLE = store.tables.ApiKeysTable;
    try {
      const { createAdminKeysHandler } = (await import("../../handlers/http/admin-keys.ts")) as AdminModule;
      const gateway = loadGateway(definition, "test");
      const handler = createAdminKeysHandler({ keys, gateway });
      admin = (event) => handler(event, lambdaContext());
      const withoutLimits = createAdminKeysHandler({ keys, gateway: { ...gateway, limits: undefined } });
      adminWithoutLimits = (event) => withoutLimits(event, lambdaContext());
    } finally {
      for (const [name, value] of [
        ["GATEHOUSE_STAGE", saved.stage],
        ["API_KEYS_TABLE", saved.table],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
  after(() => store.stop());

  const createEvent = (body: unknown, contentType = "application/json") => {
    const event = loadEvent<HttpEvent>("adminKeys.json");
    event.body = typeof body === "string" ? body : JSON.stringify(body);
    event.headers["content-type"] = contentType;
    return event;
  };
  const keyEvent = (
    routeKey: "DELETE /admin/keys/{keyId}" | "POST /admin/keys/{keyId}/rotate",
    keyId: string,
  ) => {
    const event = loadEvent<HttpEvent>("adminKeys.list.json");
    event.routeKey = routeKey;
    event.pathParameters = { keyId };
    return event;
  };

  it("creates a key: 201, the key shown once, stored only as a hash, and it authenticates", async () => {
    const result = await admin(
      createEvent({ owner: "billing", plan: "pro", scopes: ["chat:write"], expiresInDays: 30 }),
    );
    assert.equal(result.statusCode, 201);
    const body = bodyOf(result);
    assert.match(String(body.key), /^ghk_[0-9A-Za-z]{49}$/);
    assert.equal(body.keyHash, undefined);
    assert.equal(result.headers.location, `/admin/keys/${body.keyId}`);
    const record = await keys.get(String(body.keyId));
    assert.notEqual(record.keyHash, body.key);
    assert.ok(record.expiresAt && record.expiresAt > Date.now() / 1000 + 29 * 86_400);

    const authenticate = createApiKeyAuthenticator({
      store: keys,
      ...apiKeysConfig({ cacheSeconds: 0, cacheEntries: 0 }),
    });
    assert.equal((await authenticate(String(body.key))).owner, "billing");
  });

  it("lists keys without their hashes", async () => {
    const result = await admin(loadEvent<HttpEvent>("adminKeys.list.json"));
    assert.equal(result.statusCode, 200);
    const listed = bodyOf(result).keys as Record<string, unknown>[];
    assert.ok(listed.length >= 1);
    for (const key of listed) {
      assert.equal(key.keyHash, undefined);
      assert.equal(key.key, undefined);
    }
  });

  it("revokes and rotates; an unknown key id is a 404", async () => {
    const created = bodyOf(await admin(createEvent({ owner: "search", plan: "free" })));
    const rotated = await admin(keyEvent("POST /admin/keys/{keyId}/rotate", String(created.keyId)));
    assert.equal(rotated.statusCode, 201);
    const next = bodyOf(rotated);
    assert.equal(next.replaces, created.keyId);
    assert.equal((await keys.get(String(created.keyId))).status, "revoked");

    const revoked = await admin(keyEvent("DELETE /admin/keys/{keyId}", String(next.keyId)));
    assert.equal(revoked.statusCode, 200);
    assert.equal(bodyOf(revoked).status, "revoked");

    const missing = await admin(keyEvent("DELETE /admin/keys/{keyId}", "key_nope"));
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.headers["content-type"], "application/problem+json");
  });

  it("refuses bad input with a 4XX problem naming the fields, and writes nothing", async () => {
    const before = (await keys.list()).length;
    const invalid = await admin(
      createEvent({ owner: "", plan: "Pro Plan", scopes: ["two words"], extra: 1 }),
    );
    assert.equal(invalid.statusCode, 400);
    const fields = (bodyOf(invalid).errors as { field: string }[]).map((error) => error.field).sort();
    assert.deepEqual(fields, ["extra", "owner", "plan", "scopes.0"]);
    assert.equal((await admin(createEvent("{not json"))).statusCode, 400);
    assert.equal((await admin(createEvent({ owner: "x", plan: "free" }, "text/plain"))).statusCode, 415);
    assert.equal((await keys.list()).length, before);
  });

  it("refuses a plan the config does not declare (constructor, gold): 400 naming plan and listing the declared plans; nothing written", async () => {
    // Prepare
    const before = (await keys.list()).length;

    // Act
    const results = await Promise.all(
      ["constructor", "gold"].map((plan) => admin(createEvent({ owner: "x", plan }))),
    );

    // Assess
    for (const [index, result] of results.entries()) {
      const plan = ["constructor", "gold"][index];
      assert.equal(result.statusCode, 400);
      assert.equal(result.headers["content-type"], "application/problem+json");
      const errors = bodyOf(result).errors as { field: string; message: string }[];
      assert.deepEqual(
        errors.map((error) => error.field),
        ["plan"],
      );
      assert.match(errors[0]?.message ?? "", new RegExp(`^plan "${plan}" is not declared`));
      assert.ok(errors[0]?.message.endsWith(`(limits.plans: ${declared.join(", ")})`), errors[0]?.message);
    }
    assert.deepEqual(declared, ["free", "tiny", "pro", "default"]);
    assert.equal((await keys.list()).length, before);
  });

  it("takes any plan name when the config has no limits", async () => {
    const result = await adminWithoutLimits(createEvent({ owner: "x", plan: "constructor" }));
    assert.equal(result.statusCode, 201);
    assert.equal(bodyOf(result).plan, "constructor");
  });

  it("refuses a caller without the admin scope (403), whatever the authorizer let through", async () => {
    const event = createEvent({ owner: "x", plan: "free" });
    (
      event.requestContext as unknown as { authorizer: { lambda: Record<string, string> } }
    ).authorizer.lambda.scopes = "chat:write";
    const result = await admin(event);
    assert.equal(result.statusCode, 403);
  });
});
