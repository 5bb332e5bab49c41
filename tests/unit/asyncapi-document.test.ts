import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DiagnosticSeverity, Parser } from "@asyncapi/parser";
import { loadGateway } from "#shared/config/gateway.ts";
import { asyncApiDocument } from "#shared/openapi/asyncapi.ts";
import { ACTIONS } from "#shared/ws/protocol.ts";
import definition from "../../gateway.config.ts";

// biome-ignore lint/suspicious/noExplicitAny: the test walks a plain JSON document
type Json = Record<string, any>;
const documentFor = (stage: string) =>
  asyncApiDocument(loadGateway(definition, stage), {
    title: "gatehouse",
    version: "1.2.3",
    servers: { local: { host: "127.0.0.1:3001", protocol: "ws" } },
  }) as Json;

/** The parser's errors (not its hints, such as "a newer AsyncAPI version exists"). */
async function errorsOf(document: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document));
  return diagnostics
    .filter((diagnostic) => diagnostic.severity === DiagnosticSeverity.Error)
    .map((diagnostic) => `${diagnostic.path.join(".")}: ${diagnostic.message}`);
}

describe("AsyncAPI document of the WebSocket API", () => {
  it("is a valid AsyncAPI 3.0 document for every stage (@asyncapi/parser)", async () => {
    for (const stage of ["local", "prod"]) assert.deepEqual(await errorsOf(documentFor(stage)), [], stage);
    // The parser does check: an operation on a channel that does not exist is an error.
    const broken = documentFor("local");
    broken.operations.join.channel = { $ref: "#/channels/nowhere" };
    assert.notDeepEqual(await errorsOf(broken), []);
  });

  it("has a send operation for every protocol action, with its reply, and the two unasked frames", () => {
    const { operations } = documentFor("local");
    const sends = Object.entries<Json>(operations).filter(([, op]) => op.action === "send");
    assert.deepEqual(sends.map(([name]) => name).sort(), [...ACTIONS].sort());
    assert.deepEqual(operations.join.reply.messages, [
      { $ref: "#/channels/gateway/messages/joinedFrame" },
      { $ref: "#/channels/gateway/messages/errorFrame" },
    ]);
    assert.deepEqual(
      Object.entries<Json>(operations)
        .filter(([, op]) => op.action === "receive")
        .map(([name]) => name),
      ["receiveMessage", "receiveDirect"],
    );
  });

  it("takes each client message's schema from the protocol, and each action's scopes from the config", () => {
    const document = documentFor("local");
    const send = document.channels.gateway.messages.send.payload;
    assert.deepEqual(send.required, ["action", "room", "text"]);
    assert.equal(send.additionalProperties, false);
    assert.equal(send.properties.room.pattern, "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");
    assert.deepEqual(send.properties.data.type, "object");
    assert.deepEqual(document.operations.send["x-gatehouse-scopes"], ["chat:write"]);
    assert.equal(document.operations.join["x-gatehouse-scopes"], undefined);
    assert.match(document.info.description, /5\/s \(burst 10\) per connection/);
  });
});
