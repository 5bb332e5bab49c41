import type { LambdaClient } from "@aws-sdk/client-lambda";
import { traceClient } from "../observability/tracer.ts";

let sdk: Promise<typeof import("@aws-sdk/client-lambda")> | undefined;

/**
 * The Lambda SDK, imported on first use, not at cold start: it is most of the gateway bundle's
 * import time, and a gateway whose config has no lambda upstream never pays it.
 */
export function lambdaSdk(): Promise<typeof import("@aws-sdk/client-lambda")> {
  sdk ??= import("@aws-sdk/client-lambda");
  return sdk;
}

/** A Lambda client, or how to get one the first time it is needed. */
export type LambdaClientSource = LambdaClient | (() => Promise<LambdaClient>);

/**
 * The client lambda upstreams invoke through, made on first use (the SDK loads then). No SDK
 * retries: the upstream policy retries (idempotent methods only) and keeps the time budget. Call it
 * once per container (handlers/http/gateway.ts). The endpoint is the SDK's `AWS_ENDPOINT_URL_LAMBDA`
 * unless `endpoint` is given. Under X-Ray each Invoke is a `Lambda` subsegment, under the upstream
 * attempt that made it, and carries the trace to the function. Example: `lazyLambdaClient()`.
 */
export function lazyLambdaClient(
  options: { region?: string; endpoint?: string } = {},
): () => Promise<LambdaClient> {
  let client: Promise<LambdaClient> | undefined;
  return () => {
    client ??= lambdaSdk().then(({ LambdaClient }) =>
      traceClient(
        new LambdaClient({ maxAttempts: 1, requestHandler: { connectionTimeout: 1_000 }, ...options }),
      ),
    );
    return client;
  };
}
