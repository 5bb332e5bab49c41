import assert from "node:assert/strict";
import { get } from "node:http";
import { after, before, describe, it } from "node:test";
import type { Browser, Page, WebSocketRoute } from "playwright-core";
import { launchChromium } from "../support/browser.ts";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";

// The chat page (web/) in a real browser: Debian's Chromium driven by playwright-core, against the
// local stack on free ports of its own.
const WAIT_MS = 15_000;

interface ChatPage {
  name: string;
  page: Page;
}

describe("the chat page: two browsers chat through the local stack", () => {
  let stack: LocalStack | undefined;
  let browser: Browser | undefined;
  /** Uncaught exceptions, console errors and failed requests of every page, named by page. */
  const problems: string[] = [];

  before(async () => {
    browser = await launchChromium();
    stack = await startLocalStackOnFreePorts();
  });
  after(async () => {
    try {
      await browser?.close();
    } finally {
      await stack?.stop();
    }
  });

  /** A page in a browser context of its own (two people, not two tabs of one), watched for problems. */
  async function openChat(name: string, prepare?: (page: Page) => Promise<void>): Promise<ChatPage> {
    const context = await (browser as Browser).newContext();
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`${name}: uncaught ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`${name}: console error: ${message.text()}`);
    });
    page.on("requestfailed", (request) =>
      problems.push(`${name}: ${request.url()} failed: ${request.failure()?.errorText}`),
    );
    await prepare?.(page);
    await page.goto((stack as LocalStack).webUrl);
    return { name, page };
  }

  /** Waits (bounded) for `selector`, or fails saying what was awaited and what the page shows. */
  async function waitFor(
    { name, page }: ChatPage,
    selector: string,
    what: string,
    hasText?: string,
    timeoutMs = WAIT_MS,
  ) {
    const locator = page.locator(selector, hasText === undefined ? {} : { hasText }).first();
    try {
      await locator.waitFor({ state: "attached", timeout: timeoutMs });
    } catch {
      const status = await page.locator("#status").textContent();
      const errors = await page.locator("#errors").textContent();
      const tail = (stack as LocalStack).output().slice(-3_000);
      throw new Error(
        `${name}: ${what} not seen within ${timeoutMs} ms.\n  status: ${status?.trim()}\n  errors shown: ${errors?.trim() || "none"}\n  problems: ${problems.join("; ") || "none"}\n  local stack output (tail):\n${tail}`,
      );
    }
    return locator;
  }

  async function connectAndJoin(chat: ChatPage, room = "lobby") {
    await chat.page.getByLabel("Name", { exact: true }).fill(chat.name);
    await chat.page.getByRole("button", { name: "Connect", exact: true }).click();
    await waitFor(chat, '#status[data-state="connected"]', "the connected status");
    await chat.page.getByLabel("Room", { exact: true }).fill(room);
    await chat.page.getByRole("button", { name: "Join", exact: true }).click();
    await waitFor(chat, `#rooms li[data-room="${room}"][data-joined="true"]`, `room ${room} joined`);
  }

  /** Types into the message box and presses Enter (the way people send). */
  async function say({ page }: ChatPage, text: string) {
    const box = page.getByLabel("Message", { exact: true });
    await box.fill(text);
    await box.press("Enter");
  }

  /** The texts of the messages a page shows from `principal`. */
  const textsFrom = ({ page }: ChatPage, principal: string) =>
    page.locator(`#messages li[data-from="${principal}"] [data-testid="message-text"]`).allTextContents();

  let alice: ChatPage;
  let bob: ChatPage;

  it("serves the page with a strict CSP, its config and dev tokens; refuses bad names", async () => {
    const { webUrl, wsUrl, httpUrl } = stack as LocalStack;
    const page = await fetch(`${webUrl}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.equal(page.headers.get("cache-control"), "no-store");
    const csp = page.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    assert.ok(csp.includes(`connect-src 'self' ${wsUrl}`), csp);
    assert.match((await fetch(`${webUrl}/chat.js`)).headers.get("content-type") ?? "", /^text\/javascript/);
    assert.deepEqual(await (await fetch(`${webUrl}/config.json`)).json(), { wsUrl, httpUrl });

    const token = (await (await fetch(`${webUrl}/token?sub=alice`)).json()) as { token: string };
    const claims = JSON.parse(Buffer.from(token.token.split(".")[1] ?? "", "base64url").toString());
    assert.equal(claims.sub, "alice");
    assert.equal(claims.scope, "chat:write");
    for (const sub of ["", "a b", "<script>", "x".repeat(65)]) {
      const refused = await fetch(`${webUrl}/token?sub=${encodeURIComponent(sub)}`);
      assert.equal(refused.status, 400, `sub ${JSON.stringify(sub)}`);
      assert.equal(refused.headers.get("content-type"), "application/problem+json");
    }
    assert.equal((await fetch(`${webUrl}/package.json`)).status, 404);
    // A DNS-rebinding page reaches 127.0.0.1 under its own host name: no token for it. (fetch cannot
    // set Host, node:http can.)
    const rebound = await new Promise<number | undefined>((resolve, reject) =>
      get(`${webUrl}/token?sub=x`, { headers: { host: "evil.example" } }, (response) => {
        response.resume();
        resolve(response.statusCode);
      }).on("error", reject),
    );
    assert.equal(rebound, 421);
  });

  it("alice and bob connect and join lobby; each sees the other's message, sent with Enter", async () => {
    alice = await openChat("alice");
    bob = await openChat("bob");
    await connectAndJoin(alice);
    await connectAndJoin(bob);

    await say(alice, "hello from alice");
    const seenByBob = await waitFor(
      bob,
      '#messages li[data-from="dev:alice"]',
      "alice's message",
      "hello from alice",
    );
    assert.equal((await seenByBob.locator('[data-testid="message-from"]').textContent())?.trim(), "alice");
    assert.equal(
      await alice.page.getByLabel("Message", { exact: true }).inputValue(),
      "",
      "the box is cleared after sending",
    );

    await say(bob, "hi alice, bob here");
    await waitFor(alice, '#messages li[data-from="dev:bob"]', "bob's message", "hi alice, bob here");

    // The sender's copy (from `sent`) and the room's frame carry one id: each message is shown once.
    await waitFor(bob, '#messages li[data-from="dev:bob"]', "bob's own message", "hi alice, bob here");
    assert.deepEqual(await textsFrom(alice, "dev:alice"), ["hello from alice"]);
    assert.deepEqual(await textsFrom(alice, "dev:bob"), ["hi alice, bob here"]);
    assert.deepEqual(await textsFrom(bob, "dev:alice"), ["hello from alice"]);
    assert.deepEqual(await textsFrom(bob, "dev:bob"), ["hi alice, bob here"]);
  });

  it("the members list shows both, on both pages", async () => {
    for (const chat of [alice, bob]) {
      for (const principal of ["dev:alice", "dev:bob"]) {
        await waitFor(chat, `#members li[data-principal="${principal}"]`, `${principal} among the members`);
      }
    }
  });

  it("message text is shown as text, never as markup", async () => {
    const attack = `<img src=x onerror="document.title='pwned'"><b>bold</b>`;
    await say(alice, attack);
    const item = await waitFor(bob, '#messages li[data-from="dev:alice"]', "the markup message", "<img");
    assert.equal(await item.locator('[data-testid="message-text"]').textContent(), attack);
    assert.equal(await bob.page.locator("#messages img, #messages b").count(), 0);
    assert.notEqual(await bob.page.title(), "pwned");
  });

  it("a dropped connection reconnects with backoff, rejoins and catches up on what it missed", async () => {
    // carol's socket goes through a route the test can cut: while `offline`, every attempt is closed.
    let offline = false;
    let current: { page: WebSocketRoute; server: WebSocketRoute } | undefined;
    const carol = await openChat("carol", (page) =>
      page.routeWebSocket(
        (url) => url.protocol === "ws:",
        (route) => {
          if (offline) return route.close({ code: 4000, reason: "test: offline" });
          current = { page: route, server: route.connectToServer() };
        },
      ),
    );
    await connectAndJoin(carol);
    await say(alice, "before the drop");
    await waitFor(
      carol,
      '#messages li[data-from="dev:alice"]',
      "the message before the drop",
      "before the drop",
    );

    offline = true;
    await current?.server.close({ code: 1000 });
    await current?.page.close({ code: 4000, reason: "test: dropped" });
    await waitFor(carol, '#status[data-state="reconnecting"]', "the reconnecting status");
    await say(alice, "while carol was away");
    await waitFor(alice, '#messages li[data-from="dev:alice"]', "alice's own copy", "while carol was away");
    offline = false;

    // The backoff grew while offline (up to 15 s between attempts): allow for one more full step.
    await waitFor(carol, '#status[data-state="connected"]', "the connection to come back", undefined, 30_000);
    await waitFor(carol, '#rooms li[data-room="lobby"][data-joined="true"]', "lobby rejoined");
    await waitFor(carol, '#messages li[data-from="dev:alice"]', "the missed message", "while carol was away");
    assert.deepEqual(
      (await textsFrom(carol, "dev:alice")).filter((text) => !text.startsWith("<img")),
      ["hello from alice", "before the drop", "while carol was away"],
      "in order, once each: the catch-up overlap is dropped by id",
    );
    // And live again: a new message arrives as a frame.
    await say(bob, "welcome back carol");
    await waitFor(
      carol,
      '#messages li[data-from="dev:bob"]',
      "a live message after the reconnect",
      "welcome back",
    );
  });

  it("an error frame (a message over the size limit) is shown inline and the text is given back", async () => {
    // Deterministic, unlike a rate limit (which the local stack lets through when its store is slow).
    const dave = await openChat("dave");
    await connectAndJoin(dave, "errors");
    const tooLong = "x".repeat(40_000); // over websocket.chat.maxMessageBytes (32 KiB)
    await say(dave, tooLong);
    const error = await waitFor(
      dave,
      '#errors [data-testid="error"][data-code="payload-too-large"]',
      "the payload-too-large error",
    );
    assert.match(
      (await error.textContent()) ?? "",
      /^send errors: The message is \d+ bytes; the limit is 32768/,
    );
    assert.equal(await dave.page.getByLabel("Message", { exact: true }).inputValue(), tooLong);
    assert.equal(await dave.page.locator("#messages li").count(), 0, "nothing was sent");
    assert.equal(await dave.page.locator("#status").getAttribute("data-state"), "connected");
  });

  it("no page threw, logged an error or failed a request, and no error frame was shown", async () => {
    assert.deepEqual(problems, []);
    for (const chat of [alice, bob]) {
      assert.equal(
        await chat.page.locator('#errors [data-testid="error"]').count(),
        0,
        `${chat.name}'s errors`,
      );
    }
  });
});
