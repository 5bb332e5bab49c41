import type middy from "@middy/core";
import type { Options, ValidateFunction } from "ajv";
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

/** How body schemas compile: here on first use, and in the config check (shared/config/expressions.ts). */
export const BODY_SCHEMA_OPTIONS: Options = { allErrors: true, strict: false };

/**
 * A route's body schema, compiled on the first body it checks: ajv itself (a chunk of its own) loads
 * then, so a cold start pays neither for ajv nor for the routes it does not serve. Each schema was
 * checked against the meta-schema when the config was checked (`loadGateway`: the tests and
 * `npm run package`), so this compile skips that check (most of a first compile's time).
 */
export interface BodyValidator {
  /** The compiled function, once `load` has resolved. */
  readonly compiled: ValidateFunction | undefined;
  load(): Promise<ValidateFunction>;
}

let runtimeAjv: Promise<import("ajv").Ajv> | undefined;

/** A schema compiled on first use (see `BodyValidator`). Example: `lazyBodySchema({ type: "object" })`. */
export function lazyBodySchema(schema: Record<string, unknown>): BodyValidator {
  let loading: Promise<ValidateFunction> | undefined;
  const validator = {
    compiled: undefined as ValidateFunction | undefined,
    load: () => {
      // ajv is CommonJS: Node's loader names its exports (`Ajv`), a bundle's chunk gives only
      // `default` (module.exports, which is the Ajv class).
      runtimeAjv ??= import("ajv").then((ajv) => {
        const Ajv = ajv.Ajv ?? ajv.default;
        return new Ajv({ ...BODY_SCHEMA_OPTIONS, validateSchema: false });
      });
      loading ??= runtimeAjv.then((ajv) => {
        validator.compiled = ajv.compile(schema);
        return validator.compiled;
      });
      return loading;
    },
  };
  return validator;
}

/**
 * The request-body steps of the chain, in order: size (413), media type (415), JSON parse (400),
 * JSON Schema validation (400 naming every failing field). `rulesFor` picks the route's rules; a
 * route without rules takes no body checks; a route with a schema refuses a missing body. Read the result with `parsedBody(context)`.
 */
export function requestBody(
  rulesFor: (event: HttpEvent) => { rules: BodyRules; validate?: BodyValidator } | undefined,
): middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext> {
  const requestBodyBefore: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (request) => {
    const { event } = request;
    request.context.requestBody = undefined;
    const found = rulesFor(event);
    if (!found) return;
    const { rules, validate: validator } = found;
    // The first body a schema route checks waits for its compile; every later one runs straight through.
    if (validator && !validator.compiled && event.body != null && event.body !== "")
      return validator.load().then(() => requestBodyBefore(request));
    const validate = validator?.compiled;
    if (event.body == null || event.body === "") {
      // A route with a schema needs its body: forwarding nothing would skip the validation.
      if (validator) throw new BadRequestError("This route needs a JSON body");
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
    } else if (validator) {
      throw new UnsupportedMediaTypeError("This route takes a JSON body");
    }
    request.context.requestBody = { raw, ...(json !== undefined ? { json } : {}) };
  };
  return { before: requestBodyBefore };
}

function tooLarge(maxBytes: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`The body is larger than this route accepts (${maxBytes} bytes)`);
}
