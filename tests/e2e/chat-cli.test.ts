import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";
import { ROOT } from "../support/serverless.ts";

// `npm run chat` (scripts/chat.ts) as a person uses it: real processes, typing into stdin, reading
// stdout, against the local stack on free ports of its own.

const CONNECTIONS = "gatehouse-local-connections";
const WAIT_MS = 20_000;
/** A room of this run's own, so reruns against a kept store never see old messages. */
const ROOM = `cli-${Date.now().toString(36)}`;

/** A chat client process with everything it printed. */
interface Chat {
  name: string;
  child: ChildProcessWithoutNullStreams;
  output(): string;
  type(line: string): void;
  /** Waits (bounded) until the output matches; the error shows what it printed. */
  waitFor(pattern: RegExp, what: string): Promise<void>;
  /** Waits (bounded) for the process to end; resolves with its exit code. */
  exit(): Promise<number | null>;
}

const chats: Chat[] = [];

function startChat(stack: LocalStack, name: string, args: string[] = []): Chat {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GATEHOUSE_WS_PORT: String(stack.ports.ws),
    GATEHOUSE_ISSUER_PORT: String(stack.ports.issuer),
  };
  delete env.GATEHOUSE_WS_URL; // a developer's own setting would point elsewhere
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "scripts/chat.ts", "--room", ROOM, "--name", name, ...args],
    { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const describeOutput = () => `${name}'s output so far:\n${output || "(nothing)"}`;

  const chat: Chat = {
    name,
    child,
    output: () => output,
    type: (line) => {
      child.stdin.write(`${line}\n`);
    },
    waitFor: async (pattern, what) => {
      const deadline = Date.now() + WAIT_MS;
      while (!pattern.test(output)) {
        if (child.exitCode !== null) {
          throw new Error(`${name} exited (${child.exitCode}) before printing ${what}. ${describeOutput()}`);
        }
        if (Date.now() > deadline) {
          throw new Error(`${name} did not print ${what} within ${WAIT_MS / 1000} s. ${describeOutput()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    exit: async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${name} did not exit within ${WAIT_MS / 1000} s. ${describeOutput()}`)),
          WAIT_MS,
        );
      });
      try {
        return await Promise.race([exited, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  chats.push(chat);
  return chat;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** One message line as the client prints it: `[HH:MM:SS] #room <from>: text`. */
const messageLine = (where: string, from: string, text: string) =>
  new RegExp(
    `^\\[\\d\\d:\\d\\d:\\d\\d\\] ${escapeRegExp(where)} <${escapeRegExp(from)}>: ${escapeRegExp(text)}$`,
    "m",
  );
const count = (output: string, pattern: RegExp) =>
  output.split("\n").filter((line) => pattern.test(line)).length;

describe("npm run chat: two terminal clients against the local stack", () => {
  let stack: LocalStack;
  let alice: Chat;
  let bob: Chat;

  before(async () => {
    stack = await startLocalStackOnFreePorts();
  });
  after(async () => {
    for (const chat of chats) if (chat.child.exitCode === null) chat.child.kill("SIGKILL");
    await stack?.stop();
  });

  it("both join the room; each sees what the other types", { timeout: 90_000 }, async () => {
    // Prepare
    alice = startChat(stack, "alice");
    bob = startChat(stack, "bob");
    await alice.waitFor(new RegExp(`^\\* joined #${ROOM}$`, "m"), `"* joined #${ROOM}"`);
    await bob.waitFor(new RegExp(`^\\* joined #${ROOM}$`, "m"), `"* joined #${ROOM}"`);

    // Act
    alice.type("hello from alice");
    await bob.waitFor(messageLine(`#${ROOM}`, "dev:alice", "hello from alice"), "alice's message");
    bob.type("hi alice, bob here");
    await alice.waitFor(messageLine(`#${ROOM}`, "dev:bob", "hi alice, bob here"), "bob's message");

    // Assess
    await alice.waitFor(messageLine(`#${ROOM}`, "dev:alice", "hello from alice"), "her own message");
    assert.equal(count(alice.output(), /hello from alice/), 1, `shown once:\n${alice.output()}`);
    assert.equal(count(bob.output(), /hello from alice/), 1, `shown once:\n${bob.output()}`);
  });

  it("/members lists both, and a /dm reaches only its addressee", { timeout: 60_000 }, async () => {
    alice.type("/members");
    await alice.waitFor(/^\* members of #\S+: .*dev:bob/m, "a members line naming dev:bob");
    assert.match(alice.output(), /^\* members of #\S+: .*dev:alice/m);

    alice.type("/dm bob psst, only for you");
    await bob.waitFor(messageLine("@dev:bob", "dev:alice", "psst, only for you"), "alice's direct message");
    bob.type("/dm dev:alice got it");
    await alice.waitFor(messageLine("@dev:alice", "dev:bob", "got it"), "bob's direct answer");
  });

  it("a late joiner sees the room's recent history, and Ctrl-C exits 0", { timeout: 60_000 }, async () => {
    const carol = startChat(stack, "carol");
    await carol.waitFor(
      messageLine(`#${ROOM}`, "dev:alice", "hello from alice"),
      "alice's message from history",
    );
    await carol.waitFor(
      messageLine(`#${ROOM}`, "dev:bob", "hi alice, bob here"),
      "bob's message from history",
    );
    assert.doesNotMatch(carol.output(), /psst/, "direct messages are not room history");
    carol.child.kill("SIGINT"); // Ctrl-C
    assert.equal(await carol.exit(), 0, carol.output());
  });

  it("a dropped connection reconnects, rejoins and catches up, showing nothing twice", {
    timeout: 90_000,
  }, async () => {
    // Prepare: the server side hangs up on alice (serverless-offline's @connections DELETE).
    const documents = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        endpoint: stack.dynamodbEndpoint,
        region: "us-east-1",
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      }),
    );
    const { Items = [] } = await documents.send(new ScanCommand({ TableName: CONNECTIONS }));
    const connection = Items.find((item) => item.principal === "dev:alice");
    assert.ok(connection, `alice has a connection record: ${JSON.stringify(Items)}`);

    // Act
    const dropped = await fetch(
      `${stack.wsUrl.replace("ws:", "http:")}/@connections/${connection.connectionId}`,
      {
        method: "DELETE",
      },
    );
    assert.equal(dropped.status, 204);
    await alice.waitFor(/^\* connection lost/m, "that the connection was lost");
    bob.type("while you were away");
    await alice.waitFor(/^\* reconnected$/m, '"* reconnected"');

    // Assess: the message sent meanwhile arrives once, and nothing seen before is repeated.
    await alice.waitFor(
      messageLine(`#${ROOM}`, "dev:bob", "while you were away"),
      "the message sent meanwhile",
    );
    alice.type("back again");
    await bob.waitFor(
      messageLine(`#${ROOM}`, "dev:alice", "back again"),
      "alice's message after the reconnect",
    );
    // Alice's own copy comes through the same fan-out, which may reach bob first.
    await alice.waitFor(messageLine(`#${ROOM}`, "dev:alice", "back again"), "alice's own copy");
    for (const text of ["hello from alice", "hi alice, bob here", "while you were away", "back again"]) {
      assert.equal(
        count(alice.output(), new RegExp(escapeRegExp(text))),
        1,
        `"${text}" once:\n${alice.output()}`,
      );
    }
  });

  it("/quit and the end of stdin both exit 0", { timeout: 60_000 }, async () => {
    alice.type("/quit");
    bob.child.stdin.end();
    assert.equal(await alice.exit(), 0, alice.output());
    assert.equal(await bob.exit(), 0, bob.output());
  });

  it("a refused token exits 1 and says so", { timeout: 60_000 }, async () => {
    const mallory = startChat(stack, "mallory", ["--token", "not.a.token"]);
    assert.equal(await mallory.exit(), 1, mallory.output());
    assert.match(mallory.output(), /^! connection refused: HTTP 40[13]/m);
  });
});
