/**
 * Both ends of a forked bench worker: `runWorker` (in the case) forks a worker module with its options
 * as argv[2] and waits for its result; `runForkedWorker` (in the worker) runs its `main` and sends the
 * result back over the IPC channel.
 */
import { fork } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";

/** What a forked bench worker sends back over IPC: its measurements, or why it failed. */
type WorkerResult<M> = { ok: true; measurements: M[] } | { ok: false; error: string };

/** The worker's own limit unless the case gives one. */
const WORKER_TIMEOUT_MS = 240_000;

export interface RunWorkerOptions {
  timeoutMs?: number;
  /** Variables added to the worker's fixed environment (e.g. the endpoint of a store the case started). */
  env?: Record<string, string>;
}

/**
 * Forks `bench/support/<file>` with stdout discarded and a fixed environment; resolves with its
 * measurements, or throws with its error and stderr.
 */
export async function runWorker<M>(
  root: string,
  file: string,
  options: object,
  { timeoutMs = WORKER_TIMEOUT_MS, env = {} }: RunWorkerOptions = {},
): Promise<M[]> {
  const worker = fork(join(root, "bench", "support", file), [JSON.stringify(options)], {
    cwd: root,
    execArgv: ["--import", "tsx", "--expose-gc"],
    stdio: ["ignore", "ignore", "pipe", "ipc"],
    timeout: timeoutMs,
    // Nothing inherited (no NODE_OPTIONS, no AWS profile): what serverless.yml sets for prod's
    // functions (no NODE_OPTIONS: params.prod.nodeOptions is empty). WARN keeps the logger quiet; at
    // prod's INFO a successful request logs nothing either.
    env: {
      PATH: process.env.PATH,
      POWERTOOLS_SERVICE_NAME: "gatehouse",
      POWERTOOLS_LOG_LEVEL: "WARN",
      POWERTOOLS_METRICS_NAMESPACE: "Gatehouse",
      AWS_REGION: "us-east-1",
      ...env,
    },
  });
  let stderr = "";
  worker.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let message: WorkerResult<M> | undefined;
  worker.on("message", (received) => {
    message = received as WorkerResult<M>;
  });
  // "close", not "exit": it comes once the IPC channel is drained too, so the result is never missed.
  const [code, signal] = (await once(worker, "close")) as [number | null, NodeJS.Signals | null];
  if (message?.ok) return message.measurements;
  const why = message ? message.error : `it exited (${signal ?? `code ${String(code)}`}) without a result`;
  throw new Error(`${file}: the in-process measurement failed: ${why}${stderr ? `\n${stderr}` : ""}`);
}

/**
 * Runs a forked bench worker's `main` with the options the bench passed as argv[2] (JSON), sends the
 * result over the IPC channel and exits: keep-alive sockets to an upstream would hold it open.
 */
export async function runForkedWorker<O, M>(
  name: string,
  main: (options: O) => Promise<M[]>,
): Promise<never> {
  const send = (message: WorkerResult<M>) =>
    new Promise<void>((resolve) => {
      if (!process.send) throw new Error(`${name} runs forked by the bench, with an IPC channel`);
      process.send(message, () => resolve());
    });
  try {
    await send({ ok: true, measurements: await main(JSON.parse(process.argv[2] ?? "{}") as O) });
  } catch (error) {
    await send({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
  }
  process.exit(0);
}
