import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HttpError } from "#shared/errors.ts";
import {
  canaryBucket,
  compileJmespath,
  jmespathProblem,
  mapHeaders,
  mapQuery,
  mapRequestBody,
  mapResponseBody,
  mapResponseHeaders,
  onCanary,
} from "#shared/upstream/transform.ts";

const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
const headerValue = fc.string({ maxLength: 20 });
const headers = fc.dictionary(headerName, headerValue, { maxKeys: 8 });
const nameMap = fc.record({
  rename: fc.dictionary(headerName, headerName, { maxKeys: 3 }),
  remove: fc.array(headerName, { maxLength: 3 }),
  set: fc.dictionary(headerName, headerValue, { maxKeys: 3 }),
});

describe("request and response mapping", () => {
  it("response header maps act on the answer's cookies for set-cookie, and on headers as mapHeaders does", () => {
    fc.assert(
      fc.property(headers, nameMap, (input, map) => {
        fc.pre(!JSON.stringify([input, map]).includes("set-cookie"));
        assert.deepEqual(mapResponseHeaders(input, [], map), {
          headers: mapHeaders(input, map),
          cookies: [],
        });
      }),
    );
    const cookies = ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2026 07:28:00 GMT"];
    const none = { rename: {}, remove: [], set: {} };
    assert.deepEqual(mapResponseHeaders({}, cookies, undefined).cookies, cookies);
    assert.deepEqual(mapResponseHeaders({}, cookies, { ...none, remove: ["set-cookie"] }).cookies, []);
    assert.deepEqual(mapResponseHeaders({}, cookies, { ...none, set: { "set-cookie": "c=3" } }).cookies, [
      "c=3",
    ]);
    assert.deepEqual(
      mapResponseHeaders({}, cookies, { ...none, rename: { "set-cookie": "x-was-cookies" } }),
      {
        headers: { "x-was-cookies": cookies.join(", ") },
        cookies: [],
      },
    );
    assert.deepEqual(
      mapResponseHeaders({ "x-c": "d=4" }, cookies, { ...none, rename: { "x-c": "set-cookie" } }),
      {
        headers: {},
        cookies: [...cookies, "d=4"],
      },
    );
  });

  it("header maps: set always wins, removed names are gone, untouched names pass unchanged", () => {
    fc.assert(
      fc.property(headers, nameMap, (input, map) => {
        const before = { ...input };
        const out = mapHeaders(input, map);
        for (const [name, value] of Object.entries(map.set)) assert.equal(out[name], value);
        for (const name of map.remove) if (!(name in map.set)) assert.equal(out[name], undefined);
        const touched = new Set([
          ...Object.keys(map.rename),
          ...Object.values(map.rename),
          ...map.remove,
          ...Object.keys(map.set),
        ]);
        for (const [name, value] of Object.entries(input))
          if (!touched.has(name)) assert.equal(out[name], value);
        assert.deepEqual({ ...input }, before, "the input is not modified");
      }),
    );
  });

  it("a rename carries the value to the new name (unless removed or set after)", () => {
    const out = mapHeaders(
      { "x-old": "v", keep: "k" },
      { rename: { "x-old": "x-new" }, remove: [], set: {} },
    );
    assert.deepEqual(out, { "x-new": "v", keep: "k" });
    assert.deepEqual(mapHeaders({ a: "1" }, undefined), { a: "1" });
  });

  it("query maps keep repeated values, re-encode, and leave an unmapped query byte for byte", () => {
    assert.equal(mapQuery("a=%7E&b=1", undefined), "a=%7E&b=1");
    assert.equal(
      mapQuery("user=1&user=2&debug=x&q=a%20b", {
        rename: { user: "userId" },
        remove: ["debug"],
        set: { v: "2" },
      }),
      "q=a+b&userId=1&userId=2&v=2",
    );
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 })),
        (params) => {
          const raw = new URLSearchParams(params).toString();
          const out = new URLSearchParams(mapQuery(raw, { rename: {}, remove: [], set: { fixed: "1" } }));
          for (const [name, value] of Object.entries(params))
            if (name !== "fixed") assert.equal(out.get(name), value);
          assert.equal(out.get("fixed"), "1");
        },
      ),
    );
  });

  it("JMESPath body mapping: a shape the mapping cannot take is the client's 400 up and the upstream's 502 down", () => {
    const lengthOf = compileJmespath("length(items)");
    assert.equal(JSON.parse(mapRequestBody(lengthOf, { items: [1, 2] }).toString()), 2);
    assert.throws(
      () => mapRequestBody(lengthOf, { items: null }),
      (error: unknown) => {
        return error instanceof HttpError && error.statusCode === 400;
      },
    );
    assert.equal(mapResponseBody(lengthOf, '{"items":[1]}', "svc"), "1");
    for (const body of ["{not json", '{"items":5}']) {
      assert.throws(
        () => mapResponseBody(lengthOf, body, "svc"),
        (error: unknown) => {
          return error instanceof HttpError && error.statusCode === 502;
        },
      );
    }
    assert.equal(mapResponseBody(compileJmespath("missing"), "{}", "svc"), "null");
  });

  it("JMESPath mapping never invents data: a projection of fields returns exactly those values", () => {
    const pick = compileJmespath("{ id: id, name: name }");
    fc.assert(
      fc.property(fc.record({ id: fc.integer(), name: fc.string(), extra: fc.string() }), (record) => {
        assert.deepEqual(pick(record), { id: record.id, name: record.name });
      }),
    );
  });

  it("tells syntax errors from type errors when parsing an expression", () => {
    for (const bad of ["{ a: ", "a[", "nope(a)", "length(a, b)", ""]) {
      assert.ok(jmespathProblem(bad), `${JSON.stringify(bad)} is refused`);
      assert.throws(() => compileJmespath(bad)({}), `${JSON.stringify(bad)} fails on first use`);
    }
    for (const good of ["length(orders)", "{ items: orders, count: length(orders) }", "a.b[0]", "`[]`"]) {
      assert.equal(jmespathProblem(good), undefined, good);
    }
  });
});

describe("canary assignment", () => {
  it("is sticky: the same caller and route always get the same bucket", () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (route, caller) => {
        assert.equal(canaryBucket(route, caller), canaryBucket(route, caller));
      }),
    );
  });

  it("raising the weight only moves callers onto the canary, never off it", () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (caller, a, b) => {
          const [low, high] = a <= b ? [a, b] : [b, a];
          if (onCanary("GET /x", caller, low)) assert.ok(onCanary("GET /x", caller, high));
        },
      ),
    );
  });

  it("sends 0 % nobody and 100 % everybody, and about the weight in between", () => {
    const callers = Array.from({ length: 20_000 }, (_, i) => `caller-${i}`);
    assert.equal(callers.filter((c) => onCanary("GET /x", c, 0)).length, 0);
    assert.equal(callers.filter((c) => onCanary("GET /x", c, 100)).length, callers.length);
    for (const weight of [1, 10, 50]) {
      const share = callers.filter((c) => onCanary("GET /x", c, weight)).length / callers.length;
      assert.ok(Math.abs(share - weight / 100) < 0.01, `weight ${weight}: share ${share}`);
    }
  });

  it("assigns independently per route, so one caller is not on every canary at once", () => {
    const callers = Array.from({ length: 5_000 }, (_, i) => `caller-${i}`);
    const both = callers.filter((c) => onCanary("GET /a", c, 50) && onCanary("GET /b", c, 50)).length;
    assert.ok(Math.abs(both / callers.length - 0.25) < 0.03, `${both} on both`);
  });
});
