/**
 * The local stack, started exactly as `npm start` starts it: time from spawning the process to the
 * first `GET /health` 200, to the first WebSocket reply from `$default`, and from Ctrl-C to exit.
 * A few runs only (each is a full start, build included), sequential, on ports of their own; one
 * with `--quick`.
 */
import WebSocket from "ws";
import { devToken } from "../../plugins/dev-issuer.mjs";
import { freePorts, startLocalStack } from "../../tests/support/local-stack.ts";
import { type BenchContext, type Column, median, round } from "../lib.ts";

export interface LocalStackRow {
  measure: string;
  medianMs: number;
  maxMs: number;
  samplesMs: number[];
}

export const localStackColumns: Column<LocalStackRow>[] = [
  { header: "measure", value: (r) => r.measure },
  { header: "median ms", value: (r) => r.medianMs, decimals: 0 },
  { header: "max ms", value: (r) => r.maxMs, decimals: 0 },
  { header: "runs", value: (r) => r.samplesMs.length },
];

const STARTS = 3;
const QUICK_STARTS = 1;

function firstReply(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error("no WebSocket reply within 30 s")), 30_000);
    socket.once("open", () => socket.send(JSON.stringify({ action: "hello" })));
    socket.once("message", (data) => {
      clearTimeout(timer);
      socket.close();
      resolve(data.toString());
    });
    socket.once("error", reject);
  });
}

export async function localStack(ctx: BenchContext): Promise<LocalStackRow[]> {
  const PORTS = await freePorts();
  const ready: number[] = [];
  const reply: number[] = [];
  const stop: number[] = [];
  for (let i = 0; i < (ctx.quick ? QUICK_STARTS : STARTS); i++) {
    const t0 = performance.now();
    const stack = await startLocalStack(PORTS);
    ready.push(performance.now() - t0);
    try {
      const token = await devToken(process.cwd(), { port: PORTS.issuer, sub: "bench" });
      const frame = JSON.parse(await firstReply(`${stack.wsUrl}?token=${token}`)) as { type?: string };
      if (frame.type !== "error") throw new Error(`$default answered ${JSON.stringify(frame)}`);
      reply.push(performance.now() - t0);
    } finally {
      const t1 = performance.now();
      await stack.stop();
      stop.push(performance.now() - t1);
    }
  }
  const row = (measure: string, samples: number[]): LocalStackRow => ({
    measure,
    medianMs: round(median(samples), 0),
    maxMs: round(Math.max(...samples), 0),
    samplesMs: samples.map((v) => round(v, 0)),
  });
  return [
    row("spawn → GET /health 200", ready),
    row("spawn → first $default reply", reply),
    row("Ctrl-C → process exited", stop),
  ];
}
