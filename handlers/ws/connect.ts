import { WS_SUBPROTOCOL } from "#shared/auth/ws-authorizer.ts";
import { documentClient } from "#shared/clients/dynamodb.ts";
import { env } from "#shared/config/env.ts";
import { wsHandler } from "#shared/middleware/ws-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { type ConnectionStore, connectionStore } from "#shared/ws/connection-store.ts";

/**
 * `$connect`: records the connection. It runs only after API Gateway has admitted the handshake, so
 * the principal is the authorizer's when there is one. If the record cannot be written the
 * connection is refused (500): a socket the gateway cannot track could never be reached or cleaned up.
 */
export function createConnectHandler({ connections }: { connections: ConnectionStore }) {
  return wsHandler(async (event) => {
    const { connectionId, identity, authorizer } = event.requestContext;
    const connection = await connections.put({
      connectionId,
      principal: authorizer?.principalId ?? "anonymous",
      sourceIp: identity?.sourceIp,
      userAgent: identity?.userAgent,
    });
    logger.info("connected", { connectionId, principal: connection.principal });
    // A browser that sent its token as a subprotocol closes the socket unless one is agreed.
    const offered = Object.entries(event.headers ?? {}).find(
      ([name]) => name.toLowerCase() === "sec-websocket-protocol",
    )?.[1];
    const agreed = offered?.split(",").some((protocol) => protocol.trim() === WS_SUBPROTOCOL);
    return agreed
      ? { statusCode: 200, headers: { "Sec-WebSocket-Protocol": WS_SUBPROTOCOL } }
      : { statusCode: 200 };
  });
}

export const handler = createConnectHandler({
  connections: connectionStore({ client: documentClient(), tableName: env.connectionsTable }),
});
