import assert from "node:assert/strict";
import http, { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import { HttpError } from "#shared/errors.ts";
import { createUpstreamClient, type UpstreamOptions } from "#shared/upstream/http-client.ts";

type Handler = (request: IncomingMessage, response: ServerResponse, body: Buffer) => void;

/** A real HTTP server on 127.0.0.1 whose behaviour a test sets; counts the requests it gets. */
async function upstream(handler: Handler) {
  let current = handler;
  let hits = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response) => {
    hits++;
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => current(request, response, Buffer.concat(chunks)));
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits: () => hits,
    set: (next: Handler) => {
      current = next;
    },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ok: Handler = (request, response, body) => {
  response.writeHead(200, { "content-type": "application/json", "x-upstream": "yes" });
  response.end(JSON.stringify({ method: request.method, url: request.url, body: body.toString("base64") }));
};

const options = (url: string, overrides: Partial<UpstreamOptions> = {}): UpstreamOptions => ({
  name: "users",
  targets: [{ url, weight: 1 }],
  // Generous: only the slow test is about the timeout (it sets its own); elsewhere a loaded machine
  // answering late must not turn a 200 into a 504 or an extra retry.
  timeoutMs: 10_000,
  retries: 2,
  breaker: { consecutiveFailures: 3, halfOpenAfterMs: 400 },
  maxResponseBytes: 64 * 1024,
  ...overrides,
});

async function failure(call: Promise<unknown>): Promise<HttpError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof HttpError, String(error));
    return error;
  }
  assert.fail("the call succeeded");
}

describe("upstream HTTP client against real loopback servers", () => {
  let service: Awaited<ReturnType<typeof upstream>>;
  before(async () => {
    service = await upstream(ok);
  });
  after(() => service.stop());

  it("passes method, path, query and a binary body through, and returns the answer as it came", async () => {
    service.set(ok);
    const request = createUpstreamClient(options(`${service.url}/base`));
    const binary = Buffer.from([0, 1, 2, 255, 254]);
    const response = await request({
      method: "POST",
      path: "/users/7",
      query: "a=1&b=2",
      headers: {},
      body: binary,
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers["x-upstream"], "yes");
    const echoed = JSON.parse(response.body.toString()) as { method: string; url: string; body: string };
    assert.deepEqual(echoed, {
      method: "POST",
      url: "/base/users/7?a=1&b=2",
      body: binary.toString("base64"),
    });
  });

  it("unreachable → 502 after the retries (idempotent)", async () => {
    const down = await upstream(ok);
    await down.stop(); // a port where nothing listens any more
    const error = await failure(
      createUpstreamClient(options(down.url))({ method: "GET", path: "/", headers: {} }),
    );
    assert.equal(error.statusCode, 502);
  });

  it("slow → 504; each attempt is cut at the timeout", async () => {
    let attempts = 0;
    let settle: () => void = () => undefined;
    const bothCut = new Promise<void>((resolve) => {
      settle = resolve;
    });
    let cut = 0;
    service.set((_request, response) => {
      attempts++;
      // Never answers: only the client's timeout ends the attempt, by closing it.
      response.on("close", () => {
        if (++cut === 2) settle();
      });
    });
    const error = await failure(
      createUpstreamClient(options(service.url, { retries: 1, timeoutMs: 300 }))({
        method: "GET",
        path: "/slow",
        headers: {},
      }),
    );
    assert.equal(error.statusCode, 504);
    assert.equal(attempts, 2, "the first attempt and one retry");
    await bothCut; // the client closed both (else this waits for the test timeout)
  });

  it("frames a DELETE's body, so the next request on the kept-alive connection arrives intact", async () => {
    const seen: string[] = [];
    service.set((request, response, body) => {
      seen.push(`${request.method} ${body.toString()}`);
      response.writeHead(200, { "content-type": "text/plain" }).end("ok");
    });
    const request = createUpstreamClient(options(service.url, { retries: 0 }));
    const deleted = await request({ method: "DELETE", path: "/", headers: {}, body: Buffer.from("L") });
    const next = await request({ method: "GET", path: "/", headers: {} });
    assert.deepEqual([deleted.status, next.status], [200, 200]);
    assert.deepEqual(seen, ["DELETE L", "GET "]);
  });

  it("retries idempotent methods only", async () => {
    let calls = 0;
    service.set((request, response, body) => {
      calls++;
      if (calls === 1) return void response.writeHead(503).end();
      ok(request, response, body);
    });
    const request = createUpstreamClient(options(service.url));
    assert.equal((await request({ method: "GET", path: "/", headers: {} })).status, 200);
    assert.equal(calls, 2, "GET was retried once");

    calls = 0;
    const posted = await request({ method: "POST", path: "/", headers: {}, body: Buffer.from("{}") });
    assert.equal(posted.status, 503, "POST is not retried: the upstream's answer comes back as it was");
    assert.equal(calls, 1);
  });

  it("flapping: the circuit opens (503 with Retry-After, no traffic), then half-opens and recovers", async (t) => {
    // The breaker's clock (Date: the client's and cockatiel's) moves only when the test says: on the
    // real one, a loaded machine could spend halfOpenAfter (400 ms) before the "open" call, which would
    // then be the half-open trial. Timers stay real: the attempts' timeouts are not the subject here.
    t.mock.timers.enable({ apis: ["Date"], now: Date.now() });
    service.set((_request, response) => void response.writeHead(502).end());
    const request = createUpstreamClient(options(service.url, { retries: 0 }));
    for (let i = 0; i < 3; i++)
      assert.equal((await request({ method: "GET", path: "/", headers: {} })).status, 502);

    const before = service.hits();
    const open = await failure(request({ method: "GET", path: "/", headers: {} }));
    assert.equal(open.statusCode, 503);
    assert.equal(open.headers["retry-after"], "1");
    assert.equal(service.hits(), before, "an open circuit sends nothing upstream");

    service.set(ok);
    t.mock.timers.tick(450); // past halfOpenAfter
    assert.equal(
      (await request({ method: "GET", path: "/", headers: {} })).status,
      200,
      "half-open trial succeeds",
    );
    assert.equal((await request({ method: "GET", path: "/", headers: {} })).status, 200, "closed again");
  });

  it("balances by weight, and sends nothing to a target whose circuit is open", async (t) => {
    // A stopped breaker clock: no half-open trial can fall inside this test, however slow its
    // 480 sequential requests are.
    t.mock.timers.enable({ apis: ["Date"], now: Date.now() });
    const second = await upstream(ok);
    try {
      service.set(ok);
      let seed = 1;
      const random = () => {
        seed = (seed * 48_271) % 2_147_483_647; // deterministic Lehmer sequence
        return seed / 2_147_483_647;
      };
      const weighted = createUpstreamClient(
        options(service.url, {
          targets: [
            { url: service.url, weight: 3 },
            { url: second.url, weight: 1 },
          ],
          random,
          breaker: { consecutiveFailures: 3, halfOpenAfterMs: 10_000 },
        }),
      );
      const [a0, b0] = [service.hits(), second.hits()];
      for (let i = 0; i < 400; i++) await weighted({ method: "GET", path: "/", headers: {} });
      const share = (service.hits() - a0) / (service.hits() - a0 + second.hits() - b0);
      assert.ok(
        share > 0.68 && share < 0.82,
        `first target got ${share} of the traffic, expected about 0.75`,
      );

      second.set((_request, response) => void response.writeHead(503).end());
      for (let i = 0; i < 40; i++) await weighted({ method: "GET", path: "/", headers: {} });
      const secondHits = second.hits();
      for (let i = 0; i < 40; i++) {
        assert.equal((await weighted({ method: "GET", path: "/", headers: {} })).status, 200);
      }
      assert.equal(second.hits(), secondHits, "the unhealthy target is skipped while its circuit is open");
    } finally {
      await second.stop();
    }
  });

  it("caps the response size (502), declared or streamed", async () => {
    const request = createUpstreamClient(options(service.url, { maxResponseBytes: 1024 }));
    service.set(
      (_request, response) =>
        void response.writeHead(200, { "content-length": "4096" }).end("x".repeat(4096)),
    );
    assert.equal((await failure(request({ method: "GET", path: "/", headers: {} }))).statusCode, 502);
    service.set((_request, response) => {
      response.writeHead(200); // chunked, no length
      response.end("y".repeat(4096));
    });
    assert.equal((await failure(request({ method: "GET", path: "/", headers: {} }))).statusCode, 502);
  });

  it("refuses a header node:http would not send with 400 before any attempt: nothing sent, circuit closed", async () => {
    service.set(ok);
    const request = createUpstreamClient(
      options(service.url, { breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 } }),
    );
    const hits = service.hits();
    const unsendable: Record<string, string>[] = [{ "x-note": "a\u0001b" }, { "x bad": "1" }];
    for (const headers of unsendable) {
      assert.equal((await failure(request({ method: "GET", path: "/", headers }))).statusCode, 400);
    }
    assert.equal(service.hits(), hits, "nothing was sent");
    assert.equal((await request({ method: "GET", path: "/", headers: {} })).status, 200, "circuit closed");
  });

  it("does not retry or count a request node:http refused to build (a gap in preparation): 500, circuit closed", async () => {
    service.set(ok);
    const request = createUpstreamClient(
      options(service.url, { breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 } }),
    );
    const refusing = mock.method(http, "request", () => {
      throw Object.assign(new TypeError('Invalid character in header content ["x-note"]'), {
        code: "ERR_INVALID_CHAR",
      });
    });
    try {
      for (let i = 0; i < 2; i++) {
        assert.equal((await failure(request({ method: "GET", path: "/", headers: {} }))).statusCode, 500);
      }
      assert.equal(refusing.mock.callCount(), 2, "one try each: nothing to retry");
    } finally {
      refusing.mock.restore();
    }
    assert.equal(
      (await request({ method: "GET", path: "/", headers: {} })).status,
      200,
      "circuit still closed",
    );
  });

  it("returns each Set-Cookie of the answer on its own, none folded into the headers", async () => {
    const cookies = ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"];
    service.set((_request, response) => void response.writeHead(200, { "set-cookie": cookies }).end());
    const response = await createUpstreamClient(options(service.url))({
      method: "GET",
      path: "/",
      headers: {},
    });
    assert.deepEqual(response.cookies, cookies);
    assert.equal(response.headers["set-cookie"], undefined);
  });

  it("does not follow redirects unless the route allows it", async () => {
    service.set((request, response, body) => {
      if (request.url === "/moved") return void response.writeHead(302, { location: "/elsewhere" }).end();
      ok(request, response, body);
    });
    const manual = await createUpstreamClient(options(service.url))({
      method: "GET",
      path: "/moved",
      headers: {},
    });
    assert.equal(manual.status, 302);
    assert.equal(manual.headers.location, "/elsewhere");
    const followed = await createUpstreamClient(options(service.url, { followRedirects: true }))({
      method: "GET",
      path: "/moved",
      headers: {},
    });
    assert.equal(followed.status, 200);
  });
});
