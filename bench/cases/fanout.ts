/**
 * WebSocket fan-out through the real local stack (what `npm start` runs: serverless-offline, dynalite,
 * the wsChat and rooms functions): the time to deliver one message to every connection of a room of
 * 100, 500 and 1,000 real WebSocket connections, every delivery checked, and the stack's memory.
 *
 * Setup per size: N `ws` clients in this process, each with a token of its own (a distinct `sub`, so
 * the per-principal message limit never applies), connect and `join` one room, CONNECT_CONCURRENCY at
 * a time (serverless-offline runs one worker thread per concurrent invocation of a function, so an
 * unbounded burst of handshakes would measure thread start-ups, not the gateway), each waiting for
 * its `joined` frame. The room's memberships are then read back from dynalite: there must be N. A
 * handshake the stack refuses with a 5XX is retried (HANDSHAKE_RETRIES) and counted in the setup row.
 *
 * Measures: one untimed warm-up each per size, then RUNS timed runs each, round-robin (a different
 * measure first in each run, so drift in machine load is shared):
 * - "stack": `POST /rooms/{room}/messages` (the HTTP bridge, with a key the case creates on the
 *   `pro` plan): API-key
 *   authorizer, rooms function (message stored, room members read, `fanOut` at the configured
 *   concurrency, `gateway.websocket.chat.fanoutConcurrency`), PostToConnection to serverless-offline's
 *   management endpoint, frames out to the sockets. Timed from the `fetch` call to the moment the
 *   LAST client received the `message` frame whose `id` is the one the 201 names.
 * - "baseline: fanOut in the bench, conc C": the same `fanOut` (shared/ws/fanout.ts) called in THIS
 *   process with the SDK's PostToConnection (shared/clients/websocket-management.ts), against the same
 *   stack's management endpoint and the same N connection ids (read from dynalite), with a payload of
 *   the same shape and size, at concurrency 1, the configured value and 128. It is the fan-out loop
 *   alone: no authorizer, no Lambda invocation, no DynamoDB; the server side (management API, sockets)
 *   is the same stack's. Timed from the call to the last client's frame, as above.
 *
 * Columns:
 * - "median/min/max ms" over the timed runs; "µs/conn" the median over N. On the setup row: the wall
 *   clock of the whole connect + join phase (one sample) and that over N (not a handshake's latency:
 *   CONNECT_CONCURRENCY run at once).
 * - "vs fanOut cfg": the row's median over the baseline's median at the configured concurrency, same
 *   N. On the stack row: what the whole request costs around the fan-out loop. On the baseline rows:
 *   what bounded concurrency buys over one at a time (conc 1), and what more would (conc 128).
 * - "delivered": distinct clients that received each message, summed over all runs (warm-up
 *   included) / N per message. "dup": frames a client received again (target 0). "wrong": frames
 *   whose `room` or `messageId` did not match their `id` (target 0). "reported": the publisher's own
 *   delivered/recipients, summed: the 201's for the stack, the FanoutReport's for the baseline.
 *   "result" is ok when every message reached every client exactly once and the publisher agrees.
 * - "201 ms": the stack row's start to the HTTP answer (sent once its fan-out finished). "fanOut ms":
 *   `fanOut`'s own duration: the FanoutDuration the rooms function reported (its EMF line in the
 *   stack's output) on the stack row, the FanoutReport's `durationMs` on the baseline rows.
 * - Memory of the stack process, from /proc/<pid>/status. It is one process: serverless-offline, its
 *   handlers' worker threads (each invocation's function; they share its address space, so VmHWM
 *   covers them), dynalite, the WebSocket server, the issuer and demo services. VmHWM is reset to the
 *   current RSS (/proc/<pid>/clear_refs) when each run starts. "RSS MB": RSS when the measure's first
 *   run started; "peak MB": the highest VmHWM over its runs; "growth MB": the largest rise within one
 *   run (VmHWM minus RSS at that run's start). Measures interleave, so memory one run keeps shows in
 *   the next measure's RSS and peak, not in its growth. "threads": the process's threads after the
 *   measure (Node's own, plus one per handler worker alive: an idle worker lives on for 60 to 120 s).
 *
 * Wall clock on one machine: the clients, the baseline's fanOut and the stack share its CPUs, and the
 * clients' event loop (parsing every frame) is inside every time. After each size the sockets are
 * closed CLOSE_CONCURRENCY at a time, each batch once its $disconnect invocations have finished, and
 * the room must then be empty; the stack is stopped at the end. `BENCH_FANOUT_SIZES` (e.g.
 * "100,500,1000") and `BENCH_FANOUT_RUNS` (default 7) override the defaults; BENCH_RUNS does not apply
 * (each run is a whole fan-out). `--quick`: a room of 10, one timed run per measure. `BENCH_FANOUT_STACK_LOG=<file>` keeps the stack's whole output.
 */
import { readFileSync, writeFileSync } from "node:fs";
import type { Metrics } from "@aws-lambda-powertools/metrics";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import pMap from "p-map";
import WebSocket from "ws";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { postToConnection } from "#shared/clients/websocket-management.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import { type FanoutReport, fanOut } from "#shared/ws/fanout.ts";
import { roomStore } from "#shared/ws/room-store.ts";
import gatewayDefinition from "../../gateway.config.ts";
import { devToken } from "../../plugins/dev-issuer.mjs";
import { freePorts, startLocalStack } from "../../tests/support/local-stack.ts";
import { resolvedService } from "../../tests/support/serverless.ts";
import { type BenchContext, type Column, createBenchKey, median, round } from "../lib.ts";

const DEFAULT_SIZES = [100, 500, 1_000];
const DEFAULT_RUNS = 7;
/** `--quick`: one small room, one timed run per measure: proves the path works, times nothing. */
const QUICK_SIZES = [10];
const QUICK_RUNS = 1;
/** The baseline's concurrencies, besides the configured one. */
const BASELINE_CONCURRENCY = [1, 128];
const CONNECT_CONCURRENCY = 8;
const CLOSE_CONCURRENCY = 8;
/** After a size's runs, before its frames are counted: late frames and duplicates arrive in it. */
const SETTLE_MS = 500;
/** Characters of the stack's output kept with an error. */
const STACK_TAIL = 6_000;
const TEXT = "fan-out bench: one message to every connection in the room";
/** Bounded waits. */
const HANDSHAKE_TIMEOUT_MS = 30_000;
/** Retries of a handshake the stack refused with a 5XX. */
const HANDSHAKE_RETRIES = 2;
const deliveryTimeoutMs = (n: number) => 20_000 + 20 * n;

export interface FanoutRow {
  /** Connections in the room; null on the summary row. */
  connections: number | null;
  measure: string;
  runs: number | null;
  medianMs: number | null;
  minMs: number | null;
  maxMs: number | null;
  usPerConnection: number | null;
  vsBaseline: number | null;
  delivered: string;
  duplicates: number | null;
  wrong: number | null;
  reported: string;
  answerMs: number | null;
  fanoutMs: number | null;
  rssMb: number | null;
  peakMb: number | null;
  growthMb: number | null;
  threads: number | null;
  status: "ok" | "MISS" | "";
  samplesMs: number[];
  /** What went wrong on the way (refused handshakes), in the JSON only. */
  notes: string[];
}

export const fanoutColumns: Column<FanoutRow>[] = [
  { header: "N", value: (r) => r.connections },
  { header: "measure", value: (r) => r.measure },
  { header: "runs", value: (r) => r.runs },
  { header: "median ms", value: (r) => r.medianMs, decimals: 1 },
  { header: "min ms", value: (r) => r.minMs, decimals: 1 },
  { header: "max ms", value: (r) => r.maxMs, decimals: 1 },
  { header: "µs/conn", value: (r) => r.usPerConnection, decimals: 0 },
  { header: "vs fanOut cfg", value: (r) => (r.vsBaseline === null ? null : `${r.vsBaseline.toFixed(2)}×`) },
  { header: "delivered", value: (r) => r.delivered },
  { header: "dup", value: (r) => r.duplicates },
  { header: "wrong", value: (r) => r.wrong },
  { header: "reported", value: (r) => r.reported },
  { header: "201 ms", value: (r) => r.answerMs, decimals: 1 },
  { header: "fanOut ms", value: (r) => r.fanoutMs, decimals: 1 },
  { header: "RSS MB", value: (r) => r.rssMb, decimals: 0 },
  { header: "peak MB", value: (r) => r.peakMb, decimals: 0 },
  { header: "growth MB", value: (r) => r.growthMb, decimals: 0 },
  { header: "threads", value: (r) => r.threads },
  { header: "result", value: (r) => r.status },
];

function blankRow(connections: number | null, measure: string): FanoutRow {
  return {
    connections,
    measure,
    runs: null,
    medianMs: null,
    minMs: null,
    maxMs: null,
    usPerConnection: null,
    vsBaseline: null,
    delivered: "",
    duplicates: null,
    wrong: null,
    reported: "",
    answerMs: null,
    fanoutMs: null,
    rssMb: null,
    peakMb: null,
    growthMb: null,
    threads: null,
    status: "",
    samplesMs: [],
    notes: [],
  };
}

function positiveIntegers(name: string, fallback: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const values = raw.split(",").map((part) => Number(part.trim()));
  if (values.length === 0 || values.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`${name} must be positive integers separated by commas, got "${raw}"`);
  return values;
}

/** The open-files limit of this process (the stack, its child, inherits it). */
function openFilesLimit(): number {
  const line = readFileSync("/proc/self/limits", "utf8")
    .split("\n")
    .find((l) => l.startsWith("Max open files"));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === "unlimited" ? Number.POSITIVE_INFINITY : Number(soft);
}

/** RSS, peak RSS (VmHWM) in MB and thread count of a process, from /proc/<pid>/status. */
function memoryOf(pid: number): { rssMb: number; peakMb: number; threads: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(status);
    if (!match?.[1]) throw new Error(`fanout: no ${name} in /proc/${pid}/status`);
    return Number(match[1]);
  };
  return { rssMb: field("VmRSS") / 1024, peakMb: field("VmHWM") / 1024, threads: field("Threads") };
}

/** The memory columns of a measure: RSS at its start, its own peak, the growth. */
class MemoryWindow {
  private startRss: number | undefined;
  private peak = 0;
  private growth = 0;
  private opened = 0;
  constructor(private readonly pid: number) {}
  /** Starts a peak window (one run): resets the peak to the RSS now. Several windows make one measure. */
  open(): void {
    // Resets the process's VmHWM to its current RSS (Linux, `5` to clear_refs), so the peak is new.
    writeFileSync(`/proc/${this.pid}/clear_refs`, "5");
    const { rssMb } = memoryOf(this.pid);
    this.startRss ??= rssMb;
    this.opened = rssMb;
  }
  /** Ends the window: its peak, and its growth over the RSS it opened at. */
  take(): void {
    const { peakMb } = memoryOf(this.pid);
    this.peak = Math.max(this.peak, peakMb);
    this.growth = Math.max(this.growth, peakMb - this.opened);
  }
  columns() {
    return {
      rssMb: this.startRss === undefined ? null : round(this.startRss, 0),
      peakMb: round(this.peak, 0),
      growthMb: round(this.growth, 0),
      threads: memoryOf(this.pid).threads,
    };
  }
}

interface Receipt {
  /** Clients that received the frame. */
  count: number;
  /** When the last of them did (performance.now()). */
  lastAt: number;
  /** Frames received again by a client that already had this id. */
  duplicates: number;
  /** Frames with this id whose messageId or room did not match. */
  wrong: number;
}

/**
 * Every `message` frame the clients receive, by id: how many clients got it and when the last one
 * did. A waiter resolves once `expected` clients have it.
 */
class Deliveries {
  readonly receipts = new Map<string, Receipt>();
  /** Frames that were not JSON, had no id, or were not expected at all. */
  stray = 0;
  private waiters = new Map<string, { expected: number; resolve: () => void }>();

  record(client: Client, frame: Record<string, unknown>): void {
    const id = frame.id;
    if (typeof id !== "string") {
      this.stray++;
      return;
    }
    const receipt = this.receipts.get(id) ?? { count: 0, lastAt: 0, duplicates: 0, wrong: 0 };
    this.receipts.set(id, receipt);
    if (frame.messageId !== id || frame.room !== client.room) receipt.wrong++;
    if (client.seen.has(id)) {
      receipt.duplicates++;
      return;
    }
    client.seen.add(id);
    receipt.count++;
    receipt.lastAt = performance.now();
    const waiter = this.waiters.get(id);
    if (waiter && receipt.count >= waiter.expected) waiter.resolve();
  }

  /** Resolves with the receipt once `expected` clients have `id`, or with what arrived by the timeout. */
  async wait(id: string, expected: number, timeoutMs: number): Promise<Receipt> {
    const done = () => this.receipts.get(id) ?? { count: 0, lastAt: 0, duplicates: 0, wrong: 0 };
    if (done().count >= expected) return done();
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.waiters.set(id, { expected, resolve });
      timer = setTimeout(resolve, timeoutMs);
    });
    clearTimeout(timer);
    this.waiters.delete(id);
    return done();
  }
}

interface Client {
  socket: WebSocket;
  room: string;
  seen: Set<string>;
}

/** Opens one client, joins `room`, resolves on its `joined` frame; later `message` frames go to `deliveries`. */
function connectAndJoin(url: string, room: string, deliveries: Deliveries): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const client: Client = { socket, room, seen: new Set() };
    let joined = false;
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.terminate();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new Error(`fanout: no joined frame within ${HANDSHAKE_TIMEOUT_MS} ms (room ${room})`)),
      HANDSHAKE_TIMEOUT_MS,
    );
    socket.once("open", () => socket.send(JSON.stringify({ action: "join", room })));
    socket.on("message", (data) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        deliveries.stray++;
        return;
      }
      if (frame.type === "message") {
        deliveries.record(client, frame);
      } else if (!joined && frame.type === "joined" && frame.room === room) {
        joined = true;
        clearTimeout(timer);
        resolve(client);
      } else if (!joined) {
        fail(new Error(`fanout: join ${room} answered ${JSON.stringify(frame).slice(0, 300)}`));
      } else {
        deliveries.stray++;
      }
    });
    socket.on("error", (error) => {
      if (!joined) fail(new Error(`fanout: WebSocket to ${room}: ${error.message}`));
    });
    socket.once("close", (code) => {
      if (!joined) fail(new Error(`fanout: WebSocket to ${room} closed (${code}) before joining`));
    });
  });
}

function closeClient(client: Client): Promise<void> {
  if (client.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.socket.terminate();
      resolve();
    }, 5_000);
    client.socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    client.socket.close();
  });
}

async function waitUntil(condition: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`fanout: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** $disconnect invocations that finished (serverless-offline's duration line) in output printed since `from`. */
function countDisconnects(output: string, from: number): number {
  return output.slice(from).match(/\(λ: wsDisconnect\) RequestId: \S+ {2}Duration:/g)?.length ?? 0;
}

/** The FanoutDuration the rooms function reported (EMF) in stack output printed since `from`. */
function reportedFanoutMs(output: string, from: number): number | null {
  for (const line of output.slice(from).split("\n")) {
    const start = line.indexOf("{");
    if (start < 0 || !line.includes('"FanoutDuration"')) continue;
    try {
      const record = JSON.parse(line.slice(start)) as { kind?: string; FanoutDuration?: number };
      if (record.kind === "bridge" && typeof record.FanoutDuration === "number") return record.FanoutDuration;
    } catch {
      // not a whole JSON line
    }
  }
  return null;
}

/**
 * The SDK in this process (the baseline's PostToConnection) gets the local stack's fake credentials
 * and region, as the stack's handlers do; the previous values come back when the case ends.
 */
function useLocalCredentials(): () => void {
  const local: Record<string, string | undefined> = {
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_SESSION_TOKEN: undefined,
    AWS_REGION: "us-east-1",
  };
  const saved = Object.fromEntries(Object.keys(local).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(local);
  return () => apply(saved);
}

/** The baseline's fanOut reports no metrics: its EMF lines would only be printed here. */
const silentMetrics = {
  addDimension() {},
  addMetric() {},
  publishStoredMetrics() {},
} as unknown as Metrics;

interface Sample {
  /** The message id (the frames' `id`). */
  id: string;
  ms: number | null;
  delivered: number;
  expected: number;
  reportedDelivered: number;
  reportedRecipients: number;
  answerMs?: number;
  fanoutMs?: number | null;
}

interface Measure {
  measure: string;
  /** The baseline's concurrency, or undefined for the stack. */
  concurrency?: number;
  samples: Sample[];
  memory?: MemoryWindow;
  /** Run once; returns the sample. */
  run: () => Promise<Sample>;
}

export async function fanout(ctx: BenchContext): Promise<FanoutRow[]> {
  const sizes = positiveIntegers("BENCH_FANOUT_SIZES", ctx.quick ? QUICK_SIZES : DEFAULT_SIZES).sort(
    (a, b) => a - b,
  );
  const defaultRuns = ctx.quick ? QUICK_RUNS : DEFAULT_RUNS;
  const [runs = defaultRuns] = positiveIntegers("BENCH_FANOUT_RUNS", [defaultRuns]);
  const largest = Math.max(...sizes);
  const files = openFilesLimit();
  if (files < largest + 512)
    throw new Error(
      `fanout: ${largest} connections need more open files than this process may have (${files}); raise \`ulimit -n\``,
    );
  const configured = loadGateway(gatewayDefinition, "local").websocket.chat.fanoutConcurrency;
  const concurrencies = [...new Set([...BASELINE_CONCURRENCY, configured])].sort((a, b) => a - b);

  const roomMembersTable = String((await resolvedService("local")).custom.tables.roomMembers);
  const stack = await startLocalStack(await freePorts());
  const restoreCredentials = useLocalCredentials();
  const clients: Client[] = [];
  const dynamo = new DynamoDBClient({
    endpoint: stack.dynamodbEndpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  });
  try {
    const pid = stack.pid;
    if (pid === undefined) throw new Error("fanout: the local stack has no process id");
    const rooms = roomStore({ client: createDocumentClient(dynamo), tableName: roomMembersTable });
    // A key of the bench's own, on the config's largest plan, so the demo key's quota is never spent.
    const apiKey = await createBenchKey(stack, {
      owner: "bench-fanout",
      plan: "pro",
      scopes: ["chat:write"],
    });
    const post = postToConnection(stack.wsUrl.replace(/^ws:/, "http:"));
    const deliveries = new Deliveries();
    const rows: FanoutRow[] = [];
    const tag = Date.now().toString(36);

    for (const n of sizes) {
      const room = `fanout-${n}-${tag}`;
      // Setup: N clients join the room.
      const setupMemory = new MemoryWindow(pid);
      setupMemory.open();
      const t0 = performance.now();
      const tokens = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          devToken(ctx.root, { port: stack.ports.issuer, sub: `fanout-${n}-${i}`, scope: "chat:write" }),
        ),
      );
      const refused: string[] = [];
      const joined = await pMap(
        tokens,
        async (token) => {
          // A handshake the stack refuses with a 5XX (a handler that failed or timed out, e.g. a
          // worker's cold start past the authorizer's 5 s) is retried, and counted in the setup row.
          for (let attempt = 1; ; attempt++) {
            try {
              const client = await connectAndJoin(`${stack.wsUrl}?token=${token}`, room, deliveries);
              clients.push(client);
              return client;
            } catch (error) {
              const message = error instanceof Error ? error.message : String(error);
              if (attempt > HANDSHAKE_RETRIES || !/Unexpected server response: 5\d\d/.test(message))
                throw error;
              refused.push(message.replace(/^fanout: /, ""));
            }
          }
        },
        { concurrency: CONNECT_CONCURRENCY },
      );
      const setupMs = performance.now() - t0;
      setupMemory.take();
      const members = await rooms.members(room);
      if (members.length !== n)
        throw new Error(`fanout: ${n} clients joined ${room} but dynalite lists ${members.length} members`);
      const connectionIds = members.map((m) => m.connectionId);
      rows.push({
        ...blankRow(
          n,
          `setup: ${n} connect + join (${CONNECT_CONCURRENCY} at a time)${refused.length > 0 ? `, ${refused.length} handshake(s) refused and retried` : ""}`,
        ),
        runs: 1,
        notes: refused,
        medianMs: round(setupMs, 0),
        usPerConnection: round((setupMs * 1000) / n, 0),
        ...setupMemory.columns(),
      });

      const stackMeasure: Measure = {
        measure: "stack: POST /rooms/{room}/messages → last frame",
        samples: [],
        run: async () => {
          const from = stack.output().length;
          const began = performance.now();
          const response = await fetch(`${stack.httpUrl}/rooms/${room}/messages`, {
            method: "POST",
            headers: { "x-api-key": apiKey, "content-type": "application/json" },
            body: JSON.stringify({ text: TEXT }),
          });
          const answerMs = performance.now() - began;
          const body = (await response.json()) as { id?: string; recipients?: number; delivered?: number };
          if (response.status !== 201 || typeof body.id !== "string")
            throw new Error(
              `fanout: POST /rooms/${room}/messages answered ${response.status} ${JSON.stringify(body)}`,
            );
          const receipt = await deliveries.wait(body.id, n, deliveryTimeoutMs(n));
          // The EMF line may be printed after the answer; give it a moment.
          let handlerMs = reportedFanoutMs(stack.output(), from);
          for (let i = 0; handlerMs === null && i < 20; i++) {
            await new Promise((resolve) => setTimeout(resolve, 25));
            handlerMs = reportedFanoutMs(stack.output(), from);
          }
          return {
            id: body.id,
            ms: receipt.count >= n ? receipt.lastAt - began : null,
            delivered: receipt.count,
            expected: n,
            reportedDelivered: body.delivered ?? 0,
            reportedRecipients: body.recipients ?? 0,
            answerMs,
            fanoutMs: handlerMs,
          };
        },
      };
      const baselines: Measure[] = concurrencies.map((concurrency) => ({
        measure: `baseline: fanOut in the bench, conc ${concurrency}${concurrency === configured ? " (configured)" : ""}`,
        concurrency,
        samples: [],
        run: async () => {
          const id = `bench-${crypto.randomUUID()}`;
          const at = new Date().toISOString();
          const payload = JSON.stringify({
            type: "message",
            id,
            at,
            room,
            messageId: id,
            from: "bench",
            text: TEXT,
            sentAt: at,
          });
          const began = performance.now();
          const report: FanoutReport = await fanOut({
            post,
            connectionIds,
            payload,
            concurrency,
            removeGone: async () => {},
            kind: "room", // a room broadcast; silentMetrics publishes nothing
            metrics: silentMetrics,
          });
          const receipt = await deliveries.wait(id, n, deliveryTimeoutMs(n));
          return {
            id,
            ms: receipt.count >= n ? receipt.lastAt - began : null,
            delivered: receipt.count,
            expected: n,
            reportedDelivered: report.delivered,
            reportedRecipients: report.recipients,
            fanoutMs: report.durationMs,
          };
        },
      }));
      const measures = [stackMeasure, ...baselines];

      // One untimed warm-up each (its deliveries are still checked), then the timed runs, round-robin.
      const warmups: Sample[] = [];
      for (const m of measures) warmups.push(await m.run());
      for (const m of measures) m.memory = new MemoryWindow(pid);
      for (let r = 0; r < runs; r++) {
        for (let j = 0; j < measures.length; j++) {
          const m = measures[(r + j) % measures.length] as Measure;
          m.memory?.open();
          m.samples.push(await m.run());
          m.memory?.take();
        }
      }

      const baselineTimes = (baselines.find((b) => b.concurrency === configured)?.samples ?? [])
        .map((s) => s.ms)
        .filter((ms): ms is number => ms !== null);
      const baselineMedian = baselineTimes.length > 0 ? median(baselineTimes) : null;
      // Late frames and duplicates would arrive after the waits: give them a moment, then count.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      for (const [i, m] of measures.entries()) {
        const all = [warmups[i] as Sample, ...m.samples];
        const receipts = all.map((s) => deliveries.receipts.get(s.id));
        const times = m.samples.map((s) => s.ms).filter((ms): ms is number => ms !== null);
        const delivered = receipts.reduce((sum, r) => sum + (r?.count ?? 0), 0);
        const duplicates = receipts.reduce((sum, r) => sum + (r?.duplicates ?? 0), 0);
        const wrong = receipts.reduce((sum, r) => sum + (r?.wrong ?? 0), 0);
        const expected = all.reduce((sum, s) => sum + s.expected, 0);
        const reportedDelivered = all.reduce((sum, s) => sum + s.reportedDelivered, 0);
        const reportedRecipients = all.reduce((sum, s) => sum + s.reportedRecipients, 0);
        const handler = m.samples.map((s) => s.fanoutMs).filter((ms): ms is number => ms != null);
        const answers = m.samples.map((s) => s.answerMs).filter((ms): ms is number => ms !== undefined);
        const mid = times.length > 0 ? median(times) : null;
        const allOnce =
          delivered === expected &&
          duplicates === 0 &&
          wrong === 0 &&
          times.length === m.samples.length &&
          reportedDelivered === expected &&
          reportedRecipients === expected;
        rows.push({
          ...blankRow(n, m.measure),
          runs: m.samples.length,
          medianMs: mid === null ? null : round(mid, 1),
          minMs: times.length > 0 ? round(Math.min(...times), 1) : null,
          maxMs: times.length > 0 ? round(Math.max(...times), 1) : null,
          usPerConnection: mid === null ? null : round((mid * 1000) / n, 0),
          vsBaseline: mid === null || baselineMedian === null ? null : round(mid / baselineMedian, 2),
          delivered: `${delivered}/${expected}`,
          duplicates,
          wrong,
          reported: `${reportedDelivered}/${reportedRecipients}`,
          answerMs: answers.length > 0 ? round(median(answers), 1) : null,
          fanoutMs: handler.length > 0 ? round(median(handler), 1) : null,
          ...(m.memory ? m.memory.columns() : {}),
          status: allOnce ? "ok" : "MISS",
          samplesMs: m.samples.map((s) => (s.ms === null ? -1 : round(s.ms, 1))),
        });
      }

      // Close this size's clients, CLOSE_CONCURRENCY at a time, each batch once its $disconnect
      // invocations have finished (serverless-offline would start a worker per concurrent one); then
      // the room must be empty.
      for (let start = 0; start < joined.length; start += CLOSE_CONCURRENCY) {
        const batch = joined.slice(start, start + CLOSE_CONCURRENCY);
        const from = stack.output().length;
        await Promise.all(batch.map(closeClient));
        await waitUntil(
          async () => countDisconnects(stack.output(), from) >= batch.length,
          `${batch.length} $disconnect invocations to finish`,
          30_000,
        );
      }
      clients.length = 0;
      await waitUntil(
        async () => (await rooms.members(room)).length === 0,
        `$disconnect to empty ${room}`,
        30_000,
      );
    }
    rows.push({
      ...blankRow(null, "all sizes: stray frames (not JSON, no id, or unasked)"),
      wrong: deliveries.stray,
      status: deliveries.stray === 0 ? "ok" : "MISS",
    });
    return rows;
  } catch (error) {
    // The stack's own account of what went wrong is in its output: keep its tail with the error.
    const message = error instanceof Error ? error.message : String(error);
    const tail = stack.output().slice(-STACK_TAIL);
    throw new Error(`${message}\n--- local stack output, last lines ---\n${tail}`, { cause: error });
  } finally {
    // The stack first: sockets closed while it runs would each start a $disconnect at once.
    await stack.stop();
    for (const client of clients) client.socket.terminate();
    dynamo.destroy();
    restoreCredentials();
    const log = process.env.BENCH_FANOUT_STACK_LOG;
    if (log) writeFileSync(log, stack.output());
  }
}
