// A terminal chat client for the WebSocket API.
// Usage: npm run chat -- [--room lobby] [--name alice] [--token <jwt>] [--url ws://127.0.0.1:3001]
// Without --token it signs a `chat:write` token for --name with the local dev issuer, so you are
// `dev:<name>`. Lines you type go to the current room; `/help` lists the commands. When the connection
// drops it reconnects with exponential backoff, joins its rooms again and catches up from history.
// Environment: GATEHOUSE_WS_URL (default ws://127.0.0.1:${GATEHOUSE_WS_PORT:-3001}), GATEHOUSE_ISSUER_PORT.
import { join } from "node:path";
import {
  clearLine,
  clearScreenDown,
  createInterface,
  cursorTo,
  type Interface,
  moveCursor,
} from "node:readline";
import { parseArgs } from "node:util";
import { ulid } from "ulid";
import WebSocket from "ws";
import { ROOM_NAME, type ServerFrame } from "#shared/ws/protocol.ts";
import { devToken } from "../plugins/dev-issuer.mjs";

const USAGE = "usage: npm run chat -- [--room lobby] [--name <sub>] [--token <jwt>] [--url ws://host:port]";
const HELP = `Type a line to send it to the current room. Commands:
  /join <room>            join a room and make it the current one
  /leave [room]           leave a room (default: the current one)
  /rooms                  the rooms you joined, and the rooms in use
  /members [room]         who is in a room (default: the current one)
  /dm <principal> <text>  a direct message; "bob" means dev:bob
  /history [n]            the last n messages of the current room (default 20, at most 100)
  /help                   this list
  /quit                   leave (Ctrl-C and Ctrl-D too)`;

const HISTORY_LIMIT = 20;
const HISTORY_PAGE = 100;
const MAX_CATCH_UP_PAGES = 50;
const REQUEST_TIMEOUT_MS = 10_000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10_000;
const SEEN_IDS_KEPT = 10_000;
/** The cursor key for direct messages (room names cannot start with "@"). */
const INBOX = "@inbox";

/** A chat message, as `message` and `direct` frames and `history` answers carry it. */
interface ChatMessage {
  messageId?: string;
  id?: string;
  room?: string;
  to?: string;
  from?: string;
  text?: string;
  sentAt?: string;
  at?: string;
}

/** The handshake was answered 401 or 403: trying again cannot help. */
class RefusedError extends Error {
  override readonly name = "RefusedError";
}

/** An `error` frame that answered one of our requests. */
class FrameError extends Error {
  override readonly name = "FrameError";
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The connection closed before the request was answered. */
class ConnectionLostError extends Error {
  override readonly name = "ConnectionLostError";
}

// ---------------------------------------------------------------------------------------------------
// Output

/** Prints lines; on a terminal it keeps the prompt and what you are typing below them. */
class Screen {
  /** The prompt shows from the moment the first room is joined. */
  private prompting = false;

  constructor(
    private readonly rl: Interface,
    private readonly tty: boolean,
  ) {}

  startPrompt(): void {
    this.prompting = this.tty;
    if (this.prompting) this.rl.prompt();
  }

  print(line: string): void {
    if (this.prompting) {
      cursorTo(process.stdout, 0);
      clearLine(process.stdout, 0);
    }
    process.stdout.write(`${line}\n`);
    if (this.prompting) this.rl.prompt(true);
  }

  setRoom(room: string | undefined): void {
    this.rl.setPrompt(room ? `#${room}> ` : "> ");
    if (this.prompting) this.rl.prompt(true);
  }

  /** After Enter: a text line is removed (the server's echo of it replaces it), and the prompt returns. */
  typed(line: string): void {
    if (!this.prompting) return;
    if (line.trim() && !line.trim().startsWith("/")) {
      const width = process.stdout.columns || 80;
      moveCursor(
        process.stdout,
        0,
        -Math.max(1, Math.ceil((this.rl.getPrompt().length + line.length) / width)),
      );
      clearScreenDown(process.stdout);
    }
    this.rl.prompt();
  }
}

/** Control characters from other people's text would drive the terminal: they are shown as �. */
const printable = (text: unknown) => String(text ?? "").replace(/\p{Cc}/gu, "\uFFFD");

const clock = (iso: string | undefined) => {
  const date = iso ? new Date(iso) : new Date();
  return (Number.isNaN(date.getTime()) ? new Date() : date).toTimeString().slice(0, 8);
};

/** `[12:03:04] #lobby <dev:alice>: hi`, or `[12:03:04] @dev:bob <dev:alice>: hi` for a direct message. */
function formatMessage(message: ChatMessage): string {
  const where = message.room ? `#${message.room}` : `@${message.to ?? "me"}`;
  return `[${clock(message.sentAt ?? message.at)}] ${where} <${printable(message.from)}>: ${printable(message.text)}`;
}

function describeError(error: unknown): string {
  if (error instanceof FrameError) return `! ${error.code}: ${error.message}`;
  if (error instanceof ConnectionLostError)
    return "! not done: the connection dropped (it reconnects by itself)";
  return `! ${error instanceof Error ? error.message : String(error)}`;
}

// ---------------------------------------------------------------------------------------------------
// One WebSocket connection: requests matched to their answers by `ref`

const REFUSALS: Record<number, string> = {
  401: "the server found no token",
  403: "the token was refused (expired, another issuer or audience, a missing scope...); the stack's log says why",
};

/**
 * Handshake answers that trying again later can fix, and what they mean to a person (API Gateway's
 * own answers are bare; see docs/api-gateway-responses.md).
 */
const TRANSIENT: Record<number, string> = {
  429: "too many connections for this user (close a tab or another client), or API Gateway is throttling",
  500: "the server could not admit the connection (its authorizer or $connect failed); the stack's log says why",
};

/** WebSocket close codes API Gateway uses, for a person. */
export const CLOSE_CODES: Record<number, string> = {
  1001: "API Gateway ends a connection after 2 hours, or after 10 minutes without a message",
  1006: "no close frame: the network dropped, or the server went away",
  1009: "a message over API Gateway's 128 KB (or a frame over 32 KB)",
};

/** Opens a socket; a 401/403 handshake rejects with RefusedError, anything else with its cause. */
function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { handshakeTimeout: REQUEST_TIMEOUT_MS });
    socket.on("error", reject); // stays attached: a late error must not crash the process
    socket.once("open", () => resolve(socket));
    socket.once("unexpected-response", (_request, response) => {
      const status = `HTTP ${response.statusCode} ${response.statusMessage ?? ""}`.trim();
      const reason = REFUSALS[response.statusCode ?? 0];
      const transient = TRANSIENT[response.statusCode ?? 0];
      reject(
        reason
          ? new RefusedError(`${status}: ${reason}`)
          : new Error(`the handshake was answered ${status}${transient ? `: ${transient}` : ""}`),
      );
      socket.terminate();
    });
  });
}

interface Pending {
  resolve: (frame: ServerFrame) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

class Connection {
  private readonly pending = new Map<string, Pending>();
  private refs = 0;

  constructor(
    private readonly socket: WebSocket,
    onFrame: (frame: ServerFrame) => void,
    onClose: (code: number, reason: string) => void,
  ) {
    socket.on("message", (data) => {
      const frame = parseFrame(data.toString());
      if (frame && !this.answer(frame)) onFrame(frame);
    });
    socket.on("close", (code, reason) => {
      for (const ref of [...this.pending.keys()])
        this.settle(ref, new ConnectionLostError("connection lost"));
      onClose(code, reason.toString());
    });
  }

  /** Sends `{ action, ...body, ref }` and resolves with the answer; an `error` answer rejects. */
  request(action: string, body: Record<string, unknown> = {}): Promise<ServerFrame> {
    const ref = `${action}-${++this.refs}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.settle(
            ref,
            new Error(`timeout: no answer to ${action} within ${REQUEST_TIMEOUT_MS / 1000} s`),
          ),
        REQUEST_TIMEOUT_MS,
      );
      this.pending.set(ref, { resolve, reject, timer });
      this.socket.send(JSON.stringify({ action, ...body, ref }), (error) => {
        if (error) this.settle(ref, new ConnectionLostError(error.message));
      });
    });
  }

  /** Closes with 1000; resolves when closed, or after a second. */
  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.socket.terminate();
        resolve();
      }, 1_000);
      this.socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.close(1000, "bye");
    });
  }

  /** Hands an answer to its request; false when the frame answers nothing of ours. */
  private answer(frame: ServerFrame): boolean {
    // Messages are never answers, even if the server copied a sender's ref into them.
    if (frame.type === "message" || frame.type === "direct" || typeof frame.ref !== "string") return false;
    if (!this.pending.has(frame.ref)) return false;
    this.settle(frame.ref, frame);
    return true;
  }

  private settle(ref: string, outcome: ServerFrame | Error): void {
    const pending = this.pending.get(ref);
    if (!pending) return;
    this.pending.delete(ref);
    clearTimeout(pending.timer);
    if (outcome instanceof Error) pending.reject(outcome);
    else if (outcome.type === "error") pending.reject(frameError(outcome));
    else pending.resolve(outcome);
  }
}

function parseFrame(raw: string): ServerFrame | undefined {
  try {
    const frame = JSON.parse(raw) as unknown;
    return frame && typeof frame === "object" && "type" in frame ? (frame as ServerFrame) : undefined;
  } catch {
    return undefined;
  }
}

function frameError(frame: ServerFrame): FrameError {
  const error = (frame.error ?? {}) as { code?: unknown; message?: unknown };
  return new FrameError(String(error.code ?? "error"), String(error.message ?? "the server refused"));
}

// ---------------------------------------------------------------------------------------------------
// The chat session: rooms, what was shown, reconnects

interface ChatOptions {
  url: string;
  /** A token for each connection attempt (a minted one is fresh each time). */
  token: () => Promise<string>;
  /** Our own principal, for the messages we send. */
  me: string;
  screen: Screen;
  /** Called when the server refuses us on a reconnect. */
  onRefused: (error: RefusedError) => void;
}

/** A promise with its resolve at hand. */
function gate() {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** 0.5 s, 1 s, 2 s, … up to 10 s, each ±20 % so that clients dropped together do not return together. */
const backoffMs = (attempt: number) =>
  Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt * (0.8 + Math.random() * 0.4));

/** A message id for a moment: a `since` cursor that means "from then on". */
const cursorAt = (iso: unknown) =>
  ulid(typeof iso === "string" && !Number.isNaN(Date.parse(iso)) ? Date.parse(iso) : Date.now());

class ChatSession {
  private connection: Connection | undefined;
  private online = gate();
  private reconnecting = false;
  private stopped = false;
  private current: string | undefined;
  private readonly rooms = new Set<string>();
  /** Per room (and INBOX): the newest message id seen, where catch-up starts after a reconnect. */
  private readonly cursors = new Map<string, string>();
  private readonly seen = new Set<string>();

  constructor(private readonly options: ChatOptions) {}

  /** Connects, joins the first room and shows its recent history. Rejects if the first connect fails. */
  async start(room: string): Promise<void> {
    // A handshake the server fails (a 5XX: the local stack's cold authorizer has been seen to) is
    // tried again a few times; a refused token, or no server listening, ends it at once.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.connect();
        break;
      } catch (error) {
        const transient = /HTTP 5\d\d/.test(error instanceof Error ? error.message : "");
        if (error instanceof RefusedError || !transient || attempt >= 3) throw error;
        this.print(`* the server failed the handshake; trying again (${attempt + 1}/3)`);
        await sleep(backoffMs(attempt));
      }
    }
    this.print(`* connected to ${this.options.url} as ${this.options.me}`);
    const joined = await this.join(room);
    this.cursors.set(INBOX, cursorAt(joined.at));
    this.online.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.connection?.close();
  }

  /** Runs one typed line: text for the current room, or a command. */
  async run(line: string): Promise<"quit" | undefined> {
    const text = line.trim();
    if (!text) return;
    if (/^\/quit\b/.test(text)) return "quit";
    await this.online.promise;
    try {
      if (text.startsWith("//") || !text.startsWith("/")) await this.say(text.replace(/^\//, ""));
      else await this.command(text);
    } catch (error) {
      this.print(describeError(error));
    }
  }

  private async command(text: string): Promise<void> {
    const [, name = "", rest = ""] = /^\/(\S*)\s*(.*)$/.exec(text) ?? [];
    const [first = ""] = rest.split(/\s+/);
    switch (name) {
      case "join":
        if (this.checkRoom(first)) await this.join(first);
        return;
      case "leave":
        return this.leave(first || this.current);
      case "rooms":
        return this.listRooms();
      case "members":
        return this.members(first || this.current);
      case "dm":
        return this.direct(first, rest.slice(first.length).trim());
      case "history":
        return this.history(first ? Number(first) : HISTORY_LIMIT);
      case "help":
        this.print(HELP);
        return;
      default:
        this.print(`! unknown command /${name}: /help lists them`);
    }
  }

  private async say(text: string): Promise<void> {
    const room = this.current;
    if (!room) return this.print("! not in a room: /join <room> first");
    const sent = await this.request("send", { room, text });
    this.show({ room, messageId: String(sent.messageId), from: this.options.me, text, sentAt: sent.at });
  }

  private async direct(target: string, text: string): Promise<void> {
    if (!target || !text) return this.print("! usage: /dm <principal> <text>");
    const to = target.includes(":") ? target : `dev:${target}`;
    const sent = await this.request("direct", { to, text });
    this.show({ to, messageId: String(sent.messageId), from: this.options.me, text, sentAt: sent.at });
    if (sent.recipients === 0) this.print(`* ${to} is not connected; the message waits in their inbox`);
  }

  private async join(room: string): Promise<ServerFrame> {
    const joined = await this.request("join", { room });
    this.rooms.add(room);
    this.switchTo(room);
    this.print(`* joined #${room}`);
    // With no message seen yet, a catch-up starts from the moment of joining.
    if (!this.cursors.has(room)) this.cursors.set(room, cursorAt(joined.at));
    await this.recent(room, HISTORY_LIMIT, { again: false });
    return joined;
  }

  private async leave(room: string | undefined): Promise<void> {
    if (!room) return this.print("! not in a room");
    await this.request("leave", { room });
    this.rooms.delete(room);
    this.cursors.delete(room);
    this.print(`* left #${room}`);
    if (room !== this.current) return;
    this.switchTo([...this.rooms].at(-1));
    this.print(this.current ? `* now in #${this.current}` : "* not in a room: /join <room> to talk");
  }

  private async listRooms(): Promise<void> {
    const reply = await this.request("rooms");
    const joined = (reply.joined as string[] | undefined) ?? [];
    const active = ((reply.active as { room: string }[] | undefined) ?? []).map((entry) => entry.room);
    this.print(`* joined: ${joined.map((room) => `#${room}`).join(", ") || "(none)"}`);
    this.print(`* active: ${active.map((room) => `#${room}`).join(", ") || "(none)"}`);
  }

  private async members(room: string | undefined): Promise<void> {
    if (!room) return this.print("! usage: /members <room>");
    const reply = await this.request("members", { room });
    const members = (reply.members as { principal: string; connections?: unknown }[] | undefined) ?? [];
    const names = members.map(({ principal, connections }) => {
      const count = Array.isArray(connections) ? connections.length : Number(connections ?? 1);
      return count > 1 ? `${printable(principal)} (${count} connections)` : printable(principal);
    });
    this.print(`* members of #${room}: ${names.join(", ") || "(none)"}`);
  }

  private async history(count: number): Promise<void> {
    if (!this.current) return this.print("! not in a room: /join <room> first");
    if (!Number.isInteger(count) || count < 1) return this.print("! usage: /history [n], n from 1 to 100");
    const shown = await this.recent(this.current, Math.min(count, HISTORY_PAGE), { again: true });
    if (shown === 0) this.print(`* no messages in #${this.current} yet`);
  }

  /** Shows the room's last `limit` messages; `again` shows those already on screen too. */
  private async recent(room: string, limit: number, { again }: { again: boolean }): Promise<number> {
    const reply = await this.request("history", { room, limit });
    return this.showAll(messagesOf(reply), { again });
  }

  /**
   * After a reconnect: every message since the cursor. The first page starts a little before it
   * (`since`, repeats are dropped by id); the next pages go on exactly from the last (`after`).
   */
  private async catchUp(key: string, target: { room: string } | { inbox: true }): Promise<void> {
    const since = this.cursors.get(key);
    let position: Record<string, string> = since ? { since } : {};
    for (let page = 0; page < MAX_CATCH_UP_PAGES; page++) {
      const reply = await this.request("history", { ...target, limit: HISTORY_PAGE, ...position });
      this.showAll(messagesOf(reply), { again: false });
      const cursor = typeof reply.cursor === "string" ? reply.cursor : undefined;
      if (reply.hasMore !== true || !cursor || cursor === position.after) return;
      position = { after: cursor };
    }
  }

  // --- frames -------------------------------------------------------------------------------------

  private onFrame(frame: ServerFrame): void {
    if (frame.type === "message" || frame.type === "direct") {
      this.show({ ...frame, messageId: String(frame.messageId ?? frame.id) } as ChatMessage);
    } else if (frame.type === "error") {
      this.print(describeError(frameError(frame)));
    }
  }

  private showAll(messages: ChatMessage[], { again }: { again: boolean }): number {
    // Ids are ULIDs: their plain string order is their time order.
    const ordered = [...messages].sort((a, b) => (idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0));
    return ordered.filter((message) => this.show(message, { again })).length;
  }

  /** Prints a message unless it was shown already (by id); true when printed. */
  private show(message: ChatMessage, { again = false }: { again?: boolean } = {}): boolean {
    const id = idOf(message);
    if (!id) return false;
    const key = message.room ?? INBOX;
    const cursor = this.cursors.get(key);
    if ((message.room === undefined || this.rooms.has(message.room)) && (!cursor || id > cursor)) {
      this.cursors.set(key, id);
    }
    const isNew = !this.seen.has(id);
    if (isNew) this.remember(id);
    if (!isNew && !again) return false;
    this.print(formatMessage(message));
    return true;
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > SEEN_IDS_KEPT) this.seen.delete(this.seen.values().next().value as string);
  }

  // --- connection ---------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    const token = await this.options.token();
    const socket = await openSocket(`${this.options.url}?token=${encodeURIComponent(token)}`);
    const connection: Connection = new Connection(
      socket,
      (frame) => this.onFrame(frame),
      // A connection given up on during a reconnect closes late; only the current one counts.
      (code, reason) => connection === this.connection && this.onClose(code, reason),
    );
    this.connection = connection;
  }

  private request(action: string, body?: Record<string, unknown>): Promise<ServerFrame> {
    if (!this.connection) return Promise.reject(new ConnectionLostError("not connected"));
    return this.connection.request(action, body);
  }

  private onClose(code: number, reason: string): void {
    if (this.stopped || this.reconnecting) return;
    this.online = gate();
    const meaning = CLOSE_CODES[code];
    this.print(`* connection lost (${code}${reason ? ` ${reason}` : ""})${meaning ? `: ${meaning}` : ""}`);
    void this.reconnect();
  }

  /** Tries again with backoff until connected, rejoined and caught up; a 401/403 ends the session. */
  private async reconnect(): Promise<void> {
    this.reconnecting = true;
    for (let attempt = 0; !this.stopped; attempt++) {
      const delay = backoffMs(attempt);
      this.print(`* reconnecting in ${(delay / 1000).toFixed(1)} s`);
      await sleep(delay);
      if (this.stopped) return;
      try {
        await this.connect();
        await this.rejoin();
        this.reconnecting = false;
        this.print("* reconnected");
        this.online.open();
        return;
      } catch (error) {
        if (error instanceof RefusedError) return this.options.onRefused(error);
        this.print(`* cannot reconnect: ${error instanceof Error ? error.message : String(error)}`);
        await this.connection?.close();
      }
    }
  }

  private async rejoin(): Promise<void> {
    for (const room of this.rooms) {
      await this.request("join", { room });
      await this.catchUp(room, { room });
    }
    await this.catchUp(INBOX, { inbox: true });
  }

  private switchTo(room: string | undefined): void {
    this.current = room;
    this.options.screen.setRoom(room);
  }

  private checkRoom(room: string): boolean {
    if (ROOM_NAME.test(room)) return true;
    this.print(
      `! invalid room "${printable(room)}": 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit`,
    );
    return false;
  }

  private print(line: string): void {
    this.options.screen.print(line);
  }
}

const idOf = (message: ChatMessage) => String(message.messageId ?? message.id ?? "");

function messagesOf(reply: ServerFrame): ChatMessage[] {
  const room = typeof reply.room === "string" ? reply.room : undefined;
  const messages = Array.isArray(reply.messages) ? (reply.messages as ChatMessage[]) : [];
  // Direct messages have no room; a room's history may leave the room out of each message.
  return messages.map((message) => (message.to || message.room || !room ? message : { ...message, room }));
}

// ---------------------------------------------------------------------------------------------------
// main

function readOptions() {
  try {
    const { values } = parseArgs({
      options: {
        room: { type: "string", default: "lobby" },
        name: { type: "string", default: process.env.USER || "guest" },
        token: { type: "string" },
        url: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      console.log(`${USAGE}\n\n${HELP}`);
      process.exit(0);
    }
    if (!ROOM_NAME.test(values.room))
      throw new Error(`--room ${JSON.stringify(values.room)} is not a room name`);
    return values;
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

/** The `sub` of a token we were given, to label what we send (the server checks the token itself). */
function subjectOf(token: string): string {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as {
      sub?: unknown;
    };
    return typeof payload.sub === "string" ? payload.sub : "me";
  } catch {
    return "me";
  }
}

async function main(): Promise<void> {
  const options = readOptions();
  const url =
    options.url ??
    process.env.GATEHOUSE_WS_URL ??
    `ws://127.0.0.1:${process.env.GATEHOUSE_WS_PORT ?? "3001"}`;
  const issuerPort = Number(process.env.GATEHOUSE_ISSUER_PORT ?? 3003);
  const root = join(import.meta.dirname, "..");
  const tty = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const rl = createInterface({
    input: process.stdin,
    output: tty ? process.stdout : undefined,
    terminal: tty,
  });
  const screen = new Screen(rl, tty);

  let exiting = false;
  const exit = async (code: number) => {
    if (exiting) return;
    exiting = true;
    await session.stop();
    rl.close();
    process.stdout.write(tty ? "\n" : "", () => process.exit(code));
  };
  const refused = (error: RefusedError) => {
    console.error(`! connection refused: ${error.message}`);
    void exit(1);
  };
  const session = new ChatSession({
    url,
    me: options.token ? subjectOf(options.token) : `dev:${options.name}`,
    token: async () =>
      options.token ?? devToken(root, { port: issuerPort, sub: options.name, scope: "chat:write" }),
    screen,
    onRefused: refused,
  });

  const started = session.start(options.room).then(
    () => screen.startPrompt(),
    (error: unknown) => {
      if (error instanceof RefusedError) return refused(error);
      console.error(
        `! cannot connect to ${url}: ${describeError(error).slice(2)} (is the local stack up? npm start)`,
      );
      void exit(1);
    },
  );
  // Lines run one after another, each once the one before was answered; they wait while offline.
  let queue: Promise<unknown> = started;
  rl.on("line", (line) => {
    screen.typed(line);
    queue = queue.then(async () => {
      if ((await session.run(line)) === "quit") await exit(0);
    });
  });
  rl.on("close", () => void queue.then(() => exit(0))); // Ctrl-D, or the end of piped input
  rl.on("SIGINT", () => void exit(0)); // Ctrl-C on a terminal
  process.on("SIGINT", () => void exit(0));
  process.on("SIGTERM", () => void exit(0));
}

await main();
