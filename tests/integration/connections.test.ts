import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { WsEvent } from "#shared/middleware/ws-handler.ts";
import { CONNECTION_TTL_SECONDS, connectionStore } from "#shared/ws/connection-store.ts";
import { roomStore } from "#shared/ws/room-store.ts";
import { getItem, startTestStore, type TestStore, unreachableClient } from "../support/dynamo.ts";
import { loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

type ConnectModule = typeof import("../../handlers/ws/connect.ts");
type DisconnectModule = typeof import("../../handlers/ws/disconnect.ts");

describe("connection tracking against dynalite", () => {
  let store: TestStore;
  let table: string;
  let createConnectHandler: ConnectModule["createConnectHandler"];
  let createDisconnectHandler: DisconnectModule["createDisconnectHandler"];
  const savedTable = process.env.CONNECTIONS_TABLE;
  const savedRoomsTable = process.env.ROOM_MEMBERS_TABLE;
  const rooms = () => roomStore({ client: store.client, tableName: store.tables.RoomMembersTable as string });

  before(async () => {
    store = await startTestStore();
    table = store.tables.ConnectionsTable as string;
    // The handler modules read their configuration when imported, as on a cold start.
    process.env.CONNECTIONS_TABLE = table;
    process.env.ROOM_MEMBERS_TABLE = store.tables.RoomMembersTable as string;
    ({ createConnectHandler } = (await import("../../handlers/ws/connect.ts")) as ConnectModule);
    ({ createDisconnectHandler } = (await import("../../handlers/ws/disconnect.ts")) as DisconnectModule);
  });
  after(async () => {
    if (savedTable === undefined) delete process.env.CONNECTIONS_TABLE;
    else process.env.CONNECTIONS_TABLE = savedTable;
    if (savedRoomsTable === undefined) delete process.env.ROOM_MEMBERS_TABLE;
    else process.env.ROOM_MEMBERS_TABLE = savedRoomsTable;
    await store.stop();
  });

  const connectEvent = (connectionId: string, principalId?: string) => {
    const event = loadEvent<WsEvent>("wsConnect.json");
    event.requestContext.connectionId = connectionId;
    if (principalId) event.requestContext.authorizer = { principalId };
    return event;
  };
  const disconnectEvent = (connectionId: string) => {
    const event = loadEvent<WsEvent>("wsDisconnect.json");
    event.requestContext.connectionId = connectionId;
    return event;
  };

  it("$connect writes the connection with its principal and an expiry past API Gateway's 2 hours", async () => {
    // Prepare
    const connections = connectionStore({ client: store.client, tableName: table });
    const connect = createConnectHandler({ connections });
    const before = Math.floor(Date.now() / 1000);
    // Act
    const result = await connect(connectEvent("conn-a=", "user:alice"), lambdaContext());
    // Assess
    assert.equal(result.statusCode, 200);
    const item = await getItem(store.client, table, { connectionId: "conn-a=" });
    assert.equal(item?.principal, "user:alice");
    assert.equal(item?.sourceIp, "203.0.113.10");
    assert.ok(item && item.expiresAt >= before + CONNECTION_TTL_SECONDS && item.expiresAt > before + 7200);
  });

  it("$connect without an authorizer records the connection as anonymous", async () => {
    const connect = createConnectHandler({
      connections: connectionStore({ client: store.client, tableName: table }),
    });
    await connect(connectEvent("conn-anon="), lambdaContext());
    assert.equal(
      (await getItem(store.client, table, { connectionId: "conn-anon=" }))?.principal,
      "anonymous",
    );
  });

  it("a second record for the same connection id is refused, and the first is kept", async () => {
    const connect = createConnectHandler({
      connections: connectionStore({ client: store.client, tableName: table }),
    });
    await connect(connectEvent("conn-dup=", "user:first"), lambdaContext());
    const result = await connect(connectEvent("conn-dup=", "user:second"), lambdaContext());
    assert.equal(result.statusCode, 500);
    assert.equal(
      (await getItem(store.client, table, { connectionId: "conn-dup=" }))?.principal,
      "user:first",
    );
  });

  it("$disconnect deletes the record", async () => {
    const connections = connectionStore({ client: store.client, tableName: table });
    await createConnectHandler({ connections })(connectEvent("conn-b="), lambdaContext());
    const result = await createDisconnectHandler({ connections, rooms: rooms() })(
      disconnectEvent("conn-b="),
      lambdaContext(),
    );
    assert.equal(result.statusCode, 200);
    assert.equal(await getItem(store.client, table, { connectionId: "conn-b=" }), undefined);
  });

  it("reads ignore an expired record that TTL has not deleted yet", async () => {
    const connections = connectionStore({ client: store.client, tableName: table });
    const past = Math.floor(Date.now() / 1000) - 60;
    await store.client.send(
      new PutCommand({
        TableName: table,
        Item: { connectionId: "conn-old=", principal: "p", connectedAt: 0, expiresAt: past },
      }),
    );
    assert.equal(await connections.get("conn-old="), undefined);
    await createConnectHandler({ connections })(connectEvent("conn-live="), lambdaContext());
    assert.equal((await connections.get("conn-live="))?.connectionId, "conn-live=");
  });

  it("DynamoDB down: $connect refuses the connection (500) quickly; $disconnect still answers 200", async () => {
    const connections = connectionStore({ client: unreachableClient(), tableName: table });
    const started = Date.now();
    const connected = await createConnectHandler({ connections })(connectEvent("conn-x="), lambdaContext());
    assert.equal(connected.statusCode, 500);
    assert.ok(Date.now() - started < 5_000, "the SDK timeouts bound the wait");
    const disconnected = await createDisconnectHandler({
      connections,
      rooms: roomStore({ client: unreachableClient(), tableName: "x" }),
    })(disconnectEvent("conn-x="), lambdaContext());
    assert.equal(disconnected.statusCode, 200);
  });
});
