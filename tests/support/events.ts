import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const EVENTS_DIR = join(import.meta.dirname, "..", "..", "events");

/** Every sample event file with the function it belongs to (`<function>[.<variant>].json`). */
export function eventFiles(): { file: string; functionName: string }[] {
  return readdirSync(EVENTS_DIR)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((file) => ({ file, functionName: file.split(".")[0] as string }));
}

/** A fresh copy of a sample event from `events/`, safe to change. */
export function loadEvent<T = Record<string, unknown>>(file: string): T {
  return structuredClone(JSON.parse(readFileSync(join(EVENTS_DIR, file), "utf8"))) as T;
}

/** An HTTP API (payload 2.0) event for a route, built on the `health.json` sample. */
export function httpEvent<T extends { routeKey: string } = import("#shared/http.ts").HttpEvent>({
  method,
  routeKey,
  path,
  headers = {},
  body,
  pathParameters,
  query = "",
  sourceIp,
}: {
  method: string;
  routeKey: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | undefined;
  pathParameters?: Record<string, string> | undefined;
  query?: string;
  sourceIp?: string | undefined;
}): T {
  const event = loadEvent<import("#shared/http.ts").HttpEvent>("health.json");
  event.routeKey = routeKey;
  event.rawPath = path;
  event.rawQueryString = query;
  event.requestContext.http.method = method;
  event.requestContext.routeKey = routeKey;
  if (sourceIp) event.requestContext.http.sourceIp = sourceIp;
  event.headers = { host: "api.example.com", ...headers };
  if (body !== undefined) event.body = body;
  if (pathParameters) event.pathParameters = pathParameters;
  return event as unknown as T;
}
