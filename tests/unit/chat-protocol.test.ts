import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as v from "valibot";
import { defineGateway, GatewayConfigError, loadGateway } from "#shared/config/gateway.ts";
import { ACTIONS, CHAT_ACTIONS, ChatMessageSchema } from "#shared/ws/protocol.ts";

const ULID = "01KAB3C4D5E6F7G8H9J0KMNPQR";
const accepts = (message: unknown) => v.safeParse(ChatMessageSchema, message).success;
const problems = (message: unknown) =>
  (v.safeParse(ChatMessageSchema, message).issues ?? []).map(
    (issue) => `${v.getDotPath(issue) ?? "message"}: ${issue.message}`,
  );

describe("the chat protocol", () => {
  it("every chat action is a protocol action; ping is the only other", () => {
    assert.deepEqual(
      ACTIONS.filter((action) => !(CHAT_ACTIONS as readonly string[]).includes(action)),
      ["ping"],
    );
  });

  it("accepts each action's documented shape", () => {
    for (const message of [
      { action: "join", room: "lobby" },
      { action: "leave", room: "lobby", ref: "r1" },
      { action: "send", room: "team.ops-1", text: "hi", data: { build: 1 } },
      { action: "direct", to: "dev:bob", text: "hi" },
      { action: "rooms" },
      { action: "members", room: "lobby" },
      { action: "history", room: "lobby" },
      { action: "history", room: "lobby", since: ULID, limit: 100 },
      { action: "history", inbox: true, after: ULID },
    ]) {
      assert.ok(accepts(message), JSON.stringify(message));
    }
  });

  it("refuses bad shapes, naming the field", () => {
    const cases: [unknown, RegExp][] = [
      [{ action: "join", room: "no spaces" }, /^room: /],
      [{ action: "join", room: "-dash-first" }, /^room: /],
      [{ action: "join", room: "a".repeat(65) }, /^room: /],
      [{ action: "send", room: "lobby", text: "" }, /^text: text must not be empty/],
      [{ action: "send", room: "lobby", text: 42 }, /^text: /],
      [{ action: "send", room: "lobby", text: "hi", admin: true }, /admin/],
      [{ action: "send", room: "lobby", text: "hi", data: [1] }, /^data: /],
      [{ action: "direct", to: "", text: "hi" }, /^to: /],
      [{ action: "join", room: "lobby", ref: "r".repeat(65) }, /^ref: /],
      [{ action: "history", room: "lobby", since: "yesterday" }, /^since: a cursor is a message id/],
      [{ action: "history", room: "lobby", limit: 101 }, /^limit: /],
      [{ action: "history" }, /history takes a room, or inbox: true/],
      [{ action: "history", room: "lobby", inbox: true }, /history takes a room, or inbox: true/],
      [{ action: "history", room: "lobby", since: ULID, after: ULID }, /since or after, not both/],
    ];
    for (const [message, expected] of cases) {
      const found = problems(message);
      assert.ok(
        found.some((problem) => expected.test(problem)),
        `${JSON.stringify(message)} → ${found.join("; ")}`,
      );
    }
  });

  it("the chat config has safe defaults and refuses a message size past API Gateway's frame", () => {
    const chat = loadGateway(
      defineGateway(() => ({ auth: { issuers: [] }, routes: {} })),
      "test",
    ).websocket.chat;
    assert.deepEqual(chat, {
      maxMessageBytes: 32 * 1024,
      maxRoomsPerConnection: 20,
      historyDays: 7,
      fanoutConcurrency: 32,
      scopes: {
        join: [],
        leave: [],
        send: ["chat:write"],
        direct: ["chat:write"],
        rooms: [],
        members: [],
        history: [],
      },
    });
    assert.throws(
      () =>
        loadGateway(
          defineGateway(() => ({
            auth: { issuers: [] },
            routes: {},
            websocket: {
              connect: { auth: "public" },
              chat: { maxMessageBytes: 128 * 1024, fanoutConcurrency: 0, sendLimit: 1 } as never,
            },
          })),
          "test",
        ),
      (error: unknown) =>
        error instanceof GatewayConfigError &&
        error.problems.some((problem) => problem.startsWith("websocket.chat.maxMessageBytes")) &&
        error.problems.some((problem) => problem.startsWith("websocket.chat.fanoutConcurrency")) &&
        error.problems.some((problem) => problem.includes("sendLimit")),
    );
  });
});
