// @ts-check
// The local metrics page (GATEHOUSE_METRICS_PORT, default 3005): the EMF records the functions
// print, collected in this process and plotted per route.
//   GET /            the page (web/metrics.html)     GET /metrics.js, /metrics.css  its script and style
//   GET /uplot.js, /uplot.css   uPlot, from node_modules
//   GET /series      the series as JSON (plugins/emf-series.mjs `snapshot`)
//
// How the records get here: serverless-offline runs each function instance in a worker thread
// (`new Worker(...)` without `stdout: true`), and Node pipes a worker's process.stdout into the
// main thread's `process.stdout`, one chunk per write the worker made. Powertools Metrics prints
// each record as one `console.log` line, so each record reaches `process.stdout.write` here whole,
// from whichever worker, in the order the main thread received it. `tapStdout` reads those
// writes and passes them on unchanged: what the functions print, and what the terminal shows, is
// the same as without the page.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { listenOnLoopback } from "./loopback.mjs";
import { pageSecurityHeaders } from "./page-headers.mjs";

/**
 * Calls `onLine` with every line written to `process.stdout` from now on, and writes it as
 * before. A chunk's unfinished last line waits for the rest. Returns the function that undoes it.
 * @param {(line: string) => void} onLine
 * @returns {() => void}
 */
export function tapStdout(onLine) {
  const stdout = process.stdout;
  const write = stdout.write;
  let pending = "";
  /** @type {typeof stdout.write} */
  const tapped = function tappedWrite(/** @type {any} */ chunk, /** @type {any[]} */ ...rest) {
    try {
      const text = pending + (typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
      const lines = text.split("\n");
      pending = lines.pop() ?? "";
      // A line with no end in sight is not a record the page could use; do not hold it forever.
      if (pending.length > 1_000_000) pending = "";
      for (const line of lines) onLine(line);
    } catch {
      // The page must never cost the terminal a line.
    }
    return /** @type {any} */ (write).call(stdout, chunk, ...rest);
  };
  stdout.write = tapped;
  return () => {
    if (stdout.write === tapped) stdout.write = write;
  };
}

/** The files the page is made of; nothing else is served. */
const require = createRequire(import.meta.url);
const UPLOT_DIST = dirname(require.resolve("uplot/dist/uPlot.iife.min.js"));

/**
 * Starts the metrics page server.
 * @param {{ port: number, root: string, snapshot: () => unknown }} options
 *   `port` 0 picks a free one; `root` is the project folder (web/); `snapshot` gives the series.
 * @returns {Promise<import('node:http').Server>}
 */
export async function startMetricsPage({ port, root, snapshot }) {
  /** @type {Record<string, { path: string, type: string }>} */
  const files = {
    "/": { path: resolve(root, "web", "metrics.html"), type: "text/html; charset=utf-8" },
    "/metrics.js": { path: resolve(root, "web", "metrics.js"), type: "text/javascript; charset=utf-8" },
    "/metrics.css": { path: resolve(root, "web", "metrics.css"), type: "text/css; charset=utf-8" },
    "/uplot.js": { path: resolve(UPLOT_DIST, "uPlot.iife.min.js"), type: "text/javascript; charset=utf-8" },
    "/uplot.css": { path: resolve(UPLOT_DIST, "uPlot.min.css"), type: "text/css; charset=utf-8" },
  };
  const security = pageSecurityHeaders();
  const server = createServer(async (request, response) => {
    const { pathname } = new URL(request.url ?? "/", "http://127.0.0.1");
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { ...security, allow: "GET, HEAD" }).end();
      return;
    }
    if (pathname === "/series") {
      response
        .writeHead(200, { ...security, "content-type": "application/json" })
        .end(JSON.stringify(snapshot()));
      return;
    }
    const file = files[pathname];
    if (!file) {
      response.writeHead(404, { ...security, "content-type": "text/plain" }).end("not found\n");
      return;
    }
    try {
      const body = await readFile(file.path);
      response.writeHead(200, { ...security, "content-type": file.type }).end(body);
    } catch {
      response.writeHead(500, { ...security, "content-type": "text/plain" }).end("cannot read the page\n");
    }
  });
  return listenOnLoopback(server, port, "GATEHOUSE_METRICS_PORT");
}
