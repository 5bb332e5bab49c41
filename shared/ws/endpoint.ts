import { env } from "../config/env.ts";

/**
 * The WebSocket API's management endpoint (PostToConnection): the one the environment gives (the
 * local stack's), else `https://<api id>.execute-api.<region>.<suffix>/<stage>` built from the API's
 * id and stage, so no CloudFormation `Fn::Sub` sits in a function's environment (`serverless invoke
 * local` cannot resolve one). The execute-api host is used rather than the event's `domainName`,
 * which is a custom domain's name when one is mapped.
 *
 * Example: `managementEndpoint({ apiId: "k3v9w2r7tq", stage: "prod" })`.
 */
export function managementEndpoint({ apiId, stage }: { apiId: string | undefined; stage: string }): string {
  const given = env.websocketEndpoint;
  if (given) return given;
  if (!apiId)
    throw new Error("No WebSocket API id to build the management endpoint from (GATEHOUSE_WS_API_ID)");
  const region = env.region;
  const suffix = region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return `https://${apiId}.execute-api.${region}.${suffix}/${stage}`;
}
