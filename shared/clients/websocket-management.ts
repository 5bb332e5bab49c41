import {
  ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from "@aws-sdk/client-apigatewaymanagementapi";
import { traceClient } from "../observability/tracer.ts";
import type { PostToConnection } from "../ws/fanout.ts";

/**
 * A client of the WebSocket API's management endpoint (PostToConnection); a handler makes one per
 * endpoint per container.
 * Deployed: `https://<api id>.execute-api.<region>.amazonaws.com/<stage>`; locally
 * `http://127.0.0.1:<websocket port>` with no stage. A send gives up after 3 s and is retried by the
 * SDK on throttling (its standard retry mode, 3 attempts). Under X-Ray each send is an
 * `ApiGatewayManagementApi` subsegment (`PostToConnection`).
 */
function createManagementClient(endpoint: string): ApiGatewayManagementApiClient {
  return traceClient(
    new ApiGatewayManagementApiClient({
      endpoint,
      maxAttempts: 3,
      requestHandler: { connectionTimeout: 1_000, requestTimeout: 3_000 },
    }),
  );
}

/** `post(connectionId, payload)` through the management API at `endpoint` (a client of its own). */
export function postToConnection(endpoint: string): PostToConnection {
  const client = createManagementClient(endpoint);
  return async (connectionId, payload, signal) => {
    await client.send(
      new PostToConnectionCommand({ ConnectionId: connectionId, Data: payload }),
      signal ? { abortSignal: signal } : undefined,
    );
  };
}
