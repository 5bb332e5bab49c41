import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createSocket, type Socket } from "node:dgram";
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { postToConnection } from "#shared/clients/websocket-management.ts";
import { resetEnvCache } from "#shared/config/env.ts";
import { defineGateway, loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/gateway-handler.ts";
import type { HttpResult } from "#shared/http.ts";
import type { WsEvent } from "#shared/middleware/ws-handler.ts";
import { principalHash, resetTracing } from "#shared/observability/tracer.ts";
import { createLimiter } from "#shared/quota/limiter.ts";
import { createMetering } from "#shared/quota/metering.ts";
import { createChat } from "#shared/ws/chat.ts";
import { connectionStore } from "#shared/ws/connection-store.ts";
import { messageStore } from "#shared/ws/message-store.ts";
import { roomStore } from "#shared/ws/room-store.ts";
import definition from "../../gateway.config.ts";
import { startTestStore, type TestStore } from "../support/dynamo.ts";
import { captureEmf } from "../support/emf.ts";
import { httpEvent, loadEvent } from "../support/events.ts";
import { lambdaContext } from "../support/lambda-context.ts";

/** A segment document as the X-Ray SDK sends it to the daemon (one per closed subsegment in Lambda). */
interface XrayDocument {
  id: string;
  name: string;
  trace_id: string;
  parent_id: string;
  type?: string;
  namespace?: string;
  annotations?: Record<string, string | number | boolean>;
  metadata?: Record<string, Record<string, unknown>>;
  aws?: Record<string, unknown>;
  http?: { request?: { method?: string; url?: string }; response?: { status?: number } };
  fault?: boolean;
  error?: boolean;
}

/**
 * A stand-in X-Ray daemon: a UDP socket on a free port, keeping every document the SDK sends
 * (`{"format":"json","version":1}\n{…}`), and the raw text, to search for what must never be there.
 */
async function fakeDaemon() {
  const socket: Socket = createSocket("udp4");
  const documents: XrayDocument[] = [];
  const raw: string[] = [];
  socket.on("message", (message) => {
    const text = message.toString("utf8");
    raw.push(text);
    const body = text.slice(text.indexOf("\n") + 1);
    documents.push(JSON.parse(body) as XrayDocument);
  });
  socket.bind(0, "127.0.0.1");
  await once(socket, "listening");
  return {
    address: `127.0.0.1:${(socket.address() as AddressInfo).port}`,
    documents,
    raw,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/** A new X-Ray trace id, as Lambda gives one per invocation in `_X_AMZN_TRACE_ID`. */
const newTraceId = () => `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString("hex")}`;

const SECRET_KEY = "gh_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const SECRET_TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJlLW5vdC1yZWFs";
const PRINCIPAL = "key:acme-integrations";

/**
 * Tracing against real segments: the gateway and chat handlers run in-process as Lambda would run them
 * under X-Ray (Lambda mode: `LAMBDA_TASK_ROOT`, `_X_AMZN_TRACE_ID` per invocation), with the X-Ray
 * SDK sending to a fake daemon on a free UDP port; DynamoDB is a real dynalite, the upstream a real
 * server, the management endpoint a stand-in speaking the real protocol.
 */
describe("tracing: the subsegments of a proxied, an aggregated and a chat request", () => {
  const savedEnv = { ...process.env };
  let daemon: Awaited<ReturnType<typeof fakeDaemon>>;
  let store: TestStore;
  let upstream: Server;
  let upstreamUrl: string;
  /** What the upstream received, by path. */
  const received: { path: string; headers: IncomingHttpHeaders }[] = [];

  before(async () => {
    daemon = await fakeDaemon();
    Object.assign(process.env, {
      AWS_EXECUTION_ENV: "AWS_Lambda_nodejs24.x",
      LAMBDA_TASK_ROOT: "/var/task",
      AWS_XRAY_DAEMON_ADDRESS: daemon.address,
      AWS_XRAY_CONTEXT_MISSING: "IGNORE_ERROR",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_REGION: "us-east-1",
      POWERTOOLS_SERVICE_NAME: "gatehouse",
      AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    });
    delete process.env.POWERTOOLS_TRACE_ENABLED;
    process.env._X_AMZN_TRACE_ID = `Root=${newTraceId()};Parent=${randomBytes(8).toString("hex")};Sampled=1`;
    resetEnvCache();
    resetTracing();
    captureEmf(); // keep the EMF records off the test output
    store = await startTestStore(); // its client is made with tracing on: captured
    upstream = createServer((request, response) => {
      received.push({ path: request.url ?? "", headers: request.headers });
      // The first request to /flaky is answered 503, every later one 200.
      if (request.url === "/flaky" && received.filter((seen) => seen.path === "/flaky").length === 1) {
        response.writeHead(503).end();
        return;
      }
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
    });
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  });
  after(async () => {
    mock.restoreAll();
    process.env = savedEnv;
    resetEnvCache();
    resetTracing();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
    await store.stop();
    await daemon.close();
  });

  /** Runs `invoke` as one traced invocation and returns the documents of its trace once all are in. */
  async function traced<T>(functionName: string, invoke: () => Promise<T>) {
    const traceId = newTraceId();
    const lambdaParent = randomBytes(8).toString("hex");
    process.env._X_AMZN_TRACE_ID = `Root=${traceId};Parent=${lambdaParent};Sampled=1`;
    const result = await invoke();
    const handlerName = `## ${functionName}`;
    const ofTrace = () => daemon.documents.filter((document) => document.trace_id === traceId);
    // The handler's subsegment closes last; UDP may still be delivering the others.
    for (let waited = 0; waited < 3_000; waited += 20) {
      if (ofTrace().some((document) => document.name === handlerName)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
    const documents = ofTrace();
    const root = documents.find((document) => document.name === handlerName);
    assert.ok(root, `the ${handlerName} subsegment was sent`);
    assert.equal(root.parent_id, lambdaParent, "the handler's subsegment hangs under Lambda's segment");
    const raw = daemon.raw.filter((text) => text.includes(traceId)).join("\n");
    return { result, documents, root, raw, traceId };
  }

  const gatewayHandler = () => {
    const gateway = loadGateway(
      defineGateway(() => ({
        auth: {},
        upstreams: {
          catalog: { targets: [{ url: upstreamUrl }], retries: 0 },
          reviews: { targets: [{ url: upstreamUrl }], retries: 0 },
          flaky: { targets: [{ url: upstreamUrl }], retries: 1 },
        },
        limits: { plans: { gold: { quota: { limit: 1_000, period: "day" } }, default: {}, anonymous: {} } },
        routes: {
          "GET /items/{id}": {
            auth: { apiKey: {} },
            proxy: { upstream: "catalog", path: "/items/{id}" },
            limit: {},
          },
          "GET /flaky": { auth: "public", proxy: { upstream: "flaky", path: "/flaky" } },
          "GET /overview/{id}": {
            auth: "public",
            aggregate: {
              calls: {
                item: { upstream: "catalog", path: "/items/{id}" },
                reviews: { upstream: "reviews", path: "/reviews/{id}" },
              },
            },
          },
        },
      })),
      "test",
    );
    const table = store.tables.UsageTable as string;
    return createGatewayHandler(gateway, {
      limiter: createLimiter({ client: store.client, tableName: table }),
      metering: createMetering({ client: store.client, tableName: table }),
    });
  };

  /** The attempt subsegments of a trace: children of the handler's, in the `remote` namespace. */
  const attempts = (documents: XrayDocument[], root: XrayDocument) =>
    documents.filter((document) => document.parent_id === root.id && document.namespace === "remote");

  /** Asserts an upstream request carried the trace context of `span`, in both notations. */
  function assertPropagated(headers: IncomingHttpHeaders, traceId: string, span: XrayDocument) {
    assert.equal(headers["x-amzn-trace-id"], `Root=${traceId};Parent=${span.id};Sampled=1`);
    assert.equal(headers.traceparent, `00-${traceId.slice(2).replace("-", "")}-${span.id}-01`);
    assert.equal(headers.tracestate, undefined, "a client's tracestate is not forwarded");
  }

  it("a proxied request: the upstream attempt and the limiter's DynamoDB calls, annotated, no secret", async () => {
    // Prepare
    const handler = gatewayHandler();
    const event = httpEvent({
      method: "GET",
      routeKey: "GET /items/{id}",
      path: "/items/42",
      pathParameters: { id: "42" },
      headers: {
        "x-api-key": SECRET_KEY,
        authorization: `Bearer ${SECRET_TOKEN}`,
        // A client's trace context, which must not reach the upstream.
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        tracestate: "vendor=injected",
        "x-amzn-trace-id": "Root=1-00000001-000000000000000000000001;Parent=0000000000000001;Sampled=1",
        "x-request-id": "req-proxied-1",
      },
    });
    (event.requestContext as unknown as { authorizer: unknown }).authorizer = {
      lambda: { principal: PRINCIPAL, authType: "apiKey", plan: "gold", scopes: "", keyId: "kid-1" },
    };
    received.length = 0;

    // Act
    const { result, documents, root, raw, traceId } = await traced("gatehouse-test-gateway", () =>
      handler(event, lambdaContext("gatehouse-test-gateway")),
    );

    // Assess: the answer, and the handler's annotations (route, plan, principal hash, request id)
    assert.equal((result as HttpResult).statusCode, 200);
    assert.equal(root.annotations?.route, "GET /items/{id}");
    assert.equal(root.annotations?.plan, "gold");
    assert.equal(root.annotations?.principalHash, principalHash(PRINCIPAL));
    assert.match(String(root.annotations?.principalHash), /^[0-9a-f]{16}$/);
    assert.equal(root.annotations?.requestId, "req-proxied-1");
    assert.equal(root.annotations?.status, 200);
    assert.equal(root.annotations?.ColdStart, true, "the container's first traced invocation");
    // One attempt, named by upstream and target, with its outcome
    const [attempt, ...others] = attempts(documents, root);
    assert.ok(attempt);
    assert.equal(others.length, 0);
    const target = new URL(upstreamUrl).host;
    assert.equal(attempt.name, `catalog ${target}`);
    assert.deepEqual(
      {
        upstream: attempt.annotations?.upstream,
        target: attempt.annotations?.target,
        attempt: attempt.annotations?.attempt,
        circuit: attempt.annotations?.circuit,
        outcome: attempt.annotations?.outcome,
        retried: attempt.annotations?.retried,
        status: attempt.annotations?.status,
      },
      {
        upstream: "catalog",
        target,
        attempt: 1,
        circuit: "closed",
        outcome: "answered",
        retried: false,
        status: 200,
      },
    );
    assert.equal(attempt.http?.request?.url, `${upstreamUrl}/items/42`);
    // The limiter's counting and the metering: DynamoDB subsegments under the handler's
    const dynamo = documents.filter((document) => document.name === "DynamoDB");
    assert.ok(dynamo.length >= 1, "at least the usage counter's UpdateItem");
    for (const call of dynamo) {
      assert.equal(call.parent_id, root.id);
      assert.equal(call.namespace, "aws");
      assert.equal(call.aws?.table_name, store.tables.UsageTable);
    }
    // The upstream got the gateway's trace context for this attempt, not the client's
    const [sent] = received;
    assert.ok(sent);
    assertPropagated(sent.headers, traceId, attempt);
    // No credential and not the principal itself, anywhere in what was sent to X-Ray
    for (const secret of [SECRET_KEY, SECRET_TOKEN, PRINCIPAL, "kid-1"]) {
      assert.equal(raw.includes(secret), false, `${secret} is not in the trace`);
    }
  });

  it("an aggregated request: a subsegment per call, each call's own trace context upstream", async () => {
    // Prepare
    const handler = gatewayHandler();
    const event = httpEvent({
      method: "GET",
      routeKey: "GET /overview/{id}",
      path: "/overview/7",
      pathParameters: { id: "7" },
      headers: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" },
    });
    received.length = 0;

    // Act
    const { result, documents, root, traceId } = await traced("gatehouse-test-gateway", () =>
      handler(event, lambdaContext("gatehouse-test-gateway")),
    );

    // Assess
    assert.equal((result as HttpResult).statusCode, 200);
    assert.equal(root.annotations?.route, "GET /overview/{id}");
    assert.equal(root.annotations?.principalHash, undefined, "a public route has no caller");
    assert.equal(root.annotations?.ColdStart, false);
    const calls = attempts(documents, root);
    const target = new URL(upstreamUrl).host;
    assert.deepEqual(calls.map((call) => call.name).sort(), [`catalog ${target}`, `reviews ${target}`]);
    for (const call of calls) assert.equal(call.annotations?.outcome, "answered");
    const spanOf = (upstreamName: string) =>
      calls.find((call) => call.annotations?.upstream === upstreamName) as XrayDocument;
    const itemRequest = received.find((request) => request.path === "/items/7");
    const reviewsRequest = received.find((request) => request.path === "/reviews/7");
    assert.ok(itemRequest && reviewsRequest);
    assertPropagated(itemRequest.headers, traceId, spanOf("catalog"));
    assertPropagated(reviewsRequest.headers, traceId, spanOf("reviews"));
  });

  it("a retried request: one subsegment per attempt, the first unhealthy and retried", async () => {
    // Prepare
    const handler = gatewayHandler();
    received.length = 0;
    // Act
    const { result, documents, root, traceId } = await traced("gatehouse-test-gateway", () =>
      handler(
        httpEvent({ method: "GET", routeKey: "GET /flaky", path: "/flaky" }),
        lambdaContext("gatehouse-test-gateway"),
      ),
    );
    // Assess
    assert.equal((result as HttpResult).statusCode, 200);
    const [first, second] = attempts(documents, root).sort(
      (a, b) => Number(a.annotations?.attempt) - Number(b.annotations?.attempt),
    );
    assert.ok(first && second);
    assert.deepEqual(
      [first.annotations?.outcome, first.annotations?.retried, first.annotations?.status, first.fault],
      ["unhealthy", true, 503, true],
    );
    assert.deepEqual(
      [second.annotations?.attempt, second.annotations?.outcome, second.annotations?.retried],
      [2, "answered", false],
    );
    // Each attempt sent its own span as the parent
    assert.equal(received.length, 2);
    assertPropagated(received[0]?.headers as IncomingHttpHeaders, traceId, first);
    assertPropagated(received[1]?.headers as IncomingHttpHeaders, traceId, second);
  });

  it("a chat send: the connection read, the room query, the history write and a PostToConnection per member", async () => {
    // Prepare: a stand-in management endpoint, two members of a room, the handler over dynalite
    const posted: string[] = [];
    const management = createServer((request, response) => {
      posted.push(decodeURIComponent(request.url?.split("/@connections/")[1] ?? ""));
      request.resume();
      request.on("end", () => response.writeHead(200).end());
    });
    management.listen(0, "127.0.0.1");
    await once(management, "listening");
    const endpoint = `http://127.0.0.1:${(management.address() as AddressInfo).port}`;
    Object.assign(process.env, {
      GATEHOUSE_STAGE: "test",
      CONNECTIONS_TABLE: store.tables.ConnectionsTable,
      ROOM_MEMBERS_TABLE: store.tables.RoomMembersTable,
      MESSAGES_TABLE: store.tables.MessagesTable,
      USAGE_TABLE: store.tables.UsageTable,
      GATEHOUSE_WS_ENDPOINT: endpoint,
    });
    resetEnvCache();
    const { createChatHandler } = await import("../../handlers/ws/chat.ts");
    const gateway = loadGateway(definition, "test");
    const connections = connectionStore({
      client: store.client,
      tableName: store.tables.ConnectionsTable as string,
    });
    const chat = createChat({
      connections,
      rooms: roomStore({ client: store.client, tableName: store.tables.RoomMembersTable as string }),
      messages: messageStore({
        client: store.client,
        tableName: store.tables.MessagesTable as string,
        retentionDays: 1,
      }),
      post: postToConnection(endpoint),
      config: gateway.websocket.chat,
    });
    const event = loadEvent<WsEvent>("wsChat.json");
    const sender = event.requestContext.connectionId;
    const scopes = [...new Set(Object.values(gateway.websocket.chat.scopes).flat())];
    for (const connectionId of [sender, "member-2="]) {
      await connections.put({ connectionId, principal: PRINCIPAL, scopes });
      await chat.join(
        (await connections.get(connectionId)) as NonNullable<Awaited<ReturnType<typeof connections.get>>>,
        "lobby",
      );
    }
    (event.requestContext as { authorizer?: unknown }).authorizer = { principalId: PRINCIPAL, plan: "gold" };
    const handler = createChatHandler({ gateway, chat, connections, limiter: undefined });

    // Act
    const { result, documents, root, raw } = await traced("gatehouse-test-wsChat", () =>
      handler(event, lambdaContext("gatehouse-test-wsChat")),
    );
    await new Promise<void>((resolve) => management.close(() => resolve()));

    // Assess
    assert.equal(result.statusCode, 200, result.body);
    assert.equal(root.annotations?.route, "send");
    assert.equal(root.annotations?.principalHash, principalHash(PRINCIPAL));
    assert.equal(root.annotations?.plan, "gold");
    assert.equal(root.annotations?.requestId, event.requestContext.requestId);
    const posts = documents.filter((document) => document.name === "ApiGatewayManagementApi");
    assert.deepEqual(posted.sort(), [sender, "member-2="].sort());
    assert.equal(posts.length, 2, "a subsegment per PostToConnection");
    for (const post of posts) {
      assert.equal(post.parent_id, root.id);
      assert.equal(post.aws?.operation, "PostToConnection");
      assert.equal(post.http?.response?.status, 200);
    }
    const tables = new Set(
      documents
        .filter((document) => document.name === "DynamoDB")
        .map((document) => document.aws?.table_name),
    );
    assert.ok(tables.has(store.tables.ConnectionsTable), "the sender's connection was read");
    assert.ok(tables.has(store.tables.RoomMembersTable), "the room's members were queried");
    assert.ok(tables.has(store.tables.MessagesTable), "the message was kept for history");
    assert.equal(raw.includes(PRINCIPAL), false, "the principal is only there as its hash");
  });
});
