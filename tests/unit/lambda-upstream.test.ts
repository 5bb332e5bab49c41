import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { HttpError } from "#shared/errors.ts";
import { createLambdaUpstreamClient, functionName } from "#shared/upstream/lambda-client.ts";

/**
 * The `lambda` upstream kind against a fault-injecting stand-in for the AWS Lambda client (AWS itself
 * cannot run here; the real invoke path runs end to end through serverless-offline's Lambda endpoint).
 */
type Reply = { Payload?: Uint8Array; FunctionError?: string } | Error | (() => Promise<never>);

function fakeClient(replies: Reply[]) {
  const sent: { input: InvokeCommand["input"]; signal?: AbortSignal }[] = [];
  const client = {
    send: async (command: InvokeCommand, options?: { abortSignal?: AbortSignal }) => {
      sent.push({ input: command.input, ...(options?.abortSignal ? { signal: options.abortSignal } : {}) });
      const reply = replies.shift() ?? new Error("no more replies");
      if (typeof reply === "function") return reply();
      if (reply instanceof Error) throw reply;
      return { StatusCode: 200, ...reply };
    },
  } as unknown as LambdaClient;
  return { client, sent };
}
const payload = (value: unknown) => ({ Payload: Buffer.from(JSON.stringify(value)) });

const options = {
  name: "catalog",
  function: "catalog",
  timeoutMs: 200,
  retries: 1,
  breaker: { consecutiveFailures: 2, halfOpenAfterMs: 60_000 },
  maxResponseBytes: 1_000,
  functionPrefix: "gatehouse-test-",
};
const get = {
  method: "GET",
  path: "/products/p-1",
  headers: { "x-request-id": "r-1" },
  params: { id: "p-1" },
};
const statusOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof HttpError, String(error));
    return error.statusCode;
  }
  assert.fail("expected a failure");
};

describe("lambda upstream", () => {
  it("invokes the deployed function with an API Gateway v2 event and reads its HTTP result", async () => {
    const { client, sent } = fakeClient([
      payload({ statusCode: 201, headers: { "Content-Type": "application/json" }, body: '{"ok":true}' }),
    ]);
    const call = createLambdaUpstreamClient({ ...options, payload: "http", client });
    const response = await call({ ...get, query: "a=1" });
    assert.deepEqual([response.status, response.body.toString()], [201, '{"ok":true}']);
    assert.equal(response.headers["content-type"], "application/json");
    assert.equal(sent[0]?.input.FunctionName, "gatehouse-test-catalog");
    const event = JSON.parse(Buffer.from(sent[0]?.input.Payload as Uint8Array).toString());
    assert.equal(event.version, "2.0");
    assert.equal(event.rawPath, "/products/p-1");
    assert.equal(event.rawQueryString, "a=1");
    assert.equal(event.requestContext.requestId, "r-1");
    assert.deepEqual(event.pathParameters, { id: "p-1" });
    assert.ok(sent[0]?.signal, "the attempt's timeout reaches the SDK as an abort signal");
  });

  it("treats a result without statusCode as a 200 JSON body, as API Gateway does, and decodes base64", async () => {
    const { client } = fakeClient([
      payload({ hello: "world" }),
      payload({ statusCode: 200, body: Buffer.from([0, 1, 2]).toString("base64"), isBase64Encoded: true }),
    ]);
    const call = createLambdaUpstreamClient({ ...options, payload: "http", client });
    const plain = await call(get);
    assert.deepEqual([plain.status, JSON.parse(plain.body.toString())], [200, { hello: "world" }]);
    const binary = await call(get);
    assert.deepEqual([...binary.body], [0, 1, 2]);
  });

  it("sends the json payload and answers the function's return value as the body", async () => {
    const { client, sent } = fakeClient([payload([1, 2, 3])]);
    const call = createLambdaUpstreamClient({ ...options, payload: "json", client });
    const response = await call({
      ...get,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: Buffer.from('{"q":1}'),
    });
    assert.deepEqual(JSON.parse(response.body.toString()), [1, 2, 3]);
    const event = JSON.parse(Buffer.from(sent[0]?.input.Payload as Uint8Array).toString());
    assert.deepEqual(event.body, { q: 1 });
    assert.deepEqual(event.params, { id: "p-1" });
  });

  it("answers a function error or a broken result with 502, retrying idempotent calls once", async () => {
    const { client, sent } = fakeClient([
      { FunctionError: "Unhandled", ...payload({ errorMessage: "boom" }) },
      { FunctionError: "Unhandled", ...payload({ errorMessage: "boom" }) },
    ]);
    const call = createLambdaUpstreamClient({ ...options, payload: "http", client });
    assert.equal(await statusOf(call(get)), 502);
    assert.equal(sent.length, 2, "GET retried once");
    for (const broken of [
      { Payload: Buffer.from("not json") },
      payload({ statusCode: 99 }),
      payload({ statusCode: 200, body: 5 }),
    ]) {
      const single = fakeClient([broken]);
      const post = createLambdaUpstreamClient({
        ...options,
        retries: 0,
        payload: "http",
        client: single.client,
      });
      assert.equal(await statusOf(post({ ...get, method: "POST" })), 502);
    }
  });

  it("does not retry a POST, times out with 504, caps the size with 502, and opens the circuit (503)", async () => {
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "TooManyRequestsException" });
    const post = fakeClient([throttled]);
    const once = createLambdaUpstreamClient({ ...options, payload: "http", client: post.client });
    assert.equal(await statusOf(once({ ...get, method: "POST" })), 502);
    assert.equal(post.sent.length, 1);

    const hang = () => new Promise<never>(() => undefined);
    const slow = fakeClient([hang, hang]);
    const timed = createLambdaUpstreamClient({ ...options, payload: "http", client: slow.client });
    assert.equal(await statusOf(timed(get)), 504);

    const big = fakeClient([payload({ statusCode: 200, body: "x".repeat(2_000) })]);
    const capped = createLambdaUpstreamClient({ ...options, payload: "http", client: big.client });
    assert.equal(await statusOf(capped(get)), 502);

    // Two consecutive failures open this target's circuit; the next call is refused without an invoke.
    const failing = fakeClient([new Error("a"), new Error("b"), new Error("c")]);
    const breaker = createLambdaUpstreamClient({
      ...options,
      retries: 0,
      payload: "http",
      client: failing.client,
    });
    assert.equal(await statusOf(breaker(get)), 502);
    assert.equal(await statusOf(breaker(get)), 502);
    assert.equal(await statusOf(breaker(get)), 503);
    assert.equal(failing.sent.length, 2);
  });

  it("sends the cookie header as the event's cookies array, as API Gateway does, with no cookie header", async () => {
    const { client, sent } = fakeClient([payload({ statusCode: 204 })]);
    const call = createLambdaUpstreamClient({ ...options, payload: "http", client });
    await call({ ...get, headers: { ...get.headers, cookie: "theme=dark; session=s3cr3t" } });
    const event = JSON.parse(Buffer.from(sent[0]?.input.Payload as Uint8Array).toString());
    assert.deepEqual(event.cookies, ["theme=dark", "session=s3cr3t"]);
    assert.equal(event.headers.cookie, undefined);
  });

  it("returns each of the function's cookies as its own Set-Cookie, a set-cookie header among them", async () => {
    const cookies = ["theme=dark; Path=/", "visited=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; Path=/"];
    const { client } = fakeClient([
      payload({ statusCode: 200, headers: { "Set-Cookie": "legacy=1; Path=/" }, cookies, body: "" }),
    ]);
    const call = createLambdaUpstreamClient({ ...options, payload: "http", client });
    const response = await call(get);
    assert.deepEqual(response.cookies, [...cookies, "legacy=1; Path=/"]);
    assert.equal(response.headers["set-cookie"], undefined);
  });

  it("refuses (413) a request whose event would be over Lambda's 6 MB invoke limit: never invoked or counted", async () => {
    const { client, sent } = fakeClient([payload({ statusCode: 200 }), payload({ statusCode: 200 })]);
    const call = createLambdaUpstreamClient({
      ...options,
      breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 },
      payload: "http",
      client,
    });
    // 4.8 MB of binary becomes 6.4 MB of base64 in the event.
    const big = { ...get, method: "PUT", headers: { "content-type": "application/octet-stream" } };
    for (let i = 0; i < 2; i++) {
      assert.equal(await statusOf(call({ ...big, body: Buffer.alloc(4_800_000, 7) })), 413);
    }
    assert.equal(sent.length, 0, "nothing was invoked");
    assert.equal((await call(get)).status, 200, "the circuit is still closed");
  });

  it("names functions by their serverless.yml key, or by ARN as given", () => {
    const arn = "arn:aws:lambda:eu-west-1:123456789012:function:other-service-prod-thing:live";
    assert.equal(functionName(arn, "gatehouse-test-"), arn);
    assert.equal(functionName("catalog", "gatehouse-test-"), "gatehouse-test-catalog");
  });
});
