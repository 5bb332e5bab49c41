import { echoed, wsHandler } from "#shared/middleware/ws-handler.ts";
import { ACTIONS, frame } from "#shared/ws/protocol.ts";

/**
 * `$default`: any message whose `action` has no route. It answers with an error frame that says why
 * and lists the actions there are.
 */
export const handler = wsHandler(async (event, context) => {
  let action: unknown;
  let code = "unknown-action";
  try {
    action = (JSON.parse(event.body ?? "") as { action?: unknown } | null)?.action;
    if (action === undefined) code = "missing-action";
  } catch {
    code = "invalid-json";
  }
  const message =
    code === "invalid-json"
      ? 'Messages are JSON objects such as {"action":"ping"}.'
      : code === "missing-action"
        ? 'The message has no "action" member.'
        : `Unknown action ${JSON.stringify(action)}.`;
  return {
    statusCode: 400,
    body: JSON.stringify(
      frame("error", {
        error: { code, status: 400, message },
        actions: ACTIONS,
        ref: echoed(event.body).ref,
        requestId: context.requestId,
      }),
    ),
  };
});
