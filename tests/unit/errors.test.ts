import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  BadGatewayError,
  BadRequestError,
  ForbiddenError,
  GatewayTimeoutError,
  type HttpError,
  InternalServerError,
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ServiceUnavailableError,
  TooManyRequestsError,
  toHttpError,
  UnauthorizedError,
  UnprocessableContentError,
  UnsupportedMediaTypeError,
} from "#shared/errors.ts";

describe("error taxonomy", () => {
  const cases: [HttpError, number][] = [
    [new BadRequestError("x"), 400],
    [new UnauthorizedError("x"), 401],
    [new ForbiddenError("x"), 403],
    [new NotFoundError("x"), 404],
    [new MethodNotAllowedError("x", ["GET"]), 405],
    [new PayloadTooLargeError("x"), 413],
    [new UnsupportedMediaTypeError("x"), 415],
    [new UnprocessableContentError("x"), 422],
    [new TooManyRequestsError("x", 1), 429],
    [new InternalServerError("x"), 500],
    [new BadGatewayError("x"), 502],
    [new ServiceUnavailableError("x"), 503],
    [new GatewayTimeoutError("x"), 504],
  ];
  for (const [error, status] of cases) {
    it(`${error.name} is ${status}, exposed only below 500`, () => {
      assert.equal(error.statusCode, status);
      assert.equal(error.expose, status < 500);
      assert.equal(error.name, error.constructor.name);
      assert.match(error.slug, /^[a-z-]+$/);
    });
  }

  it("405 names the allowed methods and 429 rounds Retry-After up to whole seconds", () => {
    assert.equal(new MethodNotAllowedError("no", ["GET", "HEAD"]).headers.allow, "GET, HEAD");
    assert.equal(new TooManyRequestsError("slow down", 2.2).headers["retry-after"], "3");
    assert.equal(new TooManyRequestsError("slow down", 0).headers["retry-after"], "1");
  });

  it("toHttpError keeps ours, turns Middy's timeout into 504 and anything else into 500 with the cause", () => {
    const own = new ForbiddenError("no");
    assert.equal(toHttpError(own), own);

    const timeout = new Error("[AbortError]: The operation was aborted.");
    timeout.name = "TimeoutError";
    assert.equal(toHttpError(timeout).statusCode, 504);

    const boom = new TypeError("cannot read x of undefined");
    const mapped = toHttpError(boom);
    assert.equal(mapped.statusCode, 500);
    assert.equal(mapped.cause, boom);
    assert.equal(toHttpError("a string").statusCode, 500);
  });
});
