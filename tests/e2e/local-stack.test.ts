import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import WebSocket from "ws";
import { ACTIONS } from "#shared/ws/protocol.ts";
import { devToken } from "../../plugins/dev-issuer.mjs";
import { isListening, DEMO_API_KEY as SEEDED_KEY } from "../../plugins/local-stack.mjs";
import { freePorts, type LocalStack, type LocalStackPorts, startLocalStack } from "../support/local-stack.ts";
import { ROOT } from "../support/serverless.ts";

// Free ports of its own, so neither a developer's `npm start` nor another run of the suite collides.
let PORTS: LocalStackPorts;
const CONNECTIONS = "gatehouse-local-connections";

function documents(stack: LocalStack) {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: stack.dynamodbEndpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    }),
  );
}

/** A WebSocket client that collects every frame it receives. */
async function openSocket(url: string, protocols?: string[]) {
  const socket = new WebSocket(url, protocols);
  const frames: Record<string, unknown>[] = [];
  socket.on("message", (data) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
  await new Promise((resolve, reject) => {
    socket.once("open", resolve);
    socket.once("error", reject);
  });
  /** Sends a message and waits (bounded) for the next frame. */
  const request = async (message: string) => {
    const count = frames.length;
    socket.send(message);
    await waitFor(() => frames.length > count, `a reply to ${message}`);
    return frames[count] as Record<string, unknown>;
  };
  return { socket, frames, request };
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("the local stack (npm start), over real sockets", () => {
  let stack: LocalStack;
  before(async () => {
    PORTS = await freePorts();
    stack = await startLocalStack(PORTS);
  });
  after(async () => {
    await stack?.stop();
  });

  it("GET /health answers 200 JSON with the request id and security headers", async () => {
    const response = await fetch(`${stack.httpUrl}/health`, { headers: { "x-request-id": "e2e-health-1" } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(response.headers.get("x-request-id"), "e2e-health-1");
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.status, "ok");
    assert.equal(body.stage, "local");
  });

  it("GET /keys/self: no key → 401, a bad key → 403, the seeded key → 200 with its identity", async () => {
    const self = (key?: string) =>
      fetch(`${stack.httpUrl}/keys/self`, key ? { headers: { "x-api-key": key } } : {});
    assert.equal((await self()).status, 401);
    assert.equal((await self("gh_not_a_key_anyone_was_given_0000")).status, 403);
    assert.equal((await self("garbage")).status, 403);
    const response = await self(SEEDED_KEY);
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      principal: "key:local-demo",
      authType: "apiKey",
      plan: "free",
      scopes: ["chat:write"],
      keyId: "key_local_demo",
    });
  });

  it("GET /me: no token → 401, bad, expired or foreign tokens → 403, a dev-issuer token → 200", async () => {
    const me = (token?: string) =>
      fetch(`${stack.httpUrl}/me`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    const token = (options: { sub: string; ttlSeconds?: number; audience?: string; port?: number }) =>
      devToken(ROOT, { port: PORTS.issuer, scope: "chat:write", ...options });

    assert.equal((await me()).status, 401);
    assert.equal((await me("not.a.token")).status, 403);
    assert.equal((await me(await token({ sub: "old", ttlSeconds: -120 }))).status, 403, "expired");
    assert.equal(
      (await me(await token({ sub: "aud", audience: "someone-else" }))).status,
      403,
      "wrong audience",
    );
    assert.equal((await me(await token({ sub: "iss", port: 1 }))).status, 403, "another issuer");

    const response = await me(await token({ sub: "alice" }));
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      principal: "dev:alice",
      authType: "jwt",
      plan: "default",
      scopes: ["chat:write"],
      issuer: "dev",
    });
  });

  it("admin: a gatehouse:admin token creates a key that then works; without the scope → 403", async () => {
    const create = (scope: string) =>
      devToken(ROOT, { port: PORTS.issuer, sub: "ops", scope }).then((token) =>
        fetch(`${stack.httpUrl}/admin/keys`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ owner: "e2e", plan: "pro", scopes: ["chat:write"] }),
        }),
      );
    assert.equal((await create("chat:write")).status, 403);
    const response = await create("gatehouse:admin");
    assert.equal(response.status, 201);
    const { key, keyId } = (await response.json()) as { key: string; keyId: string };
    const self = await fetch(`${stack.httpUrl}/keys/self`, { headers: { "x-api-key": key } });
    assert.equal(self.status, 200);
    assert.equal(((await self.json()) as { keyId: string }).keyId, keyId);
  });

  it("usage plans: a tiny-plan key turns into 429s with RateLimit headers, and GET /usage shows it", async () => {
    const token = await devToken(ROOT, { port: PORTS.issuer, sub: "ops", scope: "gatehouse:admin" });
    const newTinyKey = async () => {
      const created = await fetch(`${stack.httpUrl}/admin/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ owner: "e2e-tiny", plan: "tiny" }),
      });
      assert.equal(created.status, 201);
      return (await created.json()) as { key: string; keyId: string };
    };
    let key = "";
    let keyId = "";
    const get = (path: string) => fetch(`${stack.httpUrl}${path}`, { headers: { "x-api-key": key } });

    // tiny: 3 at once, then 1 a second; 5 a day, in 3-second rate windows (the stack's functions
    // share this machine's clock). The burst starts just after a window starts, but on a loaded
    // machine four sequential requests through the stack can still reach into the next window, which
    // would admit the fourth. Such a run says nothing exact about the burst: it is done again on a
    // new key (a fresh quota), and the exact assertions below hold for a run within one window.
    let burst: Response[] = [];
    const tries: number[] = [];
    while (tries.length < 3 && tries.at(-1) !== 1) {
      ({ key, keyId } = await newTinyKey());
      await new Promise((resolve) => setTimeout(resolve, 3_000 - (Date.now() % 3_000) + 20));
      const first = Math.floor(Date.now() / 3_000);
      burst = [];
      for (let i = 0; i < 4; i++) burst.push(await get("/v1/users/1"));
      tries.push(Math.floor(Date.now() / 3_000) - first + 1);
    }
    assert.equal(tries.at(-1), 1, `every burst of 4 spanned more than one 3 s window (windows: ${tries})`);
    assert.deepEqual(
      burst.map((r) => r.status),
      [200, 200, 200, 429],
    );
    assert.deepEqual(
      burst.map((r) => r.headers.get("ratelimit-remaining")),
      ["2", "1", "0", "0"],
    );
    const limited = burst[3] as Response;
    assert.equal(limited.headers.get("content-type"), "application/problem+json");
    assert.equal(((await limited.json()) as { type: string }).type, "urn:gatehouse:problem:rate-limited");
    const retryAfter = Number(limited.headers.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 3, `Retry-After ${retryAfter}`);
    assert.equal((await get("/v1/products/p-1")).status, 403, "the tiny plan does not include this route");

    await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 100));
    assert.equal((await get("/v1/users/2")).status, 200);
    assert.equal((await get("/v1/users/3")).status, 200);
    const quota = await get("/v1/users/1");
    assert.equal(quota.status, 429);
    assert.equal(((await quota.json()) as { type: string }).type, "urn:gatehouse:problem:quota-exceeded");

    const usage = await get("/usage");
    assert.equal(usage.status, 200);
    const body = (await usage.json()) as {
      subject: string;
      plan: string;
      quota: { limit: number; used: number; remaining: number };
      usage: { route: string; requests: number; limited: number }[];
    };
    assert.equal(body.subject, `key:${keyId}`);
    assert.equal(body.plan, "tiny");
    assert.deepEqual([body.quota.limit, body.quota.used, body.quota.remaining], [5, 5, 0]);
    const users = body.usage.find((record) => record.route === "GET /v1/users/{id}");
    assert.deepEqual([users?.requests, users?.limited], [5, 2]);

    const csv = await fetch(`${stack.httpUrl}/admin/usage?format=csv&subject=key:${keyId}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(csv.status, 200);
    assert.match(
      await csv.text(),
      new RegExp(
        `^day,subject,route,.*\\r\\n\\d{4}-\\d{2}-\\d{2},key:${keyId},GET /v1/users/\\{id\\},5,5,`,
        "s",
      ),
    );
  });

  it("proxies /v1 routes to the demo services with the caller's identity, and refuses path tricks", async () => {
    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${stack.httpUrl}${path}`, { headers: { "x-api-key": SEEDED_KEY, ...headers } });

    const user = await get("/v1/users/1");
    assert.equal(user.status, 200);
    assert.equal(((await user.json()) as { name: string }).name, "Ada Lovelace");
    assert.equal(
      (await fetch(`${stack.httpUrl}/v1/users/1`)).status,
      401,
      "the proxied route needs its API key",
    );

    const echo = await get("/v1/echo/a/b?x=1", {
      "x-gatehouse-principal": "forged",
      "x-request-id": "e2e-echo-1",
    });
    const seen = (await echo.json()) as { path: string; query: string; headers: Record<string, string> };
    assert.equal(seen.path, "/echo/a/b");
    assert.equal(seen.query, "?x=1");
    assert.equal(seen.headers["x-gatehouse-principal"], "key:local-demo", "the forged copy is replaced");
    assert.equal(seen.headers["x-gatehouse-key-id"], "key_local_demo");
    assert.equal(seen.headers["x-api-key"], undefined, "the gateway's credential stays at the gateway");
    assert.equal(seen.headers["x-request-id"], "e2e-echo-1");

    const v2 = (await (await get("/v1/users/1", { "x-api-version": "2" })).json()) as { path: string };
    assert.equal(v2.path, "/echo/v2/users/1", "x-api-version: 2 picks the route's second version");
    const old = await get("/v0/users/1");
    assert.equal(old.status, 200);
    assert.match(old.headers.get("deprecation") ?? "", /^@\d+$/);
    assert.equal(old.headers.get("sunset"), "Wed, 30 Jun 2027 00:00:00 GMT");

    const traversal = await get("/v1/users/..%2F..%2Fadmin");
    assert.equal(traversal.status, 400);
    assert.equal(traversal.headers.get("content-type"), "application/problem+json");
  });

  it("composes, maps and canaries: an aggregate answer, a v2 made by mapping, a canary side that sticks", async () => {
    const get = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${stack.httpUrl}${path}`, { headers: { "x-api-key": SEEDED_KEY, ...headers } });

    const summary = await get("/v1/users/1/summary");
    assert.equal(summary.status, 200);
    assert.deepEqual(await summary.json(), {
      id: "1",
      name: "Ada Lovelace",
      orders: [
        { id: "o-100", userId: "1", productId: "p-1", quantity: 2 },
        { id: "o-101", userId: "1", productId: "p-2", quantity: 1 },
      ],
      orderCount: 2,
    });
    const nobody = await get("/v1/users/404/summary");
    assert.equal(nobody.status, 404, "the required user call found nothing");
    assert.equal(nobody.headers.get("content-type"), "application/problem+json");

    const v2 = await get("/v2/orders?user=2");
    assert.equal(v2.status, 200);
    assert.equal(v2.headers.get("cache-control"), "private, max-age=30");
    assert.deepEqual(await v2.json(), {
      items: [{ id: "o-102", userId: "2", productId: "p-3", quantity: 5 }],
      count: 1,
    });

    // The demo key's side of the 10 % canary, five times over: always the same one.
    const sides = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const body = (await (await get("/v1/users")).json()) as { build?: string };
      sides.add(body.build ?? "stable");
    }
    assert.equal(sides.size, 1, `one side for one caller: ${[...sides].join(", ")}`);
    const forced = (await (await get("/v1/users", { "x-canary": "always" })).json()) as { build?: string };
    assert.equal(forced.build, "canary");
  });

  it("reaches a Lambda-backed service through the lambda upstream (serverless-offline's Lambda endpoint)", async () => {
    const get = (path: string) => fetch(`${stack.httpUrl}${path}`, { headers: { "x-api-key": SEEDED_KEY } });
    const product = await get("/v1/products/p-2");
    assert.equal(product.status, 200);
    assert.deepEqual(await product.json(), {
      id: "p-2",
      name: "Difference Engine",
      price: 1822,
      currency: "GBP",
      servedBy: "lambda",
      caller: "key:local-demo",
    });
    const missing = await get("/v1/products/p-404");
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("content-type"), "application/problem+json");
    const tricky = await get("/v1/products/..%2Fadmin");
    assert.equal(tricky.status, 400, "path rules hold for lambda upstreams too");
  });

  it("checks request bodies before anything goes upstream: 201, 400 naming fields, 415, 413; binary passes through", async () => {
    const post = (body: string | Buffer, contentType = "application/json", path = "/v1/orders") =>
      fetch(`${stack.httpUrl}${path}`, {
        method: "POST",
        headers: { "x-api-key": SEEDED_KEY, "content-type": contentType },
        body,
      });
    const created = await post(JSON.stringify({ productId: "p-2", quantity: 3 }));
    assert.equal(created.status, 201);
    assert.equal(((await created.json()) as { userId: string }).userId, "key:local-demo");

    const invalid = await post(JSON.stringify({ productId: "drop table", quantity: 0, extra: 1 }));
    assert.equal(invalid.status, 400);
    const fields = ((await invalid.json()) as { errors: { field: string }[] }).errors
      .map((error) => error.field)
      .sort();
    assert.deepEqual(fields, ["/", "/productId", "/quantity"]);

    assert.equal((await post("productId=p-1", "application/x-www-form-urlencoded")).status, 415);
    assert.equal((await post("{ not json")).status, 400);
    assert.equal(
      (await post(JSON.stringify({ productId: "p-1", quantity: 1, note: "x".repeat(20_000) }))).status,
      413,
    );

    const bytes = Buffer.from([0, 255, 1, 254, 127, 128, 10, 13]);
    const echoed = await post(bytes, "application/octet-stream", "/v1/echo/binary");
    assert.equal(echoed.status, 200);
    assert.equal(((await echoed.json()) as { body: string }).body, bytes.toString("base64"));
  });

  it("bad input: every answer is a 4XX, problem+json wherever the gateway answers, and nothing breaks", async () => {
    type Case = [
      method: string,
      path: string,
      contentType: string | null,
      body: string | null,
      headers?: Record<string, string>,
    ];
    const send = ([method, path, contentType, body, headers = {}]: Case) =>
      fetch(`${stack.httpUrl}${path}`, {
        method,
        headers: {
          "x-api-key": SEEDED_KEY,
          ...(contentType ? { "content-type": contentType } : {}),
          ...headers,
        },
        ...(body !== null ? { body } : {}),
      });
    // Answered by the gateway function: must be a 4XX problem+json with the request id.
    const gatewayCases: Case[] = [
      ["POST", "/v1/orders", "application/json", '{"productId": '],
      ["POST", "/v1/orders", "application/json", "[]"],
      ["POST", "/v1/orders", "application/json", "null"],
      ["POST", "/v1/orders", "application/json", '"just a string"'],
      ["POST", "/v1/orders", "application/json", "x".repeat(2_000_000)],
      ["POST", "/v1/orders", "text/plain", "hello"],
      ["POST", "/v1/orders", null, "{}"],
      ["POST", "/v1/orders", "application/json", '{"productId":"p-1","quantity":1e308}'],
      [
        "POST",
        "/v1/orders",
        "application/json",
        '{"__proto__":{"admin":true},"productId":"p-1","quantity":1}',
      ],
      ["GET", "/v1/users/%00", null, null],
      ["GET", "/v1/users/..%2F..%2Fetc%2Fpasswd", null, null],
      ["GET", "/v1/users/a%40evil.example", null, null],
      ["GET", "/v1/users/http%3A%2F%2F169.254.169.254", null, null],
      ["GET", "/v1/nowhere/at/all", null, null],
      ["PATCH", "/v1/users/1", "application/json", "{}"],
    ];
    for (const request of gatewayCases) {
      const response = await send(request);
      const label = `${request[0]} ${request[1].slice(0, 40)} ${String(request[3]).slice(0, 30)}`;
      assert.ok(response.status >= 400 && response.status < 500, `${label} → ${response.status}`);
      assert.equal(response.headers.get("content-type"), "application/problem+json", label);
      const problem = (await response.json()) as { status: number; requestId: string };
      assert.equal(problem.status, response.status, label);
      assert.ok(problem.requestId, label);
    }
    // Refused by the HTTP layer in front of the function (serverless-offline's here, API Gateway's on
    // AWS): a 4XX is all that is asked.
    const edgeCases: Case[] = [
      ["GET", "/v1/users/%", null, null],
      ["GET", "/v1/users/%E0%A4%A", null, null],
      ["GET", "/v1/users/1", null, null, { "x-huge": "h".repeat(20_000) }],
    ];
    for (const request of edgeCases) {
      const response = await send(request);
      assert.ok(response.status >= 400 && response.status < 500, `${request[1]} → ${response.status}`);
      await response.arrayBuffer();
    }
    assert.equal((await fetch(`${stack.httpUrl}/health`)).status, 200, "still healthy");
  });

  it("gateway faults: slow → 504, flapping → breaker opens (503 + Retry-After) → recovers", async () => {
    const get = (path: string) => fetch(`${stack.httpUrl}${path}`, { headers: { "x-api-key": SEEDED_KEY } });
    const slow = await get("/v1/slow");
    assert.equal(slow.status, 504);
    assert.equal(slow.headers.get("content-type"), "application/problem+json");

    const demo = `http://127.0.0.1:${PORTS.demo}`;
    await fetch(`${demo}/flaky/down`, { method: "POST" });
    for (let i = 0; i < 3; i++) assert.equal((await get("/v1/flaky")).status, 503, "the upstream's own 503");
    const open = await get("/v1/flaky");
    assert.equal(open.status, 503);
    assert.equal(open.headers.get("retry-after"), "5");
    assert.equal(((await open.json()) as { title: string }).title, "Service Unavailable");

    await fetch(`${demo}/flaky/up`, { method: "POST" });
    await new Promise((resolve) => setTimeout(resolve, 5_100)); // the config's halfOpenAfterMs
    assert.equal((await get("/v1/flaky")).status, 200, "half-open trial succeeds");
  });

  it("answers unknown routes 404 and wrong methods 405 (with Allow) as problem+json", async () => {
    const unknown = await fetch(`${stack.httpUrl}/v9/nothing`);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.headers.get("content-type"), "application/problem+json");
    const wrong = await fetch(`${stack.httpUrl}/v1/users`, { method: "DELETE" });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, HEAD");
  });

  it("created the tables from serverless.yml and seeded them", async () => {
    const client = documents(stack);
    const { Items = [] } = await client.send(new ScanCommand({ TableName: "gatehouse-local-api-keys" }));
    assert.ok(Items.some((item) => item.keyId === "key_local_demo"));
    assert.ok(Items.every((item) => typeof item.keyHash === "string" && /^[0-9a-f]{64}$/.test(item.keyHash)));
    client.destroy();
  });

  it("a WebSocket with a token connects, is tracked under its principal, answered, and forgotten on close", async () => {
    // Prepare
    const client = documents(stack);
    const tracked = async () =>
      (await client.send(new ScanCommand({ TableName: CONNECTIONS, ConsistentRead: true }))).Items ?? [];
    const before = (await tracked()).length;
    const token = await devToken(ROOT, { port: PORTS.issuer, sub: "wendy" });
    // Act: connect
    const { socket, request } = await openSocket(`${stack.wsUrl}?token=${encodeURIComponent(token)}`);
    // Assess: tracked
    await waitFor(async () => (await tracked()).length === before + 1, "the connection record");
    assert.ok((await tracked()).some((item) => item.principal === "dev:wendy"));

    const pong = await request(JSON.stringify({ action: "ping" }));
    assert.equal(pong.type, "pong");
    assert.match(String(pong.id), /^[0-9a-f-]{36}$/);

    const unknown = await request(JSON.stringify({ action: "dance" }));
    assert.equal(unknown.type, "error");
    assert.equal((unknown.error as { code: string }).code, "unknown-action");
    assert.deepEqual(unknown.actions, [...ACTIONS]);

    const garbage = await request("this is not json");
    assert.equal((garbage.error as { code: string }).code, "invalid-json");

    // Act: close; Assess: the record is deleted by $disconnect
    socket.close();
    await waitFor(async () => (await tracked()).length === before, "the connection record to be deleted");
    client.destroy();
  });

  it("$connect: no token → 401, a bad token → 403, neither writes a connection record", async () => {
    const client = documents(stack);
    const count = async () =>
      ((await client.send(new ScanCommand({ TableName: CONNECTIONS, ConsistentRead: true }))).Items ?? [])
        .length;
    const before = await count();
    const handshake = (url: string) =>
      new Promise<number>((resolve, reject) => {
        const socket = new WebSocket(url);
        socket.once("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0));
        socket.once("open", () => {
          socket.close();
          reject(new Error(`${url} was admitted`));
        });
        socket.once("error", () => undefined);
      });
    assert.equal(await handshake(stack.wsUrl), 401);
    assert.equal(await handshake(`${stack.wsUrl}?token=not.a.token`), 403);
    const foreign = await devToken(ROOT, { port: 1, sub: "mallory" });
    assert.equal(await handshake(`${stack.wsUrl}?token=${foreign}`), 403);
    assert.equal(await count(), before);
    client.destroy();
  });

  it("a browser-style client passes its token as a subprotocol and gets gatehouse.v1 back", async () => {
    const token = await devToken(ROOT, { port: PORTS.issuer, sub: "bea" });
    const { socket, request } = await openSocket(stack.wsUrl, ["gatehouse.v1", token]);
    assert.equal(socket.protocol, "gatehouse.v1");
    assert.equal((await request(JSON.stringify({ action: "ping" }))).type, "pong");
    socket.close();
  });

  it("Ctrl-C stops everything and frees the ports; starting again works at once", async () => {
    const stopped = await stack.stop();
    assert.ok(stopped.code === 0 || stopped.signal === "SIGINT", JSON.stringify(stopped));
    for (const port of Object.values(PORTS))
      assert.equal(await isListening(port), false, `port ${port} freed`);

    stack = await startLocalStack(PORTS);
    assert.equal((await fetch(`${stack.httpUrl}/health`)).status, 200);
  });
});

describe("the local stack with GATEHOUSE_DATA_DIR keeps data between runs", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "gatehouse-data-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it("an item written in one run is there in the next, and the seed is not written twice", async () => {
    const ports = await freePorts();
    const first = await startLocalStack(ports, { dataDir });
    try {
      const client = documents(first);
      await client.send(
        new PutCommand({ TableName: "gatehouse-local-usage", Item: { pk: "kept", sk: "1", n: 42 } }),
      );
      client.destroy();
    } finally {
      await first.stop();
    }

    const second = await startLocalStack(ports, { dataDir });
    try {
      assert.match(second.output(), /Seed\s+0 item\(s\) written this run/);
      const client = documents(second);
      const { Item } = await client.send(
        new GetCommand({ TableName: "gatehouse-local-usage", Key: { pk: "kept", sk: "1" } }),
      );
      assert.equal(Item?.n, 42);
      client.destroy();
    } finally {
      await second.stop();
    }
  });
});
