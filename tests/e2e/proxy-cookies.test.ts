import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DEMO_SET_COOKIES } from "../../plugins/demo-services.mjs";
import { DEMO_API_KEY } from "../../plugins/local-stack.mjs";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";

/**
 * Cookies through the local stack over real sockets: the client, serverless-offline (patched to build
 * payload 2.0 events and answers as API Gateway does), the gateway function, and the demo upstream's
 * cookie endpoints.
 */
describe("proxy fidelity through the local stack: cookies", () => {
  let stack: LocalStack;
  before(async () => {
    stack = await startLocalStackOnFreePorts();
  });
  after(async () => {
    await stack?.stop();
  });

  const get = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${stack.httpUrl}${path}`, { headers: { "x-api-key": DEMO_API_KEY, ...headers } });
  const echoed = async (response: Response) => {
    assert.equal(response.status, 200);
    return (await response.json()) as { cookieHeaders: string[]; cookies: string[] };
  };

  it("gives the client every Set-Cookie of the upstream, each as the upstream wrote it", async () => {
    const response = await get("/v1/cookies/set");
    assert.equal(response.status, 200);
    assert.deepEqual(response.headers.getSetCookie(), DEMO_SET_COOKIES);
  });

  it("sends the client's cookies to the upstream once, in one cookie header, in the client's order", async () => {
    const body = await echoed(
      await get("/v1/cookies/echo", { cookie: "theme=dark; session=abc; theme=light" }),
    );
    assert.deepEqual(body.cookieHeaders, ["theme=dark; session=abc; theme=light"]);
  });

  it("passes on cookies API Gateway would pass, even ones outside RFC 6265's strict syntax", async () => {
    const body = await echoed(await get("/v1/cookies/echo", { cookie: 'note=hello world; data="x,y"' }));
    assert.deepEqual(body.cookies, ["note=hello world", 'data="x,y"']);
  });

  it("round-trips: the cookies the upstream set come back to it when the client sends them", async () => {
    const set = (await get("/v1/cookies/set")).headers.getSetCookie();
    const pairs = set.map((cookie) => cookie.split(";")[0] as string);
    const body = await echoed(await get("/v1/cookies/echo", { cookie: pairs.join("; ") }));
    assert.deepEqual(body.cookies, pairs);
  });
});
