import { documentClient } from "../clients/dynamodb.ts";
import { postToConnection } from "../clients/websocket-management.ts";
import { env } from "../config/env.ts";
import type { GatewayConfig } from "../config/gateway.ts";
import { createChat } from "./chat.ts";
import { connectionStore } from "./connection-store.ts";
import { messageStore } from "./message-store.ts";
import { roomStore } from "./room-store.ts";

/**
 * The chat over this deployment's tables and the WebSocket API at `endpoint` (its management
 * endpoint, see shared/ws/endpoint.ts), wired once per container.
 */
export function chatFromEnv(gateway: GatewayConfig, endpoint: string) {
  const client = documentClient();
  const connections = connectionStore({ client, tableName: env.connectionsTable });
  const chat = createChat({
    connections,
    rooms: roomStore({ client, tableName: env.roomMembersTable }),
    messages: messageStore({
      client,
      tableName: env.messagesTable,
      retentionDays: gateway.websocket.chat.historyDays,
    }),
    post: postToConnection(endpoint),
    config: gateway.websocket.chat,
  });
  return { chat, connections };
}
