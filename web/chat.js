// The Gatehouse chat page: a plain browser ES module, no build step, no framework. It speaks the
// WebSocket protocol of shared/ws/protocol.ts. The local stack serves it (plugins/chat-page.mjs) with
// /config.json (where the WebSocket API is) and /token (a development token for a name).
//
// Text from the network is only ever set with textContent, never parsed as HTML.

const SUBPROTOCOL = "gatehouse.v1";
const SUB = /^[A-Za-z0-9_.-]{1,64}$/;
const ROOM = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Where direct messages are kept: not a valid room name, so it never clashes with one. */
const INBOX = "@direct";
const HISTORY_LIMIT = 50;
/** Members are asked for at most this often per room, and refreshed this often while a room is shown. */
const MEMBERS_MIN_GAP_MS = 2_000;
const MEMBERS_EVERY_MS = 15_000;
/** API Gateway closes a socket idle for 10 minutes; a ping well before that keeps it. */
const PING_EVERY_MS = 5 * 60_000;
/** Reconnect backoff: doubles from `first` up to `max`, each delay jittered so tabs do not stampede. */
const BACKOFF = { first: 500, max: 15_000 };
/** A connection that lived this long resets the backoff; one that drops at once keeps it growing. */
const STABLE_AFTER_MS = 10_000;
const MAX_ERRORS = 5;

/** @param {string} id */
const element = (id) => {
  const found = document.getElementById(id);
  if (!found) throw new Error(`chat.html has no #${id}`);
  return found;
};
const ui = {
  status: element("status"),
  connectForm: /** @type {HTMLFormElement} */ (element("connect-form")),
  name: /** @type {HTMLInputElement} */ (element("name")),
  connect: /** @type {HTMLButtonElement} */ (element("connect")),
  disconnect: /** @type {HTMLButtonElement} */ (element("disconnect")),
  joinForm: /** @type {HTMLFormElement} */ (element("join-form")),
  room: /** @type {HTMLInputElement} */ (element("room")),
  join: /** @type {HTMLButtonElement} */ (element("join")),
  leave: /** @type {HTMLButtonElement} */ (element("leave")),
  errors: element("errors"),
  currentRoom: element("current-room"),
  messages: element("messages"),
  sendForm: /** @type {HTMLFormElement} */ (element("send-form")),
  text: /** @type {HTMLInputElement} */ (element("text")),
  send: /** @type {HTMLButtonElement} */ (element("send")),
  rooms: element("rooms"),
  members: element("members"),
  endpoint: element("endpoint"),
};

/**
 * @typedef {{ id: string, from: string, text: string, sentAt: string, to?: string }} Message
 * @typedef {{ principal: string, connections?: number }} Member
 * @typedef {{
 *   key: string, want: boolean, live: boolean, lastId: string, unread: number,
 *   messages: Map<string, Message>, members: Member[], membersAskedAt: number,
 *   membersLater?: ReturnType<typeof setTimeout>,
 * }} Conversation
 * @typedef {{ action: string, room?: string, to?: string, text?: string, show?: boolean, catchUp?: boolean }} Pending
 */

const state = {
  /** @type {{ wsUrl: string, httpUrl: string } | undefined} */
  config: undefined,
  name: "",
  principal: "",
  /** @type {WebSocket | undefined} */
  socket: undefined,
  /** The user asked to be connected: an unexpected close reconnects. */
  wanted: false,
  attempt: 0,
  /** Bumped by every open(): an open() that finds it changed was overtaken (Disconnect, Connect). */
  generation: 0,
  /** @type {Map<string, Conversation>} rooms (and the inbox), kept across reconnects */
  conversations: new Map(),
  current: "",
  /** @type {Map<string, Pending>} what each `ref` asked, to make sense of its answer */
  pending: new Map(),
  nextRef: 0,
  /** @type {Record<string, ReturnType<typeof setTimeout> | undefined>} */
  timers: {},
};

// ---- connection ------------------------------------------------------------------------------

async function connect() {
  const name = ui.name.value.trim();
  if (!SUB.test(name)) {
    showError({ code: "invalid-name", message: "A name is 1-64 letters, digits, '_', '.' or '-'." });
    ui.name.focus();
    return;
  }
  if (state.name && state.name !== name) state.conversations.clear(); // another person: start afresh
  state.name = name;
  state.principal = `dev:${name}`;
  state.wanted = true;
  state.attempt = 0;
  render();
  ui.room.focus(); // the name field is now disabled; the next step is the room
  await open();
}

function disconnect() {
  state.wanted = false;
  state.generation++;
  clearTimer("retry");
  const socket = state.socket;
  state.socket = undefined;
  socket?.close(1000, "bye");
  for (const conversation of state.conversations.values()) conversation.live = false;
  setStatus("disconnected", "Disconnected");
  render();
}

async function open() {
  clearTimer("retry");
  const generation = ++state.generation;
  setStatus(
    "connecting",
    state.attempt === 0 ? "Connecting…" : `Reconnecting (attempt ${state.attempt + 1})…`,
  );
  let token;
  try {
    state.config ??= await getJson("/config.json");
    // A fresh token each time: a reconnect an hour later must not offer an expired one.
    ({ token } = await getJson(`/token?sub=${encodeURIComponent(state.name)}`));
  } catch (error) {
    if (generation !== state.generation) return;
    if (error instanceof RefusedError) {
      // The page server refused the name: retrying would not help.
      state.wanted = false;
      showError({ code: "token-refused", message: error.message });
      setStatus("disconnected", "Disconnected");
      render();
      return;
    }
    return scheduleReconnect(`the page server is unreachable (${errorMessage(error)})`);
  }
  if (!state.wanted || generation !== state.generation) return; // overtaken while the token was on its way
  const config = /** @type {{ wsUrl: string, httpUrl: string }} */ (state.config);
  ui.endpoint.textContent = `WebSocket API ${config.wsUrl}`;

  const socket = new WebSocket(config.wsUrl, [SUBPROTOCOL, token]);
  state.socket = socket;
  socket.addEventListener("open", () => {
    if (state.socket !== socket) return;
    setStatus("connected", `Connected as ${state.principal}`);
    state.timers.stable = setTimeout(() => {
      state.attempt = 0;
    }, STABLE_AFTER_MS);
    state.timers.ping = setInterval(() => request({ action: "ping" }), PING_EVERY_MS);
    state.timers.members = setInterval(() => {
      const conversation = state.conversations.get(state.current);
      if (conversation?.live) askMembers(conversation.key);
    }, MEMBERS_EVERY_MS);
    // Back in every room the user is in; each `joined` then catches up from the last id seen.
    for (const conversation of state.conversations.values()) {
      if (conversation.want && conversation.key !== INBOX)
        request({ action: "join", room: conversation.key });
    }
    askHistory(INBOX);
    render();
  });
  socket.addEventListener("message", (event) => {
    if (state.socket !== socket) return;
    let frame;
    try {
      frame = JSON.parse(String(event.data));
    } catch {
      return showError({ code: "bad-frame", message: "The server sent something that is not JSON." });
    }
    if (frame && typeof frame === "object") handle(frame);
  });
  socket.addEventListener("close", (event) => {
    if (state.socket !== socket) return;
    state.socket = undefined;
    for (const name of ["stable", "ping", "members"]) clearTimer(name);
    for (const conversation of state.conversations.values()) conversation.live = false;
    state.pending.clear();
    if (state.wanted) scheduleReconnect(closeReason(event));
    else setStatus("disconnected", "Disconnected");
    render();
  });
}

/** @param {string} why */
function scheduleReconnect(why) {
  if (!state.wanted) return;
  const ceiling = Math.min(BACKOFF.max, BACKOFF.first * 2 ** state.attempt);
  const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  state.attempt++;
  setStatus("reconnecting", `Connection lost: ${why}. Reconnecting in ${(delay / 1000).toFixed(1)} s…`);
  clearTimer("retry");
  state.timers.retry = setTimeout(() => void open(), delay);
  render();
}

/** @param {CloseEvent} event */
function closeReason(event) {
  // A refused handshake (401/403/429/500) reaches a browser only as 1006: it cannot tell it from a drop.
  if (event.code === 1006)
    return "closed abnormally (no close frame): the server may have refused the token, or this name has too many open connections";
  if (event.code === 1001)
    return "API Gateway ends a connection after 2 hours, or after 10 minutes without a message";
  if (event.code === 1009) return "a message was over API Gateway's 128 KB";
  return `closed with code ${event.code}${event.reason ? ` (${event.reason})` : ""}`;
}

/** @param {string} name */
function clearTimer(name) {
  clearTimeout(state.timers[name]);
  clearInterval(state.timers[name]);
  state.timers[name] = undefined;
}

class RefusedError extends Error {}

/** @param {string} path */
async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (response.status >= 400 && response.status < 500) {
    throw new RefusedError(body.detail ?? `${path}: HTTP ${response.status}`);
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return body;
}

/** @param {unknown} error */
const errorMessage = (error) => (error instanceof Error ? error.message : String(error));

/**
 * Sends an action with a fresh `ref`, and remembers what was asked so the answer (or error) can be
 * matched to it. `local` is kept here only: the server refuses members it does not know.
 * @param {{ action: string } & Record<string, unknown>} message
 * @param {{ show?: boolean, catchUp?: boolean }} [local]
 */
function request(message, local = {}) {
  const socket = state.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  const ref = `r${++state.nextRef}`;
  /** @type {Pending} */
  const asked = { action: message.action, ...local };
  for (const key of /** @type {const} */ (["room", "to", "text"])) {
    if (typeof message[key] === "string") asked[key] = /** @type {string} */ (message[key]);
  }
  if (message.action !== "ping") state.pending.set(ref, asked);
  socket.send(JSON.stringify({ ...message, ref }));
  return true;
}

// ---- frames ----------------------------------------------------------------------------------

/** @param {Record<string, any>} frame */
function handle(frame) {
  const asked = typeof frame.ref === "string" ? state.pending.get(frame.ref) : undefined;
  if (typeof frame.ref === "string") state.pending.delete(frame.ref);
  switch (frame.type) {
    case "joined": {
      const conversation = conversationFor(String(frame.room));
      conversation.want = true;
      conversation.live = true;
      askHistory(conversation.key);
      askMembers(conversation.key, { force: true });
      // A join the user asked for shows the room; a rejoin after a reconnect leaves the view alone.
      if (!state.current || state.current === INBOX || asked?.show) show(conversation.key);
      break;
    }
    case "left": {
      const conversation = conversationFor(String(frame.room));
      conversation.want = false;
      conversation.live = false;
      if (state.current === conversation.key) {
        show([...state.conversations.values()].find((other) => other.want)?.key ?? "");
      }
      break;
    }
    case "message":
      if (typeof frame.room === "string") {
        addMessage(frame.room, frame);
        const conversation = conversationFor(frame.room);
        // Someone new speaking is the cheapest sign that the member list changed.
        if (!conversation.members.some((member) => member.principal === frame.from)) askMembers(frame.room);
      }
      break;
    case "direct":
      addMessage(INBOX, frame);
      break;
    case "sent":
      // Shown from the answer, so the sender sees it even if the room's own frame is late or lost
      // (and a direct message has no frame for the sender); the same id arriving again is dropped.
      if (asked?.text !== undefined) {
        addMessage(asked.room ?? INBOX, {
          messageId: frame.messageId,
          from: state.principal,
          to: asked.to,
          text: asked.text,
          sentAt: frame.at,
        });
      }
      break;
    case "history": {
      const key = typeof frame.room === "string" ? frame.room : (asked?.room ?? INBOX);
      for (const message of Array.isArray(frame.messages) ? frame.messages : []) addMessage(key, message);
      // A catch-up pages forward to the present; a first look (the latest page) stops at one page.
      if (asked?.catchUp && frame.hasMore && typeof frame.cursor === "string") askHistory(key, frame.cursor);
      break;
    }
    case "members": {
      const conversation = conversationFor(String(frame.room));
      conversation.members = Array.isArray(frame.members) ? frame.members : [];
      break;
    }
    case "error":
      showError(frame.error ?? {}, asked);
      if (frame.error?.code === "gone") {
        // The server lost this connection's record: only a new connection is served again.
        state.socket?.close(4000, "gone");
        break;
      }
      if (asked?.action === "join" && asked.room) {
        const conversation = state.conversations.get(asked.room);
        if (conversation && !conversation.live) conversation.want = false;
      }
      if ((asked?.action === "send" || asked?.action === "direct") && asked.text && !ui.text.value) {
        ui.text.value =
          asked.action === "direct" ? `/dm ${displayName(asked.to ?? "")} ${asked.text}` : asked.text;
      }
      break;
    default:
      return; // pong, rooms and frames of later versions need nothing here
  }
  render();
}

/** @param {string} key */
function conversationFor(key) {
  let conversation = state.conversations.get(key);
  if (!conversation) {
    conversation = {
      key,
      want: false,
      live: false,
      lastId: "",
      unread: 0,
      messages: new Map(),
      members: [],
      membersAskedAt: 0,
    };
    state.conversations.set(key, conversation);
  }
  return conversation;
}

/**
 * Adds a message once: frames, `sent` answers and history all carry the same message id.
 * @param {string} key @param {Record<string, any>} raw
 */
function addMessage(key, raw) {
  const id = typeof raw.messageId === "string" ? raw.messageId : raw.id;
  if (typeof id !== "string" || typeof raw.text !== "string") return;
  const conversation = conversationFor(key);
  if (conversation.messages.has(id)) return;
  /** @type {Message} */
  const message = {
    id,
    from: String(raw.from ?? "unknown"),
    text: raw.text,
    sentAt: String(raw.sentAt ?? raw.at ?? new Date().toISOString()),
    ...(typeof raw.to === "string" ? { to: raw.to } : {}),
  };
  conversation.messages.set(id, message);
  // Message ids are ULIDs: they sort by time, so the greatest is the catch-up cursor.
  if (id > conversation.lastId) conversation.lastId = id;
  if (key === state.current) insertMessage(message);
  else if (message.from !== state.principal) conversation.unread++;
}

/**
 * Asks for what a conversation missed: from the last id seen (`since`, which overlaps a little, see
 * protocol.ts), or the next page strictly after `after`; with nothing seen yet, the latest page.
 * @param {string} key @param {string} [after]
 */
function askHistory(key, after) {
  const since = after ? undefined : conversationFor(key).lastId || undefined;
  request(
    {
      action: "history",
      ...(key === INBOX ? { inbox: true } : { room: key }),
      ...(after ? { after } : since ? { since } : {}),
      limit: HISTORY_LIMIT,
    },
    { catchUp: Boolean(after || since) },
  );
}

/** @param {string} room @param {{ force?: boolean }} [options] */
function askMembers(room, { force = false } = {}) {
  const conversation = conversationFor(room);
  const wait = conversation.membersAskedAt + MEMBERS_MIN_GAP_MS - Date.now();
  if (!force && wait > 0) {
    // Too soon: ask once at the end of the gap rather than not at all (a newcomer who spoke just
    // after the last answer must still show up).
    conversation.membersLater ??= setTimeout(() => {
      conversation.membersLater = undefined;
      if (conversation.live) askMembers(room, { force: true });
    }, wait);
    return;
  }
  clearTimeout(conversation.membersLater);
  conversation.membersLater = undefined;
  conversation.membersAskedAt = Date.now();
  request({ action: "members", room });
}

// ---- rendering -------------------------------------------------------------------------------

/** @param {"disconnected" | "connecting" | "connected" | "reconnecting"} kind @param {string} text */
function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

/** @param {string} principal */
const displayName = (principal) => (principal.startsWith("dev:") ? principal.slice(4) : principal);

/** @param {string} key */
function show(key) {
  state.current = key;
  const conversation = key ? conversationFor(key) : undefined;
  if (conversation) conversation.unread = 0;
  ui.messages.replaceChildren();
  for (const message of [...(conversation?.messages.values() ?? [])].sort(byId)) insertMessage(message);
  if (conversation && conversation.key !== INBOX) askMembers(conversation.key);
  render();
}

/** @param {Message} a @param {Message} b */
const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** @param {Message} message */
function insertMessage(message) {
  const item = document.createElement("li");
  item.className = message.from === state.principal ? "message mine" : "message";
  item.dataset.testid = "message";
  item.dataset.id = message.id;
  item.dataset.from = message.from;

  const from = document.createElement("span");
  from.className = "from";
  from.dataset.testid = "message-from";
  from.textContent = displayName(message.from);
  from.title = message.from;

  const time = document.createElement("time");
  const sentAt = new Date(message.sentAt);
  time.dateTime = message.sentAt;
  time.textContent = Number.isNaN(sentAt.getTime()) ? "" : sentAt.toLocaleTimeString();

  const text = document.createElement("p");
  text.className = "text";
  text.dataset.testid = "message-text";
  text.textContent = message.text;

  item.append(from, " ", time);
  if (message.to) {
    const to = document.createElement("span");
    to.className = "to";
    to.textContent = `→ ${displayName(message.to)}`;
    item.append(" ", to);
  }
  item.append(text);

  // Keep id order: a history page or a late frame can arrive after newer messages.
  const list = ui.messages;
  const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  let after = /** @type {HTMLElement | null} */ (list.lastElementChild);
  while (after && String(after.dataset.id) > message.id) {
    after = /** @type {HTMLElement | null} */ (after.previousElementSibling);
  }
  if (after) after.after(item);
  else list.prepend(item);
  if (stick || message.from === state.principal) list.scrollTop = list.scrollHeight;
}

function render() {
  const open = state.socket?.readyState === WebSocket.OPEN;
  const current = state.current ? state.conversations.get(state.current) : undefined;

  ui.name.disabled = state.wanted;
  ui.connect.disabled = state.wanted;
  ui.disconnect.disabled = !state.wanted;
  ui.join.disabled = !open;
  ui.room.disabled = !state.wanted;
  ui.leave.disabled = !(open && current?.live && current.key !== INBOX);
  ui.text.disabled = !open;
  ui.send.disabled = !open;
  ui.currentRoom.textContent = current
    ? current.key === INBOX
      ? "direct messages"
      : `in ${current.key}`
    : "";

  const rooms = [...state.conversations.values()].filter(
    (conversation) => conversation.want || (conversation.key === INBOX && conversation.messages.size > 0),
  );
  const roomsShown = rooms.map((c) => [c.key, c.live, c.unread, c.key === state.current]);
  replaceIfChanged(ui.rooms, roomsShown, () =>
    rooms.map((conversation) => {
      const item = document.createElement("li");
      item.dataset.room = conversation.key;
      item.dataset.joined = String(conversation.live);
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.testid = `room-${conversation.key}`;
      button.textContent = conversation.key === INBOX ? "Direct messages" : conversation.key;
      if (conversation.key === state.current) button.setAttribute("aria-current", "true");
      if (conversation.unread > 0) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = String(conversation.unread);
        badge.setAttribute("aria-label", `${conversation.unread} unread`);
        button.append(" ", badge);
      }
      if (conversation.key !== INBOX && !conversation.live) button.append(" (joining…)");
      button.addEventListener("click", () => show(conversation.key));
      item.append(button);
      return item;
    }),
  );

  const members = [...(current && current.key !== INBOX ? current.members : [])].sort((a, b) =>
    a.principal.localeCompare(b.principal),
  );
  replaceIfChanged(ui.members, [state.principal, members], () =>
    members.map((member) => {
      const item = document.createElement("li");
      item.dataset.testid = "member";
      item.dataset.principal = member.principal;
      item.textContent = displayName(member.principal);
      item.title = member.principal;
      if (member.principal === state.principal) item.append(" (you)");
      if ((member.connections ?? 1) > 1) item.append(` · ${member.connections} connections`);
      return item;
    }),
  );
}

/** What each list shows now: rebuilt only when that changes, so a focused button keeps its focus. */
const shown = new WeakMap();

/** @param {HTMLElement} list @param {unknown} model @param {() => Node[]} build */
function replaceIfChanged(list, model, build) {
  const signature = JSON.stringify(model);
  if (shown.get(list) === signature) return;
  shown.set(list, signature);
  list.replaceChildren(...build());
}

/**
 * Shows an error frame (or a client-side problem) inline; the newest few are kept.
 * @param {{ code?: string, status?: number, message?: string }} error @param {Pending} [asked]
 */
function showError(error, asked) {
  const item = document.createElement("p");
  item.className = "error";
  item.dataset.testid = "error";
  item.dataset.code = String(error.code ?? "error");
  const what = asked ? `${asked.action}${asked.room ? ` ${asked.room}` : ""}: ` : "";
  item.textContent = `${what}${error.message ?? "something went wrong"} (${error.code ?? "error"})`;
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.textContent = "Dismiss";
  dismiss.setAttribute("aria-label", "Dismiss this error");
  dismiss.addEventListener("click", () => item.remove());
  item.append(" ", dismiss);
  ui.errors.prepend(item);
  while (ui.errors.childElementCount > MAX_ERRORS) ui.errors.lastElementChild?.remove();
}

// ---- wiring ----------------------------------------------------------------------------------

ui.connectForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void connect();
});
ui.disconnect.addEventListener("click", disconnect);
ui.joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const room = ui.room.value.trim();
  if (!ROOM.test(room)) {
    showError({ code: "invalid-room", message: "A room is 1-64 letters, digits, '_', '.' or '-'." });
    return;
  }
  const conversation = conversationFor(room);
  if (conversation.live) show(room);
  else if (request({ action: "join", room }, { show: true })) conversation.want = true; // rejoined after a drop
  ui.text.focus();
  render();
});
ui.leave.addEventListener("click", () => {
  if (state.current && state.current !== INBOX) request({ action: "leave", room: state.current });
});
ui.sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = ui.text.value.trim();
  if (!input) return;
  const direct = input.match(/^\/dm\s+(\S+)\s+([\s\S]+)$/);
  if (direct) {
    const [, name = "", text = ""] = direct;
    request({ action: "direct", to: name.includes(":") ? name : `dev:${name}`, text });
  } else if (state.conversations.get(state.current)?.live) {
    request({ action: "send", room: state.current, text: input });
  } else {
    showError({ code: "no-room", message: "Join a room first (or write /dm name text)." });
    return;
  }
  ui.text.value = "";
});
// Back online: try now rather than at the end of a long backoff.
window.addEventListener("online", () => {
  if (state.wanted && !state.socket && state.timers.retry) void open();
});

// ?name=alice&room=lobby fills the fields, for bookmarks and tests.
const params = new URLSearchParams(location.search);
ui.name.value = params.get("name") ?? "";
ui.room.value = params.get("room") ?? ui.room.value;
render();
ui.name.focus();
