/**
 * The WebSocket API's management endpoint (PostToConnection): the one the deployment gives outright
 * (the local stack's), else `https://<api id>.execute-api.<region>.<suffix>/<stage>` built from the
 * API's id and stage, so no CloudFormation `Fn::Sub` sits in a function's environment (`serverless
 * invoke local` cannot resolve one). The execute-api host is used rather than the event's
 * `domainName`, which is a custom domain's name when one is mapped.
 *
 * Example: `managementEndpoint({ given: undefined, region: "eu-west-1", apiId: "k3v9w2r7tq", stage: "prod" })`.
 */
export function managementEndpoint({
  given,
  region,
  apiId,
  stage,
}: {
  /** The endpoint when the deployment gives it (`GATEHOUSE_WS_ENDPOINT`), else undefined. */
  given: string | undefined;
  region: string;
  apiId: string | undefined;
  stage: string;
}): string {
  if (given) return given;
  if (!apiId)
    throw new Error("No WebSocket API id to build the management endpoint from (GATEHOUSE_WS_API_ID)");
  const suffix = region.startsWith("cn-") ? "amazonaws.com.cn" : "amazonaws.com";
  return `https://${apiId}.execute-api.${region}.${suffix}/${stage}`;
}
