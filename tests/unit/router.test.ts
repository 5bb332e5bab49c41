import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HttpError } from "#shared/errors.ts";
import { compileRouter, parseTemplate, routeKeyCandidates } from "#shared/routing/router.ts";

/** The status of the HttpError a call throws. */
function statusOf(call: () => unknown): number {
  try {
    call();
  } catch (error) {
    if (error instanceof HttpError) return error.statusCode;
    throw error;
  }
  assert.fail("no error was thrown");
}

describe("router", () => {
  const match = compileRouter([
    { method: "GET", path: "/health", value: "health" },
    { method: "GET", path: "/v1/users/{id}", value: "v1 user" },
    { method: "PUT", path: "/v1/users/{id}", value: "v1 put user" },
    { method: "GET", path: "/v1/users/me", value: "v1 me" },
    { method: "GET", path: "/v2/users/{id}/orders/{orderId}", value: "v2 order" },
    { method: "ANY", path: "/files/{path+}", value: "files" },
    { method: "GET", path: "/files/readme", value: "readme" },
    { method: "POST", path: "/", value: "root" },
  ]);

  it("binds parameters, and a literal beats a parameter", () => {
    assert.deepEqual(match("GET", "/v1/users/42"), { value: "v1 user", params: { id: "42" } });
    assert.deepEqual(match("GET", "/v1/users/me"), { value: "v1 me", params: {} });
    assert.deepEqual(match("GET", "/v2/users/7/orders/o-9"), {
      value: "v2 order",
      params: { id: "7", orderId: "o-9" },
    });
    assert.deepEqual(match("POST", "/"), { value: "root", params: {} });
  });

  it("a greedy parameter takes the rest (one or more segments); ANY takes every method", () => {
    assert.deepEqual(match("DELETE", "/files/a/b/c.txt"), { value: "files", params: { path: "a/b/c.txt" } });
    assert.deepEqual(match("GET", "/files/readme"), { value: "readme", params: {} });
    assert.deepEqual(match("POST", "/files/readme"), { value: "files", params: { path: "readme" } });
    assert.equal(
      statusOf(() => match("GET", "/files")),
      404,
    );
    assert.equal(
      statusOf(() => match("GET", "/files/")),
      404,
    );
  });

  it("declares a routeKey under itself, then (for HEAD) its GET route, then its ANY route", () => {
    assert.deepEqual(routeKeyCandidates("GET /things/{id}"), ["GET /things/{id}", "ANY /things/{id}"]);
    assert.deepEqual(routeKeyCandidates("HEAD /things/{id}"), [
      "HEAD /things/{id}",
      "GET /things/{id}",
      "ANY /things/{id}",
    ]);
    assert.deepEqual(routeKeyCandidates("GET /files/{path*}"), ["GET /files/{path+}", "ANY /files/{path+}"]);
    assert.deepEqual(routeKeyCandidates("$default"), ["$default"]);
  });

  it("404 for an unknown path, 405 with Allow for a known path and another method, HEAD as GET", () => {
    assert.equal(
      statusOf(() => match("GET", "/nope")),
      404,
    );
    assert.equal(
      statusOf(() => match("GET", "/v1/users//")),
      404,
      "an empty segment binds no parameter",
    );
    try {
      match("DELETE", "/v1/users/42");
      assert.fail("matched");
    } catch (error) {
      assert.ok(error instanceof HttpError);
      assert.equal(error.statusCode, 405);
      assert.equal(error.headers.allow, "GET, PUT, HEAD");
    }
    assert.equal(match("HEAD", "/health").value, "health");
  });

  it("decodes each segment on its own, and refuses bad percent-encoding with 400", () => {
    assert.deepEqual(match("GET", "/v1/users/a%2Fb").params, { id: "a/b" });
    assert.deepEqual(match("GET", "/v1/users/caf%C3%A9").params, { id: "café" });
    assert.equal(
      statusOf(() => match("GET", "/v1/users/%E0%A4%A")),
      400,
    );
    assert.equal(
      statusOf(() => match("GET", "relative")),
      400,
    );
  });

  it("rejects bad templates when the routes are compiled", () => {
    assert.throws(() => parseTemplate("users"), /must start with \//);
    assert.throws(() => parseTemplate("/a/{x}/{x}"), /twice/);
    assert.throws(() => parseTemplate("/a/{rest+}/b"), /must be the last segment/);
    assert.throws(() => parseTemplate("/a/b{c}"), /neither a literal nor/);
    assert.throws(
      () =>
        compileRouter([
          { method: "GET", path: "/a", value: 1 },
          { method: "GET", path: "/a", value: 2 },
        ]),
      /twice/,
    );
    assert.throws(
      () =>
        compileRouter([
          { method: "GET", path: "/a/{x}", value: 1 },
          { method: "GET", path: "/a/{y}/b", value: 2 },
        ]),
      /conflicts/,
    );
  });

  const literal = fc.stringMatching(/^[a-z][a-z0-9-]{0,7}$/);
  const value = fc.string({ minLength: 1, maxLength: 12 });

  it("property: any path built from a template matches it, with the values that built it", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            literal.map((text) => ({ literal: text })),
            value.map((text) => ({ param: text })),
          ),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        (parts) => {
          const template = `/${parts.map((part, i) => ("literal" in part ? part.literal : `{p${i}}`)).join("/")}`;
          const path = `/${parts.map((part) => ("literal" in part ? part.literal : encodeURIComponent(part.param))).join("/")}`;
          const expected = Object.fromEntries(
            parts.flatMap((part, i) => ("param" in part ? [[`p${i}`, part.param]] : [])),
          );
          assert.deepEqual(compileRouter([{ method: "GET", path: template, value: template }])("GET", path), {
            value: template,
            params: expected,
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("property: with a literal and a parameter at the same place, the literal wins and the rest go to the parameter", () => {
    fc.assert(
      fc.property(literal, value, (fixed, other) => {
        fc.pre(other !== fixed);
        const router = compileRouter([
          { method: "GET", path: "/x/{id}", value: "param" },
          { method: "GET", path: `/x/${fixed}`, value: "literal" },
        ]);
        assert.equal(router("GET", `/x/${fixed}`).value, "literal");
        assert.deepEqual(router("GET", `/x/${encodeURIComponent(other)}`), {
          value: "param",
          params: { id: other },
        });
      }),
      { numRuns: 300 },
    );
  });
});
