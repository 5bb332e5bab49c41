import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { ROOT } from "../support/serverless.ts";

/**
 * serverless-offline's payload 2.0 event, as patched by patches/serverless-offline+14.8.2.patch: the
 * request's cookies in `cookies` and no `cookie` header, as API Gateway sends them. The class is
 * serverless-offline's own (not exported by the package, so it is loaded by path).
 */
type EventV2Class = new (
  request: unknown,
  stage: string,
  routeKey: string,
) => { create(): { cookies?: string[]; headers: Record<string, string> } };

async function eventV2Class(): Promise<EventV2Class> {
  const file = join(
    ROOT,
    "node_modules/serverless-offline/src/events/http/lambda-events/LambdaProxyIntegrationEventV2.js",
  );
  return ((await import(pathToFileURL(file).href)) as { default: EventV2Class }).default;
}

/** The parts of a hapi request the event is built from, for a GET with these raw header lines. */
function hapiRequest(rawHeaders: string[]) {
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2)
    headers[String(rawHeaders[i]).toLowerCase()] = String(rawHeaders[i + 1]);
  return {
    auth: {},
    headers,
    info: { received: Date.now(), remoteAddress: "127.0.0.1" },
    method: "get",
    params: {},
    payload: null,
    raw: { req: { rawHeaders } },
    rawPayload: null,
    url: new URL("http://127.0.0.1:3000/v1/cookies/echo"),
  };
}

describe("serverless-offline's payload 2.0 event (patched)", () => {
  it("moves the request's cookies into cookies, as sent and in order, and leaves no cookie header", async () => {
    const EventV2 = await eventV2Class();
    const event = new EventV2(
      hapiRequest(["Host", "127.0.0.1", "Cookie", "b=2; a=1;note=hello world; b=3", "cookie", 'data="x,y"']),
      "local",
      "GET /v1/cookies/echo",
    ).create();
    assert.deepEqual(event.cookies, ["b=2", "a=1", "note=hello world", "b=3", 'data="x,y"']);
    assert.equal(event.headers.cookie, undefined);
    assert.equal(event.headers.host, "127.0.0.1");
  });

  it("leaves out cookies when the request has none, as API Gateway does", async () => {
    const EventV2 = await eventV2Class();
    const event = new EventV2(hapiRequest(["Host", "127.0.0.1"]), "local", "GET /v1/cookies/echo").create();
    assert.equal(event.cookies, undefined);
  });
});
