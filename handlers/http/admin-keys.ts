import * as v from "valibot";
import { type ApiKeyRecord, type ApiKeyStore, apiKeyStore, undeclaredPlan } from "#shared/auth/api-keys.ts";
import { requestIdentity } from "#shared/auth/identity.ts";
import { SCOPE_TOKEN } from "#shared/auth/scopes.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";
import type { GatewayConfig } from "#shared/config/parse.ts";
import { BadRequestError, ForbiddenError, NotFoundError, UnsupportedMediaTypeError } from "#shared/errors.ts";
import { type HttpEvent, json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";
import { routeTable } from "#shared/middleware/route-table.ts";
import { logger } from "#shared/observability/logger.ts";

/** The body of `POST /admin/keys`; `plan` must be one the config declares (see `undeclaredPlan`). */
const createKeySchema = (limits: GatewayConfig["limits"]) =>
  v.strictObject({
    owner: v.pipe(v.string(), v.trim(), v.minLength(1, "owner is required"), v.maxLength(128)),
    plan: v.pipe(
      v.string(),
      v.regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, "plan is a lower-case name such as free or pro"),
      v.rawCheck(({ dataset, addIssue }) => {
        // One message per field: a name that fails the pattern above is not looked up as well.
        const problem = dataset.typed && !dataset.issues ? undeclaredPlan(limits, dataset.value) : undefined;
        if (problem) addIssue({ message: problem });
      }),
    ),
    scopes: v.optional(v.array(v.pipe(v.string(), v.regex(SCOPE_TOKEN, "a scope is one word"))), []),
    tenant: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128))),
    expiresInDays: v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(3650))),
  });
type CreateKeySchema = ReturnType<typeof createKeySchema>;

/** A key as the admin API shows it: never the hash. */
const view = ({ keyHash: _hash, ...record }: ApiKeyRecord) => record;

function createBody(event: HttpEvent, schema: CreateKeySchema): v.InferOutput<CreateKeySchema> {
  const type = event.headers["content-type"] ?? "";
  if (!/^application\/json\b/i.test(type))
    throw new UnsupportedMediaTypeError("Send the new key as application/json");
  let body: unknown;
  try {
    body = JSON.parse(
      event.isBase64Encoded ? Buffer.from(event.body ?? "", "base64").toString() : (event.body ?? ""),
    );
  } catch {
    throw new BadRequestError("The body is not valid JSON");
  }
  const result = v.safeParse(schema, body, { abortEarly: false });
  if (!result.success) {
    const errors = result.issues.map((issue) => ({
      field: v.getDotPath(issue) ?? "(body)",
      message: issue.message,
    }));
    throw new BadRequestError(
      `Invalid key request: ${errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`,
      {
        extensions: { errors },
      },
    );
  }
  return result.output;
}

/**
 * The API-key admin endpoints, for callers holding the admin scope (checked by the authorizer and
 * again here):
 *   POST   /admin/keys                  create; the key is in this response and nowhere else
 *   GET    /admin/keys                  list (no hashes)
 *   DELETE /admin/keys/{keyId}          revoke
 *   POST   /admin/keys/{keyId}/rotate   a new key with the same owner, plan and scopes; the old one revoked
 */
export function createAdminKeysHandler({
  keys,
  gateway,
}: {
  keys: ApiKeyStore;
  /** The config: its admin scope, its routes naming `adminKeys`, and its `limits` (a new key's plan
   * must be one of its plans; any plan when there are none). */
  gateway: Pick<GatewayConfig, "auth" | "limits" | "routes">;
}) {
  const { adminScope } = gateway.auth;
  const schema = createKeySchema(gateway.limits);
  const routes = routeTable("adminKeys", gateway.routes, {
    "POST /admin/keys": async (event) => {
      const caller = requestIdentity(event);
      const input = createBody(event, schema);
      const { key, record } = await keys.create({
        owner: input.owner,
        plan: input.plan,
        scopes: input.scopes,
        ...(input.tenant ? { tenant: input.tenant } : {}),
        ...(input.expiresInDays
          ? { expiresAt: Math.floor(Date.now() / 1000) + Math.round(input.expiresInDays * 86_400) }
          : {}),
      });
      logger.info("API key created", { keyId: record.keyId, owner: record.owner, by: caller.principal });
      return json(201, { key, ...view(record) }, { location: `/admin/keys/${record.keyId}` });
    },
    "GET /admin/keys": async () => json(200, { keys: (await keys.list()).map(view) }),
    "DELETE /admin/keys/{keyId}": async (event) => {
      const keyId = pathKeyId(event);
      const revoked = await keys.revoke(keyId);
      logger.info("API key revoked", { keyId, by: requestIdentity(event).principal });
      return json(200, view(revoked));
    },
    "POST /admin/keys/{keyId}/rotate": async (event) => {
      const keyId = pathKeyId(event);
      const { key, record, revoked } = await keys.rotate(keyId);
      logger.info("API key rotated", { keyId, newKeyId: record.keyId, by: requestIdentity(event).principal });
      return json(
        201,
        { key, ...view(record), replaces: revoked.keyId },
        { location: `/admin/keys/${record.keyId}` },
      );
    },
  });
  return httpHandler(async (event, context) => {
    if (!requestIdentity(event).scopes.includes(adminScope))
      throw new ForbiddenError(`This route needs the ${adminScope} scope`);
    return routes(event, context);
  });
}

function pathKeyId(event: HttpEvent): string {
  const keyId = event.pathParameters?.keyId;
  if (!keyId) throw new NotFoundError("No key id in the path");
  return keyId;
}

const gateway = gatewayAtStart(env.stage);
export const handler = createAdminKeysHandler({
  keys: apiKeyStore({ client: createDocumentClient(), tableName: env.apiKeysTable }),
  gateway,
});
