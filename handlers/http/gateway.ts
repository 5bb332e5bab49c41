import { createLimiterDocumentClient } from "#shared/clients/dynamodb.ts";
import { lazyLambdaClient } from "#shared/clients/lambda.ts";
import { env } from "#shared/config/env.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import { createLimiter } from "#shared/quota/limiter.ts";
import { createMetering } from "#shared/quota/metering.ts";
import definition from "../../gateway.config.ts";

const gateway = loadGateway(definition, env.stage);
// The deployment's parts, from the environment, once per container.
const usageClient = gateway.limits ? createLimiterDocumentClient() : undefined;
const invokesFunctions = Object.values(gateway.upstreams).some((upstream) => upstream.kind === "lambda");

/** The config-driven gateway: the routes of gateway.config.ts that proxy to an upstream, and the catch-all. */
export const handler = createGatewayHandler(gateway, {
  ...(usageClient
    ? {
        limiter: createLimiter({ client: usageClient, tableName: env.usageTable }),
        metering: createMetering({ client: usageClient, tableName: env.usageTable }),
      }
    : {}),
  // API Gateway is HTTPS only; serverless-offline (the local stack) serves plain HTTP.
  proto: env.isOffline ? "http" : "https",
  ...(invokesFunctions ? { lambda: { functionPrefix: env.functionPrefix, client: lazyLambdaClient() } } : {}),
});
