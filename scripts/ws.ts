// A minimal WebSocket client for the local stack: sends each argument as a message and prints every
// frame that comes back. Usage: npm run ws -- '{"action":"ping"}' ['...more messages']
// Environment: GATEHOUSE_WS_URL (default ws://127.0.0.1:${GATEHOUSE_WS_PORT:-3001}).
import WebSocket from "ws";

const url = process.env.GATEHOUSE_WS_URL ?? `ws://127.0.0.1:${process.env.GATEHOUSE_WS_PORT ?? "3001"}`;
const messages = process.argv.slice(2);
const quietMs = 1_500;

const socket = new WebSocket(url);
let timer: NodeJS.Timeout | undefined;
const closeSoon = () => {
  clearTimeout(timer);
  timer = setTimeout(() => socket.close(), quietMs);
};

socket.on("open", () => {
  console.log(`connected to ${url}`);
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
  console.error(`cannot connect to ${url}: ${error.message}`);
  process.exitCode = 1;
});
socket.on("close", () => clearTimeout(timer));
