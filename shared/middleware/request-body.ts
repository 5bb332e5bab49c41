import type middy from "@middy/core";
import { Ajv, type ValidateFunction } from "ajv";
import { BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError } from "../errors.ts";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";

/** What a route accepts as a request body. */
export interface BodyRules {
  /** Largest body, in bytes after base64 decoding. */
  maxBytes: number;
  /** Accepted media types (`type/subtype`, no parameters); `*\/*` accepts any. */
  contentTypes: readonly string[];
  /** A JSON Schema the parsed JSON body must satisfy. */
  schema?: Record<string, unknown>;
}

export interface ParsedBody {
  raw: Buffer;
  /** The parsed body when it is JSON. */
  json?: unknown;
}

/** The body `requestBody` checked for this invocation, if there was one. */
export function parsedBody(context: GatehouseContext): ParsedBody | undefined {
  return context.requestBody;
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;
const ajv = new Ajv({ allErrors: true, strict: false });

/** Compiles a route's schema once (at cold start); a bad schema is a configuration error. */
export function compileBodySchema(schema: Record<string, unknown>): ValidateFunction {
  return ajv.compile(schema);
}

/**
 * The request-body steps of the chain, in order: size (413), media type (415), JSON parse (400),
 * JSON Schema validation (400 naming every failing field). `rulesFor` picks the route's rules; a
 * route without rules takes no body checks; a route with a schema refuses a missing body. Read the result with `parsedBody(context)`.
 */
export function requestBody(
  rulesFor: (event: HttpEvent) => { rules: BodyRules; validate?: ValidateFunction } | undefined,
): middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext> {
  const requestBodyBefore: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (request) => {
    const { event } = request;
    request.context.requestBody = undefined;
    const found = rulesFor(event);
    if (!found) return;
    const { rules, validate } = found;
    if (event.body == null || event.body === "") {
      // A route with a schema needs its body: forwarding nothing would skip the validation.
      if (validate) throw new BadRequestError("This route needs a JSON body");
      return;
    }

    const declared = Number(event.headers["content-length"] ?? Number.NaN);
    if (declared > rules.maxBytes) throw tooLarge(rules.maxBytes);
    const raw = Buffer.from(event.body, event.isBase64Encoded ? "base64" : "utf8");
    if (raw.byteLength > rules.maxBytes) throw tooLarge(rules.maxBytes);

    const mediaType = (event.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    if (!rules.contentTypes.includes("*/*") && !rules.contentTypes.includes(mediaType)) {
      throw new UnsupportedMediaTypeError(
        `Content-Type ${mediaType || "(none)"} is not accepted here; send ${rules.contentTypes.join(" or ")}`,
      );
    }

    let json: unknown;
    if (JSON_TYPE.test(mediaType)) {
      try {
        json = JSON.parse(raw.toString("utf8"));
      } catch {
        throw new BadRequestError("The body is not valid JSON");
      }
      if (validate && !validate(json)) {
        const errors = (validate.errors ?? []).map((error) => ({
          field:
            error.keyword === "required"
              ? `${error.instancePath}/${(error.params as { missingProperty: string }).missingProperty}`
              : error.instancePath || "/",
          message: error.message ?? "is invalid",
        }));
        throw new BadRequestError(
          `The body is invalid: ${errors.map((error) => `${error.field} ${error.message}`).join("; ")}`,
          { extensions: { errors } },
        );
      }
    } else if (validate) {
      throw new UnsupportedMediaTypeError("This route takes a JSON body");
    }
    request.context.requestBody = { raw, ...(json !== undefined ? { json } : {}) };
  };
  return { before: requestBodyBefore };
}

function tooLarge(maxBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`The body is larger than this route accepts (${maxBytes} bytes)`);
}
