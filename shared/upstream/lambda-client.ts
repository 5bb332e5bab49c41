import type { InvokeCommand, InvokeCommandOutput, LambdaClient } from "@aws-sdk/client-lambda";
import { type LambdaClientSource, lambdaSdk } from "../clients/lambda.ts";
import { PayloadTooLargeError } from "../errors.ts";
import { LAMBDA_PAYLOAD_LIMIT_BYTES } from "../http.ts";
import {
  createUpstreamClient,
  ResponseTooLargeError,
  type Transport,
  type TransportAnswer,
  type UpstreamOptions,
  type UpstreamRequest,
} from "./http-client.ts";

/**
 * The `lambda` upstream kind: the gateway invokes another function directly (RequestResponse), with
 * the same timeout, retries, breaker and size cap as an HTTP upstream. Locally the SDK reaches
 * serverless-offline's Lambda endpoint through `AWS_ENDPOINT_URL_LAMBDA` (the local stack sets it),
 * so nothing here differs between local and AWS.
 *
 * Payloads:
 * - `http`: an API Gateway v2 (payload 2.0) event; the function answers `{ statusCode, headers, body,
 *   isBase64Encoded }`, or any other JSON, which becomes a 200 JSON body (API Gateway's own rule).
 * - `json`: `{ method, path, params, query, headers, body }` (body parsed when it is JSON); whatever the
 *   function returns is the 200 JSON body.
 *
 * A function error (an unhandled throw, a timeout inside the function) is a failed attempt: it counts
 * against the circuit and ends as 502.
 */

export interface LambdaUpstreamOptions extends Omit<UpstreamOptions, "targets" | "transport"> {
  /** A serverless.yml function key (deployed as `<service>-<stage>-<key>`) or a function ARN. */
  function: string;
  payload: "http" | "json";
  /** `<service>-<stage>-`: turns a function key into the deployed function's name. */
  functionPrefix: string;
  /** The client to invoke through (shared/clients/lambda.ts `lazyLambdaClient()`, or a test's). */
  client: LambdaClientSource;
}

/** The deployed name of a function key; an ARN is used as it is. */
export function functionName(key: string, functionPrefix: string): string {
  return key.startsWith("arn:") ? key : `${functionPrefix}${key}`;
}

class FunctionError extends Error {
  override readonly name = "FunctionError";
}

export function createLambdaUpstreamClient(options: LambdaUpstreamOptions) {
  const name = functionName(options.function, options.functionPrefix);
  return createUpstreamClient({
    ...options,
    targets: [{ url: `lambda:${name}`, weight: 1 }],
    transport: lambdaTransport(name, options),
  });
}

function lambdaTransport(name: string, options: LambdaUpstreamOptions): Transport {
  return async (request) => {
    // Loaded here, so a cold SDK import never eats into the first attempt's timeout.
    const { InvokeCommand } = await lambdaSdk();
    const client = typeof options.client === "function" ? await options.client() : options.client;
    const event = options.payload === "http" ? httpEvent(request) : jsonEvent(request);
    const payload = Buffer.from(JSON.stringify(event));
    // Lambda would refuse a bigger event, so the gateway does first: the caller's 413, not the function's failure.
    if (payload.byteLength > LAMBDA_PAYLOAD_LIMIT_BYTES) {
      throw new PayloadTooLargeError(
        `The request is too large for the ${options.name} service: its event would be ${payload.byteLength} bytes, over Lambda's ${LAMBDA_PAYLOAD_LIMIT_BYTES}`,
      );
    }
    // A command per attempt: the SDK adds its middleware to a command each time it is sent.
    const command = () =>
      new InvokeCommand({ FunctionName: name, InvocationType: "RequestResponse", Payload: payload });
    return (_target, signal) => invoke(client, command(), signal);
  };

  /** One attempt: the function's answer read as API Gateway reads it (`http`) or as the body (`json`). */
  async function invoke(
    client: LambdaClient,
    command: InvokeCommand,
    signal: AbortSignal,
  ): Promise<TransportAnswer> {
    const output: InvokeCommandOutput = await client.send(command, { abortSignal: signal });
    const payload = Buffer.from(output.Payload ?? new Uint8Array());
    if (payload.byteLength > options.maxResponseBytes) {
      throw new ResponseTooLargeError(`function response of ${payload.byteLength} bytes is over the cap`);
    }
    if (output.FunctionError) {
      throw new FunctionError(
        `${name} failed (${output.FunctionError}): ${payload.toString("utf8").slice(0, 500)}`,
      );
    }
    let result: unknown;
    try {
      result = payload.byteLength === 0 ? null : JSON.parse(payload.toString("utf8"));
    } catch {
      throw new FunctionError(`${name} returned a payload that is not JSON`);
    }
    return options.payload === "http" ? httpResult(name, result) : jsonResult(result);
  }
}

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

function jsonResult(result: unknown): TransportAnswer {
  return {
    status: 200,
    headers: { ...JSON_HEADERS },
    cookies: [],
    body: Buffer.from(JSON.stringify(result)),
  };
}

/** API Gateway's reading of a payload 2.0 response: with `statusCode` it is an HTTP result, else a JSON body. */
function httpResult(name: string, result: unknown): TransportAnswer {
  if (typeof result !== "object" || result === null || !("statusCode" in result)) return jsonResult(result);
  const { statusCode, headers, body, isBase64Encoded, cookies } = result as {
    statusCode: unknown;
    headers?: Record<string, unknown>;
    body?: unknown;
    isBase64Encoded?: unknown;
    cookies?: unknown;
  };
  if (
    typeof statusCode !== "number" ||
    !Number.isInteger(statusCode) ||
    statusCode < 100 ||
    statusCode > 599
  ) {
    throw new FunctionError(`${name} returned an invalid statusCode`);
  }
  if (body !== undefined && typeof body !== "string")
    throw new FunctionError(`${name} returned a non-string body`);
  const out: Record<string, string> = {};
  // Each cookie stays a cookie of its own, as API Gateway makes each one a Set-Cookie header.
  const setCookies = Array.isArray(cookies) ? cookies.map(String) : [];
  for (const [header, value] of Object.entries(headers ?? {})) {
    if (value === undefined || value === null) continue;
    if (header.toLowerCase() === "set-cookie") setCookies.push(String(value));
    else out[header.toLowerCase()] = String(value);
  }
  return {
    status: statusCode,
    headers: out,
    cookies: setCookies,
    body: Buffer.from(body ?? "", isBase64Encoded === true ? "base64" : "utf8"),
  };
}

const TEXT_BODY = /^(text\/|application\/([\w.+-]+\+)?(json|xml)|application\/x-www-form-urlencoded)/i;

/** The API Gateway v2 event a Lambda HTTP handler expects, for the rewritten request. */
function httpEvent(request: UpstreamRequest) {
  const now = new Date();
  const body = request.body && request.body.byteLength > 0 ? request.body : undefined;
  const textual = TEXT_BODY.test(request.headers["content-type"] ?? "");
  const requestId = request.headers["x-request-id"] ?? crypto.randomUUID();
  // As API Gateway does: the cookies leave the headers for `cookies`, one `name=value` each.
  const { cookie, ...headers } = request.headers;
  const cookies = (cookie ?? "")
    .split(";")
    .map((pair) => pair.trim())
    .filter((pair) => pair !== "");
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: request.path,
    rawQueryString: request.query ?? "",
    ...(cookies.length > 0 ? { cookies } : {}),
    headers,
    queryStringParameters: request.query ? Object.fromEntries(new URLSearchParams(request.query)) : undefined,
    pathParameters: request.params,
    requestContext: {
      accountId: "gatehouse",
      apiId: "gatehouse",
      domainName: request.headers["x-forwarded-host"] ?? "gatehouse",
      domainPrefix: "gatehouse",
      http: {
        method: request.method,
        path: request.path,
        protocol: "HTTP/1.1",
        sourceIp: request.headers["x-forwarded-for"]?.split(",")[0]?.trim() ?? "127.0.0.1",
        userAgent: request.headers["user-agent"] ?? "",
      },
      requestId,
      routeKey: "$default",
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    },
    ...(body ? { body: textual ? body.toString("utf8") : body.toString("base64") } : {}),
    isBase64Encoded: body !== undefined && !textual,
  };
}

function jsonEvent(request: UpstreamRequest) {
  let body: unknown;
  if (request.body && request.body.byteLength > 0) {
    const text = request.body.toString("utf8");
    try {
      body = /json/i.test(request.headers["content-type"] ?? "") ? JSON.parse(text) : text;
    } catch {
      body = text;
    }
  }
  return {
    method: request.method,
    path: request.path,
    params: request.params ?? {},
    query: Object.fromEntries(new URLSearchParams(request.query ?? "")),
    headers: request.headers,
    body,
  };
}
