import { randomUUID } from "node:crypto";
import type { GatehouseContext } from "#shared/http.ts";

/** A Lambda context as the runtime passes it (the chain fills in `requestId`). */
export function lambdaContext(functionName = "gatehouse-test-fn", remainingMs = 10_000): GatehouseContext {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: "512",
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: "2026/11/21/[$LATEST]0123456789abcdef",
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
    requestId: "",
  };
}
