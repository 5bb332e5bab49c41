import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, afterEach, before, describe, it, mock } from "node:test";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { postToConnection } from "#shared/clients/websocket-management.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import type { WsEvent } from "#shared/middleware/ws-handler.ts";
import { createLimiter } from "#shared/quota/limiter.ts";
import { createMetering } from "#shared/quota/metering.ts";
import { createChat, forgetConnection } from "#shared/ws/chat.ts";
import { ConnectionGoneError, connectionStore, RoomLimitError } from "#shared/ws/connection-store.ts";
import { fanOut, isGone } from "#shared/ws/fanout.ts";
import { messageStore } from "#shared/ws/message-store.ts";
import { HISTORY_OVERLAP_MS } from "#shared/ws/protocol.ts";
import { roomStore } from "#shared/ws/room-store.ts";
import definition from "../../gateway.config.ts";
import { startTestStore, type TestStore, unreachableClient } from "../support/dynamo.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent, loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

type ChatModule = typeof import("../../handlers/ws/chat.ts");

/**
 * A stand-in for the WebSocket API's management endpoint (AWS cannot run here; the e2e suite uses
 * serverless-offline's). The real SDK client talks to it, so errors reach the code as the SDK makes
 * them. Connections in `gone` answer 410, in `broken` 500; each send takes `delayMs`.
 */
async function managementEndpoint({ delayMs = 5, hold = false } = {}) {
  const gone = new Set<string>();
  const broken = new Set<string>();
  const delivered: { connectionId: string; payload: string }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let received = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  const server: Server = createServer((request, response) => {
    const connectionId = decodeURIComponent(request.url?.split("/@connections/")[1] ?? "");
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      inFlight++;
      received++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      for (const waiter of waiters.filter((w) => received >= w.count)) waiter.resolve();
      if (hold) return; // never answered: a send that is still in flight when the caller gives up
      setTimeout(() => {
        inFlight--;
        if (gone.has(connectionId)) {
          response.writeHead(410, { "x-amzn-errortype": "GoneException" }).end("{}");
        } else if (broken.has(connectionId)) {
          response.writeHead(500).end("{}");
        } else {
          delivered.push({ connectionId, payload: Buffer.concat(chunks).toString() });
          response.writeHead(200).end();
        }
      }, delayMs);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gone,
    broken,
    delivered,
    maxInFlight: () => maxInFlight,
    /** Sends received and not answered yet. */
    inFlight: () => inFlight,
    /** Sends received so far, answered or not. */
    received: () => received,
    /** Resolves once `count` sends have been received. */
    receivedAtLeast: (count: number) =>
      new Promise<void>((resolve) => {
        if (received >= count) resolve();
        else waiters.push({ count, resolve });
      }),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

describe("chat stores and fan-out against dynalite", () => {
  let store: TestStore;
  let endpoint: Awaited<ReturnType<typeof managementEndpoint>>;
  const gateway = loadGateway(definition, "test");
  const savedEnv = { ...process.env };

  before(async () => {
    store = await startTestStore();
    endpoint = await managementEndpoint();
    process.env.AWS_ACCESS_KEY_ID ??= "local";
    process.env.AWS_SECRET_ACCESS_KEY ??= "local";
    process.env.AWS_REGION ??= "us-east-1";
  });
  after(async () => {
    process.env = savedEnv;
    await endpoint.close();
    await store.stop();
  });
  afterEach(() => mock.restoreAll());

  const stores = (client = store.client, now = Date.now) => ({
    connections: connectionStore({ client, tableName: store.tables.ConnectionsTable as string, now }),
    rooms: roomStore({ client, tableName: store.tables.RoomMembersTable as string, now }),
    messages: messageStore({
      client,
      tableName: store.tables.MessagesTable as string,
      retentionDays: 7,
      now,
    }),
  });
  const chatWith = (post = postToConnection(endpoint.url), parts = stores()) =>
    createChat({ ...parts, post, config: gateway.websocket.chat });

  it("fan-out: bounded concurrency, every live connection once, gone ones removed, one EMF record", async () => {
    // Prepare
    const emf = captureEmf();
    const ids = Array.from({ length: 40 }, (_, index) => `fan-${index}=`);
    for (const id of ids.slice(0, 3)) endpoint.gone.add(id);
    endpoint.broken.add(ids[3] as string);
    const removed: string[] = [];
    endpoint.delivered.length = 0;
    // Act
    const report = await fanOut({
      post: postToConnection(endpoint.url),
      connectionIds: [...ids, ids[10] as string],
      payload: '{"type":"message"}',
      concurrency: 4,
      removeGone: async (id) => {
        removed.push(id);
      },
      kind: "room",
    });
    // Assess
    assert.equal(report.recipients, 40, "a duplicate id is sent to once");
    assert.equal(report.delivered, 36);
    assert.deepEqual(report.gone.sort(), ids.slice(0, 3).sort());
    assert.deepEqual(removed.sort(), ids.slice(0, 3).sort());
    assert.equal(report.failed, 1);
    assert.equal(endpoint.maxInFlight(), 4, "at most 4 sends in flight, and 4 used");
    assert.equal(new Set(endpoint.delivered.map((d) => d.connectionId)).size, 36);
    const record = emf.find((line) => "FanoutRecipients" in line);
    assert.ok(record, "an EMF record for the broadcast");
    assert.equal(record.FanoutRecipients, 40);
    assert.equal(record.FanoutDelivered, 36);
    assert.equal(record.FanoutGone, 3);
    assert.equal(record.FanoutFailed, 1);
    assert.equal(record.kind, "room");
  });

  it("fan-out stops when its budget's signal fires: nothing more starts, sends in flight are cut off", async () => {
    // Prepare: an endpoint that never answers, so the two sends under way are in flight when the
    // budget runs out (fired here once both have arrived: no clock involved).
    const held = await managementEndpoint({ hold: true });
    try {
      const budget = new AbortController();
      const ids = Array.from({ length: 20 }, (_, index) => `late-${index}=`);
      void held.receivedAtLeast(2).then(() => budget.abort(new Error("the invocation's budget")));
      // Act
      const report = await fanOut({
        post: postToConnection(held.url),
        connectionIds: ids,
        payload: "{}",
        concurrency: 2,
        removeGone: async () => undefined,
        kind: "room",
        signal: budget.signal,
      });
      // Assess
      assert.deepEqual(
        [report.delivered, report.skipped, report.failed],
        [0, 20, 0],
        "a cut-off send is skipped, not failed; the 18 never started are skipped",
      );
      assert.equal(held.received(), 2, "nothing more started after the budget");
      assert.equal(held.inFlight(), 2, "it returned without waiting for the sends in flight");
    } finally {
      await held.close();
    }
  });

  it("a 410 is recognised by its HTTP status whatever the SDK names the error", async () => {
    const post = postToConnection(endpoint.url);
    endpoint.gone.add("named=");
    const named = await post("named=", "x").catch((error: unknown) => error);
    assert.equal(isGone(named), true);
    // serverless-offline's 410 has no error type: the SDK calls it `Unknown`.
    const server = createServer((_request, response) => response.writeHead(410).end());
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const bare = await postToConnection(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)(
      "bare=",
      "x",
    ).catch((error: unknown) => error);
    server.close();
    assert.equal((bare as Error).name, "Unknown");
    assert.equal(isGone(bare), true);
    endpoint.broken.add("broken-only=");
    assert.equal(isGone(await post("broken-only=", "x").catch((error: unknown) => error)), false);
  });

  it("a send that finds a member gone deletes that connection and its memberships, not the sender's", async () => {
    // Prepare: a live sender and a gone member, both in two rooms
    const parts = stores();
    const chat = chatWith(postToConnection(endpoint.url), parts);
    const sender = await parts.connections.put({ connectionId: "sender=", principal: "dev:s" });
    const ghost = await parts.connections.put({ connectionId: "ghost=", principal: "dev:g" });
    for (const room of ["g-one", "g-two"]) {
      await chat.join(sender, room);
      await chat.join(ghost, room);
    }
    endpoint.gone.add("ghost=");
    // Act
    const { report } = await chat.publish("g-one", { from: "dev:s", text: "hi" });
    // Assess
    assert.deepEqual(report.gone, ["ghost="]);
    assert.equal(await parts.connections.get("ghost="), undefined);
    for (const room of ["g-one", "g-two"]) {
      assert.deepEqual(
        (await parts.rooms.members(room)).map((member) => member.connectionId),
        ["sender="],
        `${room} keeps only the sender`,
      );
    }
    assert.ok(await parts.connections.get("sender="));
  });

  it("a message is stored before fan-out: it is in history even when no delivery succeeds", async () => {
    const parts = stores();
    const chat = chatWith(async () => {
      throw Object.assign(new Error("throttled"), { $metadata: { httpStatusCode: 429 } });
    }, parts);
    const member = await parts.connections.put({ connectionId: "unlucky=", principal: "dev:u" });
    await chat.join(member, "stored-first");
    const { message, report } = await chat.publish("stored-first", { from: "dev:u", text: "keep me" });
    assert.equal(report.delivered, 0);
    assert.equal(report.failed, 1);
    const history = await chat.history("stored-first", { limit: 10 });
    assert.deepEqual(
      history.messages.map((m) => m.messageId),
      [message.messageId],
    );
    assert.ok(await parts.connections.get("unlucky="), "a failed send is not a gone connection: kept");
  });

  it("a message that cannot be stored is sent to no one", async () => {
    const posted: string[] = [];
    const broken = stores(unreachableClient());
    const chat = chatWith(
      async (id) => {
        posted.push(id);
      },
      { ...stores(), messages: broken.messages },
    );
    const member = await stores().connections.put({ connectionId: "never=", principal: "dev:n" });
    await chat.join(member, "unstored");
    await assert.rejects(chat.publish("unstored", { from: "dev:n", text: "lost?" }));
    assert.deepEqual(posted, []);
  });

  it("the room limit is exact under concurrent joins, and a gone connection cannot join", async () => {
    const { connections } = stores();
    await connections.put({ connectionId: "joiner=", principal: "dev:j" });
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, index) => connections.addRoom("joiner=", `room-${index}`, 5)),
    );
    assert.equal(results.filter((result) => result.status === "fulfilled").length, 5);
    assert.ok(
      results.every((result) => result.status === "fulfilled" || result.reason instanceof RoomLimitError),
    );
    assert.equal((await connections.get("joiner="))?.rooms?.size, 5);
    const already = [...((await connections.get("joiner="))?.rooms ?? [])][0] as string;
    assert.equal((await connections.addRoom("joiner=", already, 5)).length, 5, "re-joining is allowed");
    await assert.rejects(connections.addRoom("nobody=", "room-x", 5), ConnectionGoneError);
    await store.client.send(
      new PutCommand({
        TableName: store.tables.ConnectionsTable as string,
        Item: { connectionId: "expired=", principal: "dev:x", connectedAt: 0, expiresAt: 1 },
      }),
    );
    await assert.rejects(connections.addRoom("expired=", "room-x", 5), ConnectionGoneError);
  });

  it("history: latest page, catch-up from a cursor with its overlap, paging with after, expiry", async () => {
    // Prepare: messages 1 s apart on a controlled clock
    let clock = Date.UTC(2026, 10, 21, 9, 0, 0);
    const { messages } = stores(store.client, () => clock);
    const ids: string[] = [];
    for (let index = 0; index < 12; index++) {
      clock += 1_000;
      ids.push((await messages.append({ room: "hist", from: "dev:h", text: `m${index}` })).messageId);
    }
    // Two in the same millisecond still sort in send order.
    ids.push((await messages.append({ room: "hist", from: "dev:h", text: "m12" })).messageId);
    assert.deepEqual([...ids].sort(), ids);

    // Latest
    const latest = await messages.history("hist", { limit: 3 });
    assert.deepEqual(
      latest.messages.map((m) => m.text),
      ["m10", "m11", "m12"],
    );
    // From a cursor: everything after it, starting HISTORY_OVERLAP_MS earlier
    const since = await messages.history("hist", { since: ids[8] as string, limit: 50 });
    const overlap = Math.floor(HISTORY_OVERLAP_MS / 1000);
    assert.deepEqual(
      since.messages.map((m) => m.messageId),
      ids.slice(8 - overlap),
    );
    assert.equal(since.hasMore, false);
    // Paging: after is exclusive and has no overlap; the pages join up with nothing twice
    const first = await messages.history("hist", { since: ids[8] as string, limit: 4 });
    assert.equal(first.hasMore, true);
    const second = await messages.history("hist", { after: first.cursor as string, limit: 50 });
    assert.deepEqual(
      [...first.messages, ...second.messages].map((m) => m.messageId),
      ids.slice(8 - overlap),
    );
    // Expired items are skipped before TTL deletes them
    clock += 8 * 86_400_000;
    assert.deepEqual((await messages.history("hist", { limit: 5 })).messages, []);
  });

  it("forgetting a connection removes its record and every membership", async () => {
    const parts = stores();
    const chat = chatWith(undefined, parts);
    const member = await parts.connections.put({ connectionId: "leaver=", principal: "dev:l" });
    for (const room of ["f-1", "f-2", "f-3"]) await chat.join(member, room);
    const old = await forgetConnection(parts, "leaver=");
    assert.deepEqual([...(old?.rooms ?? [])].sort(), ["f-1", "f-2", "f-3"]);
    for (const room of ["f-1", "f-2", "f-3"]) assert.deepEqual(await parts.rooms.members(room), []);
    assert.equal(await forgetConnection(parts, "leaver="), undefined, "twice is harmless");
  });

  it("the chat handler checks the size before any other work", async () => {
    process.env.GATEHOUSE_STAGE = "test";
    process.env.CONNECTIONS_TABLE = "unused";
    process.env.ROOM_MEMBERS_TABLE = "unused";
    process.env.MESSAGES_TABLE = "unused";
    process.env.USAGE_TABLE = "unused";
    process.env.GATEHOUSE_WS_ENDPOINT = endpoint.url;
    const { createChatHandler } = (await import("../../handlers/ws/chat.ts")) as ChatModule;
    let reads = 0;
    const parts = stores(unreachableClient());
    const counted = {
      ...parts.connections,
      get: async (id: string) => {
        reads++;
        return parts.connections.get(id);
      },
    };
    const handler = createChatHandler({
      gateway,
      chat: chatWith(undefined, parts),
      connections: counted,
      limiter: undefined,
    });
    const event = loadEvent<WsEvent>("wsChat.json");
    event.body = JSON.stringify({ action: "send", room: "big", text: "x".repeat(64 * 1024) });
    const result = await handler(event, lambdaContext());
    assert.equal(result.statusCode, 413);
    const frame = JSON.parse(result.body ?? "{}") as {
      error: { code: string; limit: number };
      action: string;
    };
    assert.equal(frame.error.code, "payload-too-large");
    assert.equal(frame.error.limit, gateway.websocket.chat.maxMessageBytes);
    assert.equal(frame.action, "send");
    assert.equal(reads, 0, "no store was touched");
  });

  it("chat actions need their scopes: send without chat:write is refused, with it sent", async () => {
    process.env.GATEHOUSE_STAGE = "test";
    process.env.USAGE_TABLE = "unused";
    const { createChatHandler } = (await import("../../handlers/ws/chat.ts")) as ChatModule;
    const parts = stores();
    const handler = createChatHandler({
      gateway,
      chat: chatWith(undefined, parts),
      connections: parts.connections,
      limiter: undefined,
    });
    const send = async (connectionId: string, scopes: string[]) => {
      const connection = await parts.connections.put({
        connectionId,
        principal: `dev:${connectionId}`,
        scopes,
      });
      await chatWith(undefined, parts).join(connection, "scoped-room");
      const event = loadEvent<WsEvent>("wsChat.json");
      event.requestContext.connectionId = connectionId;
      event.body = JSON.stringify({ action: "send", room: "scoped-room", text: "hi", ref: "r1" });
      return handler(event, lambdaContext());
    };
    const refused = await send("reader=", ["orders:read"]);
    const frame = JSON.parse(refused.body ?? "{}") as {
      error: { code: string; missing: string[] };
      ref: string;
    };
    assert.equal(frame.error.code, "missing-scope");
    assert.deepEqual(frame.error.missing, ["chat:write"]);
    assert.equal(frame.ref, "r1");
    const sent = await send("writer=", ["chat:write"]);
    assert.equal(JSON.parse(sent.body ?? "{}").type, "sent");
  });

  it("25 simultaneous messages from one connection: exactly its burst of 10 admitted, the rest 429", async () => {
    process.env.GATEHOUSE_STAGE = "test";
    process.env.USAGE_TABLE = store.tables.UsageTable as string;
    const { createChatHandler } = (await import("../../handlers/ws/chat.ts")) as ChatModule;
    const parts = stores();
    // The limiter's clock stands at a 2-second rate window's start: the 25 cannot straddle two.
    const windowStart = Math.floor(Date.now() / 2_000) * 2_000;
    const limiter = createLimiter({
      client: store.client,
      tableName: store.tables.UsageTable as string,
      now: () => windowStart,
    });
    const handler = createChatHandler({
      gateway,
      chat: chatWith(undefined, parts),
      connections: parts.connections,
      limiter,
    });
    const connectionId = `burst-${process.pid}=`;
    await parts.connections.put({ connectionId, principal: `dev:burst-${process.pid}`, scopes: [] });
    const event = () => {
      const e = loadEvent<WsEvent>("wsChat.json");
      e.requestContext.connectionId = connectionId;
      e.body = JSON.stringify({ action: "rooms" });
      return e;
    };
    const results = await Promise.all(Array.from({ length: 25 }, () => handler(event(), lambdaContext())));
    const types = results.map(
      (r) => JSON.parse(r.body ?? "{}") as { type: string; error?: { code: string } },
    );
    assert.equal(
      types.filter((t) => t.type === "rooms").length,
      gateway.limits?.websocket.perConnection?.burst,
    );
    assert.equal(
      types.filter((t) => t.error?.code === "rate-limited").length,
      25 - (gateway.limits?.websocket.perConnection?.burst ?? 0),
    );
  });

  it("the HTTP bridge is limited and metered: 12 posts at once on a burst of 10 → 10 × 201, 2 × 429", async () => {
    // Prepare: the rooms function as it loads on a cold start, over this store.
    Object.assign(process.env, {
      GATEHOUSE_STAGE: "test",
      USAGE_TABLE: store.tables.UsageTable,
      CONNECTIONS_TABLE: store.tables.ConnectionsTable,
      ROOM_MEMBERS_TABLE: store.tables.RoomMembersTable,
      MESSAGES_TABLE: store.tables.MessagesTable,
      GATEHOUSE_WS_ENDPOINT: endpoint.url,
    });
    const { createRoomsHandler } = await import("../../handlers/http/rooms.ts");
    const usageTable = store.tables.UsageTable as string;
    const windowStart = Math.floor(Date.now() / 2_000) * 2_000;
    const handler = createRoomsHandler({
      gateway,
      chat: chatWith(undefined, stores()),
      // The limiter's clock stands at a rate window's start: the 12 cannot straddle two windows.
      limiter: createLimiter({ client: store.client, tableName: usageTable, now: () => windowStart }),
      metering: createMetering({ client: store.client, tableName: usageTable }),
    });
    const keyId = `key_bridge${process.pid}`;
    const post = () => {
      const event = httpEvent({
        method: "POST",
        routeKey: "POST /rooms/{room}/messages",
        path: "/rooms/bridged/messages",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ text: "from a service" }),
        pathParameters: { room: "bridged" },
      });
      (event.requestContext as unknown as { authorizer: unknown }).authorizer = {
        lambda: { principal: "key:svc", authType: "apiKey", plan: "default", scopes: "chat:write", keyId },
      };
      return handler(event, lambdaContext("gatehouse-test-rooms", 28_000));
    };
    // Act
    const results = await Promise.all(Array.from({ length: 12 }, post));
    // Assess: the default plan's burst is 10.
    const statuses = results.map((r) => r.statusCode);
    assert.equal(statuses.filter((s) => s === 201).length, 10);
    assert.equal(statuses.filter((s) => s === 429).length, 2);
    for (const result of results) assert.ok(result.headers["ratelimit-limit"], "RateLimit-* on every answer");
    const today = new Date().toISOString().slice(0, 10);
    const [metered] = await createMetering({ client: store.client, tableName: usageTable }).forSubject(
      `key:${keyId}`,
      today,
      today,
    );
    assert.deepEqual(
      [metered?.route, metered?.requests, metered?.limited],
      ["POST /rooms/{room}/messages", 10, 2],
    );
  });
});
