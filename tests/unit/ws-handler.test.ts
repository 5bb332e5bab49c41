import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import { BadRequestError } from "#shared/errors.ts";
import { type WsEvent, wsHandler } from "#shared/middleware/ws-handler.ts";
import { logger } from "#shared/observability/logger.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

const frameOf = (body: string | undefined) => JSON.parse(body ?? "") as Record<string, unknown>;

describe("wsHandler chain", () => {
  afterEach(() => mock.restoreAll());

  it("turns a 4XX into an error frame with the message, id and timestamp", async () => {
    const handler = wsHandler(async () => {
      throw new BadRequestError("Room names are 1-64 characters");
    });
    const result = await handler(loadEvent<WsEvent>("wsPing.json"), lambdaContext());
    assert.equal(result.statusCode, 400);
    const frame = frameOf(result.body);
    assert.equal(frame.type, "error");
    assert.deepEqual(frame.error, {
      code: "bad-request",
      status: 400,
      message: "Room names are 1-64 characters",
    });
    assert.equal(frame.requestId, "Uq1cBE2DoAMFT9Q=");
    assert.match(String(frame.id), /^[0-9a-f-]{36}$/);
    assert.ok(!Number.isNaN(Date.parse(String(frame.at))));
  });

  it("turns an unhandled throw into a generic 500 frame, never a 200", async () => {
    mock.method(logger, "error", () => undefined);
    const handler = wsHandler(async () => {
      throw new Error("table gatehouse-prod-connections not found");
    });
    const result = await handler(loadEvent<WsEvent>("wsPing.json"), lambdaContext());
    assert.equal(result.statusCode, 500);
    assert.ok(!String(result.body).includes("gatehouse-prod-connections"));
    assert.equal((frameOf(result.body).error as { status: number }).status, 500);
  });
});
