import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { postToConnection } from "../clients/websocket-management.ts";
import type { GatewayConfig } from "../config/gateway.ts";
import { createChat } from "./chat.ts";
import { connectionStore } from "./connection-store.ts";
import { messageStore } from "./message-store.ts";
import { roomStore } from "./room-store.ts";

/** The chat's tables, by name. */
export interface ChatTables {
  connections: string;
  roomMembers: string;
  messages: string;
}

/**
 * The chat over the deployment's tables and the WebSocket API at `endpoint` (its management
 * endpoint, see shared/ws/endpoint.ts). The handler gives the client and table names from the
 * environment and calls it once per container (per endpoint).
 */
export function createChatRuntime({
  gateway,
  client,
  tables,
  endpoint,
}: {
  gateway: Pick<GatewayConfig, "websocket">;
  client: DynamoDBDocumentClient;
  tables: ChatTables;
  endpoint: string;
}) {
  const connections = connectionStore({ client, tableName: tables.connections });
  const chat = createChat({
    connections,
    rooms: roomStore({ client, tableName: tables.roomMembers }),
    messages: messageStore({
      client,
      tableName: tables.messages,
      retentionDays: gateway.websocket.chat.historyDays,
    }),
    post: postToConnection(endpoint),
    config: gateway.websocket.chat,
  });
  return { chat, connections };
}
