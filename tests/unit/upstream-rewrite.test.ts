import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HttpError } from "#shared/errors.ts";
import {
  clientHeaders,
  clientResponseHeaders,
  identityHeaderValue,
  upstreamRequestHeaders,
} from "#shared/upstream/forwarding.ts";
import { compilePathRewrite } from "#shared/upstream/rewrite.ts";

function refused(call: () => unknown): number {
  try {
    call();
  } catch (error) {
    if (error instanceof HttpError) return error.statusCode;
    throw error;
  }
  return 0;
}

describe("path rewrite (SSRF safety)", () => {
  const rewrite = compilePathRewrite("/api/users/{id}/profile");
  const greedy = compilePathRewrite("/files/{rest+}");

  it("fills parameters into their own segments, percent-encoded", () => {
    assert.equal(rewrite({ id: "42" }), "/api/users/42/profile");
    assert.equal(rewrite({ id: "a b?c#d" }), "/api/users/a%20b%3Fc%23d/profile");
    assert.equal(greedy({ rest: "docs/2026/report.pdf" }), "/files/docs/2026/report.pdf");
    assert.deepEqual(rewrite.params, ["id"]);
  });

  it("refuses with 400 what could change the path or the host", () => {
    for (const id of [
      "..",
      ".",
      "a/../b",
      "a/b",
      "a\\b",
      "user@evil.example",
      "http://169.254.169.254/",
      "//evil",
      "a\u0000b",
      "a\ud800b",
      "",
    ]) {
      assert.equal(
        refused(() => rewrite({ id })),
        400,
        JSON.stringify(id),
      );
    }
    for (const rest of ["a/../../etc/passwd", "a//b", "./x", "x/"]) {
      assert.equal(
        refused(() => greedy({ rest })),
        400,
        JSON.stringify(rest),
      );
    }
    assert.equal(
      refused(() => rewrite({})),
      400,
    );
  });

  it("property: any value is either refused (400) or lands as exactly one segment that decodes back to it", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 24 }), (id) => {
        const status = refused(() => rewrite({ id }));
        if (status !== 0) {
          assert.equal(status, 400);
          return;
        }
        const path = rewrite({ id });
        const segments = path.split("/");
        assert.equal(segments.length, 5, path);
        assert.equal(segments[1], "api");
        assert.equal(segments[4], "profile");
        assert.equal(decodeURIComponent(segments[3] as string), id);
      }),
      { numRuns: 1_000 },
    );
  });
});

describe("header forwarding", () => {
  const identity = {
    principal: "key:team-a",
    authType: "apiKey" as const,
    plan: "pro",
    scopes: ["a", "b"],
    keyId: "key_1",
  };

  it("strips credentials, hop-by-hop headers and forged identity headers; adds the trusted ones", () => {
    const headers = upstreamRequestHeaders({
      headers: {
        accept: "application/json",
        authorization: "Bearer gateway-token",
        "x-api-key": "gh_secret",
        "X-Gatehouse-Principal": "admin",
        "x-gatehouse-plan": "enterprise",
        connection: "keep-alive, x-custom",
        "transfer-encoding": "chunked",
        host: "api.example.com",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "https",
      },
      identity,
      requestId: "req-1",
      sourceIp: "203.0.113.9",
    });
    assert.deepEqual(headers, {
      accept: "application/json",
      "x-gatehouse-principal": "key:team-a",
      "x-gatehouse-auth-type": "apiKey",
      "x-gatehouse-plan": "pro",
      "x-gatehouse-scopes": "a b",
      "x-gatehouse-key-id": "key_1",
      "x-forwarded-for": "203.0.113.9",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "api.example.com",
      forwarded: "for=203.0.113.9;host=api.example.com;proto=https",
      "x-request-id": "req-1",
    });
  });

  it("forwards Authorization only when the route asks, and never identity headers for an anonymous caller", () => {
    const forwarded = upstreamRequestHeaders({
      headers: { authorization: "Bearer t", "x-gatehouse-principal": "forged" },
      identity: undefined,
      requestId: "r",
      sourceIp: "198.51.100.1",
      forwardAuthorization: true,
    });
    assert.equal(forwarded.authorization, "Bearer t");
    assert.equal(forwarded["x-gatehouse-principal"], undefined);
    assert.equal(forwarded["x-forwarded-for"], "198.51.100.1");
  });

  it("property: an identity value (well-formed Unicode) becomes visible ASCII that decodes back to it exactly, so no two collide", () => {
    const decode = (value: string) =>
      value.startsWith("UTF-8''") ? decodeURIComponent(value.slice("UTF-8''".length)) : value;
    const anyText = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: "binary", maxLength: 30 }),
      fc.constantFrom("UTF-8''abc", "utf-8''abc", " lead", "trail ", "a\r\nb", "key:東京チーム", ""),
    );
    fc.assert(
      fc.property(anyText, anyText, (a, b) => {
        const encoded = identityHeaderValue(a);
        assert.match(encoded, /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/);
        assert.equal(decode(encoded), a);
        if (a !== b) assert.notEqual(encoded, identityHeaderValue(b));
      }),
      { numRuns: 2_000 },
    );
    assert.equal(identityHeaderValue("key:team-a b"), "key:team-a b", "plain ASCII is sent as it is");
  });

  it("drops a client's Expect, and builds one cookie header from payload 2.0's cookies", () => {
    const headers = upstreamRequestHeaders({
      headers: clientHeaders({ headers: { expect: "100-continue", cookie: "a=1" }, cookies: ["a=1", "b=2"] }),
      identity: undefined,
      requestId: "r",
      sourceIp: undefined,
    });
    assert.equal(headers.expect, undefined);
    assert.equal(headers.cookie, "a=1; b=2");
  });

  it("drops hop-by-hop headers from the upstream's answer", () => {
    assert.deepEqual(
      clientResponseHeaders({
        "Content-Type": "text/plain",
        connection: "close",
        "transfer-encoding": "chunked",
      }),
      {
        "content-type": "text/plain",
      },
    );
  });
});
