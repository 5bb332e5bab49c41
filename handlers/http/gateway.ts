import { createMemoryTier } from "#shared/cache/memory.ts";
import { createPurgeRecord } from "#shared/cache/purge-record.ts";
import { createResponseCache } from "#shared/cache/response-cache.ts";
import { createTableTier } from "#shared/cache/table.ts";
import { createCacheDocumentClient, createLimiterDocumentClient } from "#shared/clients/dynamodb.ts";
import { lazyLambdaClient } from "#shared/clients/lambda.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { routeCachePolicy } from "#shared/config/derive.ts";
import { env } from "#shared/config/env.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { createLimiter } from "#shared/quota/limiter.ts";
import { createMetering } from "#shared/quota/metering.ts";

const gateway = gatewayAtStart(env.stage);
// The deployment's parts, from the environment, once per container.
const usageClient = gateway.limits ? createLimiterDocumentClient() : undefined;
const invokesFunctions = Object.values(gateway.upstreams).some((upstream) => upstream.kind === "lambda");
const caches = Object.keys(gateway.routes).some((key) => routeCachePolicy(gateway, key) !== undefined);
// Both tiers, made once: the container's LRU lives as long as the container, the table is shared.
const cacheClient = caches ? createCacheDocumentClient() : undefined;
const cache = cacheClient
  ? createResponseCache({
      memory: createMemoryTier(gateway.cache.memory),
      table: createTableTier({ client: cacheClient, tableName: env.cacheTable }),
      purges: {
        record: createPurgeRecord({ client: cacheClient, tableName: env.cacheTable }),
        checkMs: gateway.cache.memory.purgeCheckSeconds * 1_000,
      },
      // A table that fails is a miss, so nothing else would show it: a missing grant, throttling.
      onEvent: (event) => {
        if (event.type === "table-error")
          logger.warn("cache table call failed; the request went on as a miss", { error: event.error });
      },
    })
  : undefined;

/** The config-driven gateway: the routes of gateway.config.ts that proxy to an upstream, and the catch-all. */
export const handler = createGatewayHandler(gateway, {
  ...(usageClient
    ? {
        limiter: createLimiter({ client: usageClient, tableName: env.usageTable }),
        metering: createMetering({ client: usageClient, tableName: env.usageTable }),
      }
    : {}),
  ...(cache ? { cache } : {}),
  // API Gateway is HTTPS only; serverless-offline (the local stack) serves plain HTTP.
  proto: env.isOffline ? "http" : "https",
  ...(invokesFunctions ? { lambda: { functionPrefix: env.functionPrefix, client: lazyLambdaClient() } } : {}),
});
