import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WsEvent } from "#shared/middleware/ws-handler.ts";
import { ACTIONS } from "#shared/ws/protocol.ts";
import { handler as defaultHandler } from "../../handlers/ws/default.ts";
import { handler as pingHandler } from "../../handlers/ws/ping.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

const frameOf = (body: string | undefined) => JSON.parse(body ?? "") as Record<string, unknown>;

describe("$default and ping", () => {
  it("ping answers pong with an id and a timestamp", async () => {
    const result = await pingHandler(loadEvent<WsEvent>("wsPing.json"), lambdaContext());
    assert.equal(result.statusCode, 200);
    const frame = frameOf(result.body);
    assert.equal(frame.type, "pong");
    assert.equal(frame.requestId, "Uq1cBE2DoAMFT9Q=");
  });

  const cases: [string, string | undefined, string][] = [
    ["an unknown action", JSON.stringify({ action: "dance" }), "unknown-action"],
    ["a message with no action", JSON.stringify({ text: "hi" }), "missing-action"],
    ["JSON that is not an object", "42", "missing-action"],
    ["JSON null", "null", "missing-action"],
    ["text that is not JSON", "hello {", "invalid-json"],
    ["an empty body", undefined, "invalid-json"],
  ];
  for (const [name, body, code] of cases) {
    it(`$default explains ${name} and lists the actions`, async () => {
      const event = loadEvent<WsEvent>("wsDefault.json");
      event.body = body;
      const result = await defaultHandler(event, lambdaContext());
      const frame = frameOf(result.body);
      assert.equal(frame.type, "error");
      assert.equal((frame.error as { code: string }).code, code);
      assert.deepEqual(frame.actions, [...ACTIONS]);
    });
  }
});
