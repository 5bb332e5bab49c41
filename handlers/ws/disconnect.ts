import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { env } from "#shared/config/env.ts";
import { wsHandler } from "#shared/middleware/ws-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { forgetConnection } from "#shared/ws/chat.ts";
import { type ConnectionSlots, connectionSlots } from "#shared/ws/connection-slots.ts";
import { type ConnectionStore, connectionStore } from "#shared/ws/connection-store.ts";
import { type RoomStore, roomStore } from "#shared/ws/room-store.ts";

interface DisconnectContext {
  disconnectStatusCode?: number;
  disconnectReason?: string;
}

/**
 * `$disconnect`: deletes the connection record and its room memberships, best effort. API Gateway
 * does not always deliver this event and cannot act on its answer, so a failure is logged, the
 * records expire by themselves, and a 410 on a later send removes them sooner.
 */
export function createDisconnectHandler({
  connections,
  rooms,
  slots,
}: {
  connections: ConnectionStore;
  rooms: RoomStore;
  slots: ConnectionSlots;
}) {
  return wsHandler(async (event) => {
    const { connectionId } = event.requestContext;
    const { disconnectStatusCode, disconnectReason } = event.requestContext as DisconnectContext;
    try {
      const old = await forgetConnection({ connections, rooms }, connectionId);
      // The principal's slot: from the record, else from the authorizer's context on this event.
      const principal =
        old?.principal ??
        (event.requestContext.authorizer as { principalId?: string } | undefined)?.principalId;
      if (principal) await slots.release(principal, connectionId);
      logger.info("disconnected", {
        connectionId,
        existed: old !== undefined,
        rooms: old?.rooms?.size ?? 0,
        disconnectStatusCode,
        disconnectReason,
      });
    } catch (error) {
      logger.warn("could not delete the connection's records; they will expire", { connectionId, error });
    }
    return { statusCode: 200 };
  });
}

const client = createDocumentClient();
export const handler = createDisconnectHandler({
  connections: connectionStore({ client, tableName: env.connectionsTable }),
  rooms: roomStore({ client, tableName: env.roomMembersTable }),
  slots: connectionSlots({
    client,
    usageTable: env.usageTable,
    connectionsTable: env.connectionsTable,
  }),
});
