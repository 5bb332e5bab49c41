import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { ROOT } from "../support/serverless.ts";

// How the local stack collects the functions' EMF records (plugins/metrics-page.mjs `tapStdout`):
// serverless-offline's handlers run in worker threads whose stdout Node pipes into the main
// thread's process.stdout. Here, worker threads print records at once, as instances of functions
// do under a burst, in a child process; the tap must see every line whole, and pass each on as it was.
const WORKERS = 8;
const LINES = 400;

const CHILD = `
import { Worker } from "node:worker_threads";
import { tapStdout } from ${JSON.stringify(pathToFileURL(`${ROOT}/plugins/metrics-page.mjs`).href)};
import { parseEmfLine } from ${JSON.stringify(pathToFileURL(`${ROOT}/plugins/emf-series.mjs`).href)};
const seen = { emf: 0, other: 0, broken: 0, perWorker: {} };
tapStdout((line) => {
  const record = parseEmfLine(line);
  if (record) {
    seen.emf++;
    seen.perWorker[record.worker] = (seen.perWorker[record.worker] ?? 0) + 1;
  } else if (line.includes("CloudWatchMetrics")) seen.broken++;
  else if (line.length > 0) seen.other++;
});
const code = \`
  import { workerData } from "node:worker_threads"; // ESM: workers inherit --input-type=module
  for (let i = 0; i < workerData.lines; i++) {
    // One record in 25 is large (about 100 KB), as a record with many values could be.
    const padding = i % 25 === 0 ? "x".repeat(100_000) : "";
    console.log(JSON.stringify({
      _aws: { Timestamp: Date.now(), CloudWatchMetrics: [{ Namespace: "Gatehouse", Dimensions: [["route"]], Metrics: [{ Name: "Requests", Unit: "Count" }] }] },
      route: "GET /x", worker: workerData.id, i, padding, Requests: 1,
    }));
    if (i % 7 === 0) console.log("a log line in between");
  }
\`;
const workers = Array.from({ length: ${WORKERS} }, (_, id) => new Worker(code, { eval: true, workerData: { id, lines: ${LINES} } }));
// A worker's stdout stream ends after its last chunk was handed on to the main thread's stdout.
await Promise.all(workers.map((worker) => new Promise((done) => worker.stdout.once("end", done))));
process.stderr.write(JSON.stringify(seen));
`;

describe("collecting EMF lines from worker threads' stdout", () => {
  it("sees every record whole, from every worker printing at once, and passes every line on", async () => {
    // Act
    const child = spawn(process.execPath, ["--input-type=module", "-e", CHILD], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = await once(child, "exit");
    // Assess
    assert.equal(code, 0, stderr);
    const seen = JSON.parse(stderr) as {
      emf: number;
      other: number;
      broken: number;
      perWorker: Record<string, number>;
    };
    assert.equal(seen.broken, 0);
    assert.equal(seen.emf, WORKERS * LINES);
    assert.deepEqual(
      Object.values(seen.perWorker),
      Array.from({ length: WORKERS }, () => LINES),
    );
    assert.equal(seen.other, WORKERS * Math.ceil(LINES / 7));
    // What the workers printed still reaches stdout, line for line.
    const printed = stdout.split("\n");
    assert.equal(printed.filter((line) => line.includes("CloudWatchMetrics")).length, WORKERS * LINES);
    assert.equal(printed.filter((line) => line === "a log line in between").length, seen.other);
  });
});
