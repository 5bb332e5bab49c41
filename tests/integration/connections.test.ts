import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import type { WsEvent } from "#shared/middleware/ws-handler.ts";
import { connectionSlots } from "#shared/ws/connection-slots.ts";
import {
  CONNECTION_TTL_SECONDS,
  type ConnectionStore,
  connectionStore,
} from "#shared/ws/connection-store.ts";
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
  const saved = ["CONNECTIONS_TABLE", "ROOM_MEMBERS_TABLE", "USAGE_TABLE", "GATEHOUSE_STAGE"].map(
    (name) => [name, process.env[name]] as const,
  );
  const rooms = () => roomStore({ client: store.client, tableName: store.tables.RoomMembersTable as string });

  before(async () => {
    store = await startTestStore();
    table = store.tables.ConnectionsTable as string;
    // The handler modules read their configuration when imported, as on a cold start.
    process.env.CONNECTIONS_TABLE = table;
    process.env.ROOM_MEMBERS_TABLE = store.tables.RoomMembersTable as string;
    process.env.USAGE_TABLE = store.tables.UsageTable as string;
    process.env.GATEHOUSE_STAGE = "test";
    ({ createConnectHandler } = (await import("../../handlers/ws/connect.ts")) as ConnectModule);
    ({ createDisconnectHandler } = (await import("../../handlers/ws/disconnect.ts")) as DisconnectModule);
  });
  after(async () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    await store.stop();
  });

  const slots = (client = store.client) =>
    connectionSlots({ client, usageTable: store.tables.UsageTable as string, connectionsTable: table });
  /** The $connect handler over these stores, with a connection limit per principal. */
  const connectWith = (connections: ConnectionStore, maxConnectionsPerPrincipal = 10) =>
    createConnectHandler({ connections, slots: slots(), maxConnectionsPerPrincipal });

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
    const connect = connectWith(connections);
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
    const connect = connectWith(connectionStore({ client: store.client, tableName: table }));
    await connect(connectEvent("conn-anon="), lambdaContext());
    assert.equal(
      (await getItem(store.client, table, { connectionId: "conn-anon=" }))?.principal,
      "anonymous",
    );
  });

  it("a second record for the same connection id is refused, and the first is kept", async () => {
    const connect = connectWith(connectionStore({ client: store.client, tableName: table }));
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
    await connectWith(connections)(connectEvent("conn-b="), lambdaContext());
    const result = await createDisconnectHandler({ connections, rooms: rooms(), slots: slots() })(
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
    await connectWith(connections)(connectEvent("conn-live="), lambdaContext());
    assert.equal((await connections.get("conn-live="))?.connectionId, "conn-live=");
  });

  it("DynamoDB down: $connect refuses the connection (500) quickly; $disconnect still answers 200", async () => {
    const connections = connectionStore({ client: unreachableClient(), tableName: table });
    const connected = await connectWith(connections)(connectEvent("conn-x="), lambdaContext());
    assert.equal(connected.statusCode, 500);
    const disconnected = await createDisconnectHandler({
      connections,
      rooms: roomStore({ client: unreachableClient(), tableName: "x" }),
      slots: slots(unreachableClient()),
    })(disconnectEvent("conn-x="), lambdaContext());
    assert.equal(disconnected.statusCode, 200);
  });

  it("admits exactly the principal's maximum of connections when 12 handshakes arrive at once", async () => {
    // Prepare
    const connections = connectionStore({ client: store.client, tableName: table });
    const connect = connectWith(connections, 10);
    const principal = `user:many-${process.pid}`;
    // Act
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => connect(connectEvent(`many-${i}=`, principal), lambdaContext())),
    );
    // Assess
    const statuses = results.map((r) => r.statusCode);
    assert.equal(statuses.filter((s) => s === 200).length, 10);
    assert.equal(statuses.filter((s) => s === 429).length, 2);
    const refused = results.find((r) => r.statusCode === 429);
    assert.equal(JSON.parse(refused?.body ?? "{}").type, "urn:gatehouse:problem:too-many-connections");
    assert.equal((await slots().held(principal)).length, 10);
    assert.equal(
      (await connections.ofPrincipal(principal)).length,
      10,
      "a refused handshake leaves no record",
    );
  });

  it("frees a slot on $disconnect, and reclaims the slot of a connection that is gone without one", async () => {
    const connections = connectionStore({ client: store.client, tableName: table });
    const connect = connectWith(connections, 2);
    const principal = `user:two-${process.pid}`;
    await connect(connectEvent("two-a=", principal), lambdaContext());
    await connect(connectEvent("two-b=", principal), lambdaContext());
    assert.equal((await connect(connectEvent("two-c=", principal), lambdaContext())).statusCode, 429);
    // $disconnect of one: its slot is free again.
    await createDisconnectHandler({ connections, rooms: rooms(), slots: slots() })(
      disconnectEvent("two-a="),
      lambdaContext(),
    );
    assert.equal((await connect(connectEvent("two-d=", principal), lambdaContext())).statusCode, 200);
    // A connection that went away with no $disconnect (its record deleted by a 410 on a send).
    await connections.remove("two-b=");
    assert.equal((await connect(connectEvent("two-e=", principal), lambdaContext())).statusCode, 200);
    assert.deepEqual(await slots().held(principal), ["two-d=", "two-e="]);
  });

  it("records the scopes the connection was opened with", async () => {
    const connections = connectionStore({ client: store.client, tableName: table });
    const event = connectEvent("scoped=", "user:scoped");
    event.requestContext.authorizer = { principalId: "user:scoped", scopes: "chat:write orders:read" };
    await connectWith(connections)(event, lambdaContext());
    assert.deepEqual((await connections.get("scoped="))?.scopes, ["chat:write", "orders:read"]);
  });
});
