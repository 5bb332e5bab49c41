import { documentClient } from "#shared/clients/dynamodb.ts";
import { env } from "#shared/config/env.ts";
import { wsHandler } from "#shared/middleware/ws-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { type ConnectionStore, connectionStore } from "#shared/ws/connection-store.ts";

interface DisconnectContext {
  disconnectStatusCode?: number;
  disconnectReason?: string;
}

/**
 * `$disconnect`: deletes the connection record, best effort. API Gateway does not always deliver
 * this event and cannot act on its answer, so a failure is logged, the record expires by itself,
 * and a 410 on a later send removes it sooner.
 */
export function createDisconnectHandler({ connections }: { connections: ConnectionStore }) {
  return wsHandler(async (event) => {
    const { connectionId } = event.requestContext;
    const { disconnectStatusCode, disconnectReason } = event.requestContext as DisconnectContext;
    try {
      const existed = await connections.remove(connectionId);
      logger.info("disconnected", { connectionId, existed, disconnectStatusCode, disconnectReason });
    } catch (error) {
      logger.warn("could not delete the connection record; it will expire", { connectionId, error });
    }
    return { statusCode: 200 };
  });
}

export const handler = createDisconnectHandler({
  connections: connectionStore({ client: documentClient(), tableName: env.connectionsTable }),
});
