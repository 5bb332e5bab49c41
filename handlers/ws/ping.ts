import { echoed, wsHandler } from "#shared/middleware/ws-handler.ts";
import { frame } from "#shared/ws/protocol.ts";

/** `ping`: answers `pong` on the same connection; clients use it as a keep-alive and a round-trip probe. */
export const handler = wsHandler(async (event, context) => ({
  statusCode: 200,
  body: JSON.stringify(frame("pong", { ref: echoed(event.body).ref, requestId: context.requestId })),
}));
