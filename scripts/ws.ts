// A minimal WebSocket client for the local stack: sends each argument as a message and prints every
// frame that comes back. Usage: npm run ws -- [--token <jwt>] '{"action":"ping"}' ['...more messages']
// Without --token it signs one for "ws-cli", scope chat:write, with the local dev issuer (the local
// stack's $connect needs a token). Environment: GATEHOUSE_WS_URL (default ws://127.0.0.1:${GATEHOUSE_WS_PORT:-3001}).
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { devToken } from "../plugins/dev-issuer.mjs";

const { values, positionals: messages } = parseArgs({
  allowPositionals: true,
  options: { token: { type: "string" } },
});
const token =
  values.token ??
  (await devToken(process.cwd(), {
    port: Number(process.env.GATEHOUSE_ISSUER_PORT ?? 3003),
    sub: "ws-cli",
    scope: "chat:write", // what send and direct need (websocket.chat.scopes)
  }));
const base = process.env.GATEHOUSE_WS_URL ?? `ws://127.0.0.1:${process.env.GATEHOUSE_WS_PORT ?? "3001"}`;
const url = `${base}?token=${encodeURIComponent(token)}`;
const quietMs = 1_500;

const socket = new WebSocket(url);
let timer: NodeJS.Timeout | undefined;
const closeSoon = () => {
  clearTimeout(timer);
  timer = setTimeout(() => socket.close(), quietMs);
};

socket.on("open", () => {
  console.log(`connected to ${base}`);
  for (const message of messages) {
    console.log(`> ${message}`);
    socket.send(message);
  }
  closeSoon();
});
socket.on("message", (data) => {
  console.log(`< ${data.toString()}`);
  closeSoon();
});
socket.on("unexpected-response", (_request, response) => {
  console.error(`connection refused: HTTP ${response.statusCode}`);
  process.exitCode = 1;
});
socket.on("error", (error) => {
  console.error(`cannot connect to ${base}: ${error.message}`);
  process.exitCode = 1;
});
socket.on("close", () => clearTimeout(timer));
