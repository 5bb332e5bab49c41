import { requestIdentity } from "#shared/auth/identity.ts";
import { CachePurgeError, purgeTable } from "#shared/cache/purge.ts";
import { createPurgeRecord, type PurgeRecord } from "#shared/cache/purge-record.ts";
import {
  compilePurgeSelector,
  parsePurgeRequest,
  type SelectorProblem,
} from "#shared/cache/purge-selector.ts";
import { createTableTier, type TableTier } from "#shared/cache/table.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";
import type { GatewayConfig } from "#shared/config/parse.ts";
import {
  BadRequestError,
  ForbiddenError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  UnsupportedMediaTypeError,
} from "#shared/errors.ts";
import { type HttpEvent, json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";
import { routeTable } from "#shared/middleware/route-table.ts";
import { logger } from "#shared/observability/logger.ts";

/** The largest purge request, body or query: a selector is one short string (and a few parameters). */
export const MAX_PURGE_REQUEST_BYTES = 4_096;

/** The members a purge's query may have; `param` (`name=value`) may come more than once. */
const QUERY_MEMBERS = new Set(["route", "param", "path", "prefix", "tag"]);

const invalid = (errors: SelectorProblem[]) =>
  new BadRequestError(`Invalid purge: ${errors.map((e) => `${e.field}: ${e.message}`).join("; ")}`, {
    extensions: { errors },
  });

/** `%zz` or a lone `%` makes a query unreadable: what it means would be a guess. */
function decodeQueryText(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return undefined;
  }
}

/**
 * The purge a query asks for, as the object a JSON body would be:
 * `?path=/v1/products/42`, `?route=GET+/v1/products/{id}&param=id%3D42`, `?prefix=/v1/`, `?tag=products`.
 */
function queryRequest(raw: string): Record<string, unknown> {
  const request: Record<string, unknown> = {};
  const params: Record<string, string> = {};
  for (const part of raw.split("&")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    const name = decodeQueryText(equals === -1 ? part : part.slice(0, equals));
    const value = equals === -1 ? "" : decodeQueryText(part.slice(equals + 1));
    if (name === undefined || value === undefined)
      throw invalid([{ field: "(query)", message: "the query is not valid percent-encoding (such as %zz)" }]);
    if (!QUERY_MEMBERS.has(name))
      throw invalid([
        { field: name, message: `a purge's query takes route, param, path, prefix or tag; remove ${name}` },
      ]);
    if (name === "param") {
      const at = value.indexOf("=");
      const paramName = value.slice(0, at);
      if (at < 1) throw invalid([{ field: "param", message: "param is name=value, such as param=id%3D42" }]);
      if (Object.hasOwn(params, paramName))
        throw invalid([{ field: `params.${paramName}`, message: "a parameter is given once" }]);
      params[paramName] = value.slice(at + 1);
      request.params = params;
      continue;
    }
    if (Object.hasOwn(request, name))
      throw invalid([{ field: name, message: `${name} is given once; send one purge per request` }]);
    request[name] = value;
  }
  return request;
}

/** The purge request, from a JSON body or else the query (never both), before it is checked. */
function purgeRequest(event: HttpEvent): unknown {
  const query = event.rawQueryString ?? "";
  if (query.length > MAX_PURGE_REQUEST_BYTES)
    throw new BadRequestError(
      `The query is longer than a purge takes (${MAX_PURGE_REQUEST_BYTES} characters)`,
    );
  if (event.body == null || event.body === "") return queryRequest(query);
  if (query !== "") throw new BadRequestError("Send the purge in a JSON body or in the query, not both");
  const declared = Number(event.headers["content-length"] ?? Number.NaN);
  const raw = Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8");
  if (declared > MAX_PURGE_REQUEST_BYTES || raw.byteLength > MAX_PURGE_REQUEST_BYTES)
    throw new PayloadTooLargeError(
      `The body is larger than a purge takes (${MAX_PURGE_REQUEST_BYTES} bytes)`,
    );
  const mediaType = (event.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (mediaType !== "application/json")
    throw new UnsupportedMediaTypeError(
      `Content-Type ${mediaType || "(none)"} is not accepted here; send the purge as application/json`,
    );
  try {
    return JSON.parse(raw.toString("utf8"));
  } catch {
    throw new BadRequestError("The body is not valid JSON");
  }
}

/**
 * The cache purge, for callers holding the admin scope (checked by the authorizer and again here):
 *   DELETE /admin/cache   one selector, as a JSON body or the query: `{ "route", "params"? }`,
 *                         `{ "path" }`, `{ "prefix" }` or `{ "tag" }` (docs/caching.md, "Purging")
 * It deletes from the shared cache table, records the purge for the gateway containers' memory, and
 * answers what it deleted per route and how long a container may still serve a copy.
 */
export function createAdminCacheHandler({
  gateway,
  table,
  record,
}: {
  /** The config: its admin scope, its routes naming `adminCache`, and its cached routes. */
  gateway: Pick<GatewayConfig, "auth" | "routes" | "cache">;
  table: Pick<TableTier, "purge">;
  /** Where the purge is recorded for the gateway containers' memory (shared/cache/purge-record.ts). */
  record: Pick<PurgeRecord, "record">;
}) {
  const { adminScope } = gateway.auth;
  const select = compilePurgeSelector(gateway);
  const routes = routeTable("adminCache", gateway.routes, {
    "DELETE /admin/cache": async (event) => {
      const caller = requestIdentity(event);
      const parsed = parsePurgeRequest(purgeRequest(event));
      if (!parsed.ok) throw invalid(parsed.errors);
      const selection = select(parsed.selector);
      if (!selection.ok) throw invalid([{ field: selection.field, message: selection.message }]);
      try {
        const report = await purgeTable(table, record, selection, {
          lagSeconds: gateway.cache.memory.purgeCheckSeconds,
        });
        logger.info("cache purged", {
          by: caller.principal,
          selector: parsed.selector,
          deleted: report.deleted,
          total: report.total,
        });
        return json(200, {
          selector: parsed.selector,
          ...report,
          ...(report.everything ? { note: "The prefix / purges every cached route." } : {}),
        });
      } catch (error) {
        if (!(error instanceof CachePurgeError)) throw error;
        // The client learns only that it failed (a 5XX hides its detail); the log has what was deleted.
        throw new ServiceUnavailableError("The cache table did not complete the purge", { cause: error });
      }
    },
  });
  return httpHandler(async (event, context) => {
    if (!requestIdentity(event).scopes.includes(adminScope))
      throw new ForbiddenError(`This route needs the ${adminScope} scope`);
    return routes(event, context);
  });
}

const gateway = gatewayAtStart(env.stage);
const client = createDocumentClient();
export const handler = createAdminCacheHandler({
  gateway,
  table: createTableTier({ client, tableName: env.cacheTable }),
  record: createPurgeRecord({ client, tableName: env.cacheTable }),
});
