import { requestIdentity } from "#shared/auth/identity.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";
import type { GatewayConfig } from "#shared/config/parse.ts";
import { BadRequestError, ForbiddenError, NotFoundError } from "#shared/errors.ts";
import { json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";
import { routeTable } from "#shared/middleware/route-table.ts";
import { routeLimitSteps } from "#shared/middleware/usage-limits.ts";
import { createLimiter, type Limiter } from "#shared/quota/limiter.ts";
import { createMetering, type Metering, UsageRangeError, usageCsv } from "#shared/quota/metering.ts";
import { declaredPlan, planFor } from "#shared/quota/plans.ts";
import { isoDay, quotaWindow } from "#shared/quota/windows.ts";

/**
 * Usage, for the caller and for billing:
 *   GET /usage          the calling API key's plan, where it stands in its quota window, and its
 *                       metered usage by day and route in that window (default: the last 30 days)
 *   GET /admin/usage    (admin scope) everyone's usage for `from`..`to` (UTC days), as JSON or, with
 *                       `format=csv`, as CSV; `subject=key:<id>` narrows it to one subject
 */
export function createUsageHandler({
  gateway,
  limiter,
  metering,
  now = Date.now,
}: {
  gateway: GatewayConfig;
  limiter: Limiter;
  metering: Metering;
  now?: () => number;
}) {
  // GET /usage and GET /admin/usage count against the caller's plan when the config limits them.
  const usage = routeLimitSteps({ gateway, limiter, metering });
  const limitsOf = () => {
    if (!gateway.limits) throw new NotFoundError("This gateway has no usage plans");
    return gateway.limits;
  };
  const routes = routeTable("usage", gateway.routes, {
    "GET /usage": async (event) => {
      const caller = requestIdentity(event);
      const limits = limitsOf();
      if (!caller.keyId)
        throw new ForbiddenError("GET /usage answers for an API key; call it with x-api-key");
      const subject = `key:${caller.keyId}`;
      const plan = planFor(limits, caller, undefined);
      const nowMs = now();
      const window = plan.quota ? quotaWindow(plan.quota.period, nowMs) : undefined;
      const from = isoDay(window?.startMs ?? nowMs - 29 * 86_400_000);
      const usage = await metering.forSubject(subject, from, isoDay(nowMs));
      return json(200, {
        subject,
        plan: plan.name,
        rate: plan.rate ?? null,
        quota: (await limiter.quotaStatus(subject, plan)) ?? null,
        routes: declaredPlan(limits, plan.name)?.routes ?? "all limited routes",
        usage: usage.map(({ subject: _subject, ...record }) => record),
      });
    },
    "GET /admin/usage": async (event) => {
      const caller = requestIdentity(event);
      limitsOf();
      if (!caller.scopes.includes(gateway.auth.adminScope))
        throw new ForbiddenError(`This route needs the ${gateway.auth.adminScope} scope`);
      const query = event.queryStringParameters ?? {};
      const today = isoDay(now());
      const from = query.from ?? today;
      const to = query.to ?? today;
      const format = query.format ?? "json";
      if (format !== "json" && format !== "csv") throw new BadRequestError("format is json or csv");
      if (query.subject !== undefined && !/^(key|principal|ip):[^\s]{1,200}$/.test(query.subject)) {
        throw new BadRequestError("subject looks like key:<keyId>, principal:<sub> or ip:<address>");
      }
      let records: Awaited<ReturnType<Metering["forRange"]>>;
      try {
        records = query.subject
          ? await metering.forSubject(query.subject, from, to)
          : await metering.forRange(from, to);
      } catch (error) {
        if (error instanceof UsageRangeError) throw new BadRequestError(error.message);
        throw error;
      }
      if (format === "csv") {
        return {
          statusCode: 200,
          headers: {
            "content-type": "text/csv; charset=utf-8",
            "content-disposition": `attachment; filename="usage-${from}-${to}.csv"`,
          },
          body: usageCsv(records),
        };
      }
      return json(200, { from, to, records });
    },
  });
  return httpHandler(routes, usage);
}

const client = createDocumentClient();
export const handler = createUsageHandler({
  gateway: gatewayAtStart(env.stage),
  limiter: createLimiter({ client, tableName: env.usageTable }),
  metering: createMetering({ client, tableName: env.usageTable }),
});
