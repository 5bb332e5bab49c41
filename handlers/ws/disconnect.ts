import { documentClient } from "#shared/clients/dynamodb.ts";
import { env } from "#shared/config/env.ts";
import { wsHandler } from "#shared/middleware/ws-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { connectionStore } from "#shared/ws/connection-store.ts";

const connections = connectionStore({ client: documentClient(), tableName: env.connectionsTable });

/**
 * `$disconnect`: deletes the connection record, best effort. API Gateway does not always deliver
 * this event, so a record left behind expires by itself and a 410 on send removes it sooner.
 */
export const handler = wsHandler(async (event) => {
  const { connectionId, disconnectStatusCode, disconnectReason } =
    event.requestContext as typeof event.requestContext & {
      disconnectStatusCode?: number;
      disconnectReason?: string;
    };
  try {
    const existed = await connections.remove(connectionId);
    logger.info("disconnected", { connectionId, existed, disconnectStatusCode, disconnectReason });
  } catch (error) {
    logger.warn("could not delete the connection record; it will expire", { connectionId, error });
  }
  return { statusCode: 200 };
});
