import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent, Context } from "aws-lambda";
import { logger } from "../observability/logger.ts";
import { countEvent } from "../observability/metrics.ts";
import { hasApiKeyPrefix } from "./api-key-check.ts";
import type { createAuthorizerRuntime } from "./authorizer-runtime.ts";
import { type Credentials, identityContext } from "./identity.ts";

type Decide = ReturnType<typeof createAuthorizerRuntime>;

/** The subprotocol a browser offers beside its token; `$connect` answers with it. */
export const WS_SUBPROTOCOL = "gatehouse.v1";
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function header(
  headers: Record<string, string | undefined> | null | undefined,
  name: string,
): string | undefined {
  if (!headers) return undefined;
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/**
 * Credentials of a WebSocket handshake. Browsers cannot set headers on a WebSocket, so a token comes
 * in the `token` query parameter or as a subprotocol (`new WebSocket(url, ["gatehouse.v1", token])`);
 * other clients may also send `Authorization: Bearer` or `x-api-key`. An API key (`ghk_…`, or the
 * old `gh_…`) is accepted wherever a token is.
 */
export function wsCredentials(
  event: Pick<APIGatewayRequestAuthorizerEvent, "headers" | "queryStringParameters">,
): Credentials {
  const offered = (header(event.headers, "sec-websocket-protocol") ?? "")
    .split(",")
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== "" && protocol !== WS_SUBPROTOCOL);
  const candidates = [
    event.queryStringParameters?.token,
    header(event.headers, "authorization")?.match(/^Bearer[ ]+([^ ]+)$/i)?.[1],
    ...offered,
  ].filter((value): value is string => typeof value === "string" && value !== "");
  const apiKey = header(event.headers, "x-api-key") ?? candidates.find(hasApiKeyPrefix);
  const bearer = candidates.find((value) => JWT_SHAPE.test(value));
  return { ...(bearer ? { bearer } : {}), ...(apiKey ? { apiKey } : {}) };
}

const policy = (
  principalId: string,
  effect: "Allow" | "Deny",
  resource: string,
  context?: Record<string, string>,
) => ({
  principalId,
  policyDocument: {
    Version: "2012-10-17",
    Statement: [{ Action: "execute-api:Invoke", Effect: effect, Resource: resource }],
  },
  ...(context ? { context } : {}),
});

/**
 * The WebSocket `$connect` authorizer (REQUEST, IAM policy response). Allow carries the identity as
 * context, so `$connect` records the connection under its principal. No credentials → 401
 * (`Unauthorized`); refused credentials, IP or scopes → a Deny policy (403); anything unexpected →
 * Deny: it fails
 * closed, with the reason in the log only.
 */
export function createWsAuthorizer(decide: Decide, { offline = false }: { offline?: boolean } = {}) {
  return async function wsAuthorizer(
    event: APIGatewayRequestAuthorizerEvent,
    context?: Context,
  ): Promise<APIGatewayAuthorizerResult | "Unauthorized"> {
    if (context) logger.addContext(context);
    const resource = event?.methodArn ?? "*";
    try {
      const credentials = wsCredentials(event);
      const decision = await decide({
        routeKey: "$connect",
        sourceIp: event.requestContext?.identity?.sourceIp,
        credentials,
      });
      if (decision.allow) {
        return policy(decision.identity.principal, "Allow", resource, identityContext(decision.identity));
      }
      logger.info("connection denied", { status: decision.status, reason: decision.reason });
      countEvent("AuthorizerDenied", { authorizer: "ws", reason: decision.code });
      // 401 only when nothing was presented (as API Gateway does for HTTP); a bad credential is a 403.
      if (decision.status === 401 && !credentials.bearer && !credentials.apiKey) {
        // API Gateway answers 401 when the authorizer fails with exactly "Unauthorized";
        // serverless-offline expects the string returned instead.
        if (offline) return "Unauthorized";
        throw new Error("Unauthorized");
      }
    } catch (error) {
      if (error instanceof Error && error.message === "Unauthorized") throw error;
      logger.error("WebSocket authorizer failed; denying", { error });
      countEvent("AuthorizerDenied", { authorizer: "ws", reason: "error" });
    }
    return policy("denied", "Deny", resource);
  };
}
