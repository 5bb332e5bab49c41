import { randomUUID } from "node:crypto";

/**
 * The WebSocket protocol: clients send JSON `{ "action": "...", ... }`; API Gateway routes on
 * `$request.body.action`. Every action here has a route of the same name in serverless.yml (a test
 * keeps the two in step); anything else lands on `$default`.
 */
export const ACTIONS = ["ping"] as const;
export type Action = (typeof ACTIONS)[number];

/** A server event: every frame the server sends has a type, a unique id and a timestamp. */
export interface ServerFrame {
  type: string;
  id: string;
  at: string;
  [key: string]: unknown;
}

/** Example: `frame("pong", { requestId })` → `{ type: "pong", id: "…", at: "2026-…Z", requestId }`. */
export function frame(type: string, data: Record<string, unknown> = {}): ServerFrame {
  return { ...data, type, id: randomUUID(), at: new Date().toISOString() };
}
