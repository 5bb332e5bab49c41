import { parseScopes } from "#shared/auth/scopes.ts";
import { WS_SUBPROTOCOL } from "#shared/auth/ws-authorizer.ts";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";
import { type WsResult, wsHandler } from "#shared/middleware/ws-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { countEvent } from "#shared/observability/metrics.ts";
import {
  type ConnectionSlots,
  connectionSlots,
  TooManyConnectionsError,
} from "#shared/ws/connection-slots.ts";
import { type ConnectionStore, connectionStore } from "#shared/ws/connection-store.ts";

/**
 * `$connect`: records the connection and takes one of its principal's connection slots
 * (`websocket.maxConnectionsPerPrincipal`, counted exactly in the usage table). It runs only after
 * API Gateway has admitted the handshake, so the principal and scopes are the authorizer's. A
 * principal already at its maximum is refused with 429 (the handshake fails with that status, and a
 * problem body for clients that read it); the record written for it is deleted again. If either
 * write fails the connection is refused (500): a socket the gateway cannot track could never be
 * reached or cleaned up.
 */
export function createConnectHandler({
  connections,
  slots,
  maxConnectionsPerPrincipal,
}: {
  connections: ConnectionStore;
  slots: ConnectionSlots;
  maxConnectionsPerPrincipal: number;
}) {
  return wsHandler(async (event): Promise<WsResult> => {
    const { connectionId, identity, authorizer } = event.requestContext;
    const context = (authorizer ?? {}) as { principalId?: string; scopes?: unknown };
    const connection = await connections.put({
      connectionId,
      principal: context.principalId ?? "anonymous",
      sourceIp: identity?.sourceIp,
      userAgent: identity?.userAgent,
      scopes: parseScopes(context.scopes ?? ""),
    });
    try {
      await slots.reserve(connection.principal, connectionId, maxConnectionsPerPrincipal);
    } catch (error) {
      await connections.remove(connectionId).catch(() => undefined);
      if (!(error instanceof TooManyConnectionsError)) throw error;
      logger.info("connection refused: too many connections", {
        connectionId,
        principal: connection.principal,
        max: error.max,
      });
      countEvent("ConnectionsRefused");
      return {
        statusCode: 429,
        headers: { "content-type": "application/problem+json", "retry-after": "5" },
        body: JSON.stringify({
          type: "urn:gatehouse:problem:too-many-connections",
          title: "Too Many Requests",
          status: 429,
          detail: error.message,
          limit: error.max,
        }),
      };
    }
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

const client = createDocumentClient();
export const handler = createConnectHandler({
  connections: connectionStore({ client, tableName: env.connectionsTable }),
  slots: connectionSlots({
    client,
    usageTable: env.usageTable,
    connectionsTable: env.connectionsTable,
  }),
  maxConnectionsPerPrincipal: gatewayAtStart(env.stage).websocket.maxConnectionsPerPrincipal,
});
