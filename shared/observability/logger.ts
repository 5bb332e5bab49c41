import { Logger } from "@aws-lambda-powertools/logger";
import { env } from "../config/env.ts";

/**
 * The structured JSON logger (Powertools Logger), one per container. Service name (`env.serviceName`)
 * and level come from `POWERTOOLS_SERVICE_NAME` and `POWERTOOLS_LOG_LEVEL`, set per stage in serverless.yml.
 */
export const logger = new Logger({ serviceName: env.serviceName });
