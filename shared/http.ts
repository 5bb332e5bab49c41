import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from "aws-lambda";

/** The Lambda context as Gatehouse's chains leave it: the request id is always set. */
export interface GatehouseContext extends Context {
  /** The id of this request: the caller's valid `x-request-id`, else API Gateway's request id. */
  requestId: string;
}

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResult = APIGatewayProxyStructuredResultV2 & {
  headers: Record<string, string | number | boolean>;
};
export type HttpHandler = (event: HttpEvent, context: GatehouseContext) => Promise<HttpResult>;

/** A JSON response. Example: `return json(200, { status: "ok" })`. */
export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResult {
  return {
    statusCode,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
    body: JSON.stringify(body),
  };
}
