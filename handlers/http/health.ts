import { env } from "#shared/config/env.ts";
import { json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";

const startedAt = Date.now();

/**
 * `GET /health`: liveness of the gateway function. Public, cheap and free of dependencies, so a
 * load balancer or uptime check never spends a DynamoDB read on it.
 */
export const handler = httpHandler(async () =>
  json(200, {
    status: "ok",
    service: "gatehouse",
    stage: env.stage,
    version: env.version,
    time: new Date().toISOString(),
    uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
  }),
);
