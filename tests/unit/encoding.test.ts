import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  acceptedCodings,
  accepts,
  addVary,
  contentCodings,
  preferredCoding,
  recodedHeaders,
  upstreamAcceptEncoding,
} from "#shared/upstream/encoding.ts";

describe("Accept-Encoding (RFC 9110 §12.5.3)", () => {
  it("takes q-values, * and x-gzip; a coding at q=0 is refused", () => {
    const accepted = acceptedCodings("x-gzip;q=0.8, br;q=0, *;q=0.1");
    assert.equal(accepts(accepted, "gzip"), true);
    assert.equal(accepts(accepted, "br"), false, "br;q=0 refuses br even with *");
    assert.equal(accepts(accepted, "deflate"), true, "* covers an unlisted coding");
    assert.equal(preferredCoding(accepted), "gzip");
  });

  it("without the header, or with an empty one, only identity is acceptable", () => {
    for (const header of [undefined, ""]) {
      const accepted = acceptedCodings(header);
      assert.equal(accepts(accepted, "identity"), true);
      assert.equal(accepts(accepted, "gzip"), false);
      assert.equal(preferredCoding(accepted), undefined);
    }
  });

  it("identity stays acceptable unless refused by name or by *;q=0", () => {
    assert.equal(accepts(acceptedCodings("gzip"), "identity"), true);
    assert.equal(accepts(acceptedCodings("gzip, identity;q=0"), "identity"), false);
    assert.equal(accepts(acceptedCodings("gzip, *;q=0"), "identity"), false);
  });

  it("prefers br to gzip when the client ranks them equal, and follows the client's q otherwise", () => {
    assert.equal(preferredCoding(acceptedCodings("gzip, deflate, br")), "br");
    assert.equal(preferredCoding(acceptedCodings("gzip;q=1, br;q=0.5")), "gzip");
    assert.equal(preferredCoding(acceptedCodings("*")), "br");
  });

  it("asks upstreams only for what the gateway can decode", () => {
    assert.equal(upstreamAcceptEncoding(acceptedCodings("gzip, deflate, br, zstd")), "gzip, deflate, br");
    assert.equal(upstreamAcceptEncoding(acceptedCodings("zstd, *")), "identity");
    assert.equal(upstreamAcceptEncoding(undefined), "identity");
  });
});

describe("Content-Encoding and the headers a recoding touches", () => {
  it("lists codings in the order applied, without identity", () => {
    assert.deepEqual(contentCodings("GZIP, identity, br"), ["gzip", "br"]);
    assert.deepEqual(contentCodings(undefined), []);
  });

  it("weakens a strong ETag and drops digests of the old bytes", () => {
    const headers: Record<string, string> = {
      etag: '"v1"',
      "content-encoding": "gzip",
      "content-digest": "sha-256=:x:",
      "content-md5": "x",
    };
    recodedHeaders(headers, "br");
    assert.deepEqual(headers, { etag: 'W/"v1"', "content-encoding": "br" });
  });

  it("adds to Vary once, whatever the case of the header or its tokens", () => {
    const headers: Record<string, string> = { Vary: "Origin, Accept-Encoding" };
    addVary(headers, "accept-encoding");
    assert.deepEqual(headers, { Vary: "Origin, Accept-Encoding" });
    const empty: Record<string, string> = {};
    addVary(empty, "accept-encoding");
    addVary(empty, "x-api-version");
    assert.deepEqual(empty, { vary: "accept-encoding, x-api-version" });
  });
});
