import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { ROOT, SERVERLESS_BIN } from "./serverless.ts";

export interface LocalStackPorts {
  http: number;
  ws: number;
  lambda: number;
  dynamodb: number;
  issuer: number;
  demo: number;
  web: number;
  metrics: number;
}

export interface LocalStack {
  ports: LocalStackPorts;
  httpUrl: string;
  wsUrl: string;
  /** The browser chat page (web/), served by the stack with its dev-token endpoint. */
  webUrl: string;
  /** The metrics page (plugins/metrics-page.mjs): the functions' EMF records, plotted per route. */
  metricsUrl: string;
  dynamodbEndpoint: string;
  /** The stack's process id (serverless-offline, its plugins and its handlers' worker threads). */
  pid: number | undefined;
  /** Everything the stack printed so far. */
  output(): string;
  /** What the stack printed on stdout alone (its functions' EMF records among it), unmixed with stderr. */
  stdout(): string;
  /** Ctrl-C (SIGINT to the process group), then waits for it to exit; SIGKILL after 10 s. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Eight ports the OS says are free now, so suites running side by side (two checkouts, a CI run and a
 * developer's) never fight over fixed numbers.
 */
export async function freePorts(): Promise<LocalStackPorts> {
  const servers = Array.from({ length: 8 }, () => createServer());
  const ports = await Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once("error", reject);
          server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
        }),
    ),
  );
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  const [http, ws, lambda, dynamodb, issuer, demo, web, metrics] = ports as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return { http, ws, lambda, dynamodb, issuer, demo, web, metrics };
}

/**
 * Starts the local stack exactly as `npm start` does (`serverless offline start --stage local`),
 * on the given ports, and resolves once `GET /health` answers 200. Bounded: fails after `timeoutMs`.
 */
export async function startLocalStack(
  ports: LocalStackPorts,
  {
    dataDir,
    timeoutMs = 90_000,
    cwd = ROOT,
  }: {
    dataDir?: string;
    timeoutMs?: number;
    /** The project folder to run it in (a copy of the project, say); the checkout by default. */
    cwd?: string;
  } = {},
): Promise<LocalStack> {
  const child = spawn(process.execPath, [SERVERLESS_BIN, "offline", "start", "--stage", "local"], {
    cwd,
    detached: true, // its own process group, so stop() reaches esbuild's helper process too
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      SLS_TELEMETRY_DISABLED: "1",
      GATEHOUSE_HTTP_PORT: String(ports.http),
      GATEHOUSE_WS_PORT: String(ports.ws),
      GATEHOUSE_LAMBDA_PORT: String(ports.lambda),
      GATEHOUSE_DYNAMODB_PORT: String(ports.dynamodb),
      GATEHOUSE_ISSUER_PORT: String(ports.issuer),
      GATEHOUSE_DEMO_PORT: String(ports.demo),
      GATEHOUSE_WEB_PORT: String(ports.web),
      GATEHOUSE_METRICS_PORT: String(ports.metrics),
      ...(dataDir ? { GATEHOUSE_DATA_DIR: dataDir } : {}),
    },
  });
  let output = "";
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = once(child, "exit");

  const stack: LocalStack = {
    ports,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    wsUrl: `ws://127.0.0.1:${ports.ws}`,
    webUrl: `http://127.0.0.1:${ports.web}`,
    metricsUrl: `http://127.0.0.1:${ports.metrics}`,
    dynamodbEndpoint: `http://127.0.0.1:${ports.dynamodb}`,
    pid: child.pid,
    output: () => output,
    stdout: () => stdout,
    stop: () => stopGroup(child, exited),
  };

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`local stack exited with ${child.exitCode} before it was ready:\n${output}`);
    }
    if (output.includes("Gatehouse local stack is up")) {
      const ready = await fetch(`${stack.httpUrl}/health`).then(
        (response) => response.status === 200,
        () => false,
      );
      if (ready) return stack;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stack.stop();
  throw new Error(`local stack not ready within ${timeoutMs} ms:\n${output}`);
}

/**
 * `startLocalStack` on ports from `freePorts()`, again on new ones if a port was taken in between:
 * the probe servers close before the stack binds, and any process's outgoing connection may take a
 * freed port from the same ephemeral range meanwhile. The stack's own ports are in `stack.ports`.
 */
export async function startLocalStackOnFreePorts(
  options: Parameters<typeof startLocalStack>[1] = {},
): Promise<LocalStack> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startLocalStack(await freePorts(), options);
    } catch (error) {
      if (attempt === 3 || !String((error as Error).message).includes("EADDRINUSE")) throw error;
    }
  }
}

async function stopGroup(child: ChildProcess, exited: Promise<unknown[]>) {
  if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
    process.kill(-child.pid, "SIGINT");
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
    }, 10_000);
    await exited;
    clearTimeout(timer);
  }
  return { code: child.exitCode, signal: child.signalCode };
}
