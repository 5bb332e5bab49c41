import type {
  APIGatewayRequestAuthorizerEventV2,
  APIGatewaySimpleAuthorizerWithContextResult,
  Context,
} from "aws-lambda";
import { logger } from "../observability/logger.ts";
import { countEvent } from "../observability/metrics.ts";
import type { createAuthorizerRuntime } from "./authorizer-runtime.ts";
import { type Credentials, identityContext } from "./identity.ts";

type Result = APIGatewaySimpleAuthorizerWithContextResult<Record<string, string>>;
type Decide = ReturnType<typeof createAuthorizerRuntime>;

/** Bearer token from `Authorization` and API key from `x-api-key` (payload 2.0 headers are lower-case). */
export function httpCredentials(headers: Record<string, string | undefined> | undefined): Credentials {
  const authorization = headers?.authorization ?? headers?.Authorization;
  const bearer = authorization?.match(/^Bearer[ ]+([^ ]+)$/i)?.[1];
  const apiKey = headers?.["x-api-key"] ?? headers?.["X-Api-Key"];
  return { ...(bearer ? { bearer } : {}), ...(apiKey ? { apiKey } : {}) };
}

/**
 * The HTTP API request authorizer (payload 2.0, simple responses). It answers allow with the caller's
 * identity as context, or deny; API Gateway itself answers 401 when the route's credential header is
 * missing, and 403 on a deny. It never counts quota: API Gateway caches its answers. Anything
 * unexpected is a deny (fail closed), with the reason in the log and nothing in the response. Every
 * deny is counted: `AuthorizerDenied` by authorizer and reason code.
 */
export function createHttpAuthorizer(decide: Decide) {
  return async function httpAuthorizer(
    event: APIGatewayRequestAuthorizerEventV2,
    context?: Context,
  ): Promise<Result> {
    if (context) logger.addContext(context);
    try {
      const decision = await decide({
        routeKey: event.routeKey,
        sourceIp: event.requestContext?.http?.sourceIp,
        credentials: httpCredentials(event.headers),
      });
      if (decision.allow) {
        logger.debug("allowed", { routeKey: event.routeKey, principal: decision.identity.principal });
        return { isAuthorized: true, context: identityContext(decision.identity) };
      }
      logger.info("denied", { routeKey: event.routeKey, status: decision.status, reason: decision.reason });
      countEvent("AuthorizerDenied", { authorizer: "http", reason: decision.code });
    } catch (error) {
      logger.error("authorizer failed; denying", { routeKey: event?.routeKey, error });
      countEvent("AuthorizerDenied", { authorizer: "http", reason: "error" });
    }
    return { isAuthorized: false, context: {} };
  };
}
