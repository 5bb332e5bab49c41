import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import WebSocket from "ws";
import { devToken } from "../../plugins/dev-issuer.mjs";
import { DEMO_API_KEY } from "../../plugins/local-stack.mjs";
import { launchChromium } from "../support/browser.ts";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";
import { ROOT } from "../support/serverless.ts";

// The local metrics page (plugins/metrics-page.mjs, web/metrics.*) in Debian's Chromium, driven by
// playwright-core, against the local stack on free ports of its own. Known traffic goes through the
// stack; the numbers the page shows and plots must equal the EMF records the functions printed, read
// here from the stack's stdout independently of the page's own collector. With
// GATEHOUSE_UPDATE_SCREENSHOTS=1 its screenshot replaces the one docs/local-metrics.md shows; else it
// goes to a temporary folder, so a test run leaves the working tree as it found it.
const SCREENSHOT_DIR =
  process.env.GATEHOUSE_UPDATE_SCREENSHOTS === "1"
    ? resolve(ROOT, "docs", "images")
    : mkdtempSync(join(tmpdir(), "gatehouse-screenshots-"));
const SCREENSHOT = join(SCREENSHOT_DIR, "metrics-page.png");
const WAIT_MS = 20_000;
const USERS_ROUTE = "GET /v1/users/{id}";
const PRICES_ROUTE = "GET /v1/prices/{id}";
const FLAKY_ROUTE = "GET /v1/flaky";
const ROOM = "metrics-page";

/** Totals per series (route, or `broadcast <kind>`) and metric, summed from raw EMF records. */
type Totals = Record<string, Record<string, number>>;

/**
 * The EMF records among the lines the stack printed, summed per series and count metric. Written
 * here on its own (not the plugin's parser), so the test checks the page against the records
 * themselves.
 */
function emfTotals(stdout: string): { records: number; totals: Totals } {
  const totals: Totals = {};
  let records = 0;
  for (const line of stdout.split("\n")) {
    if (!line.startsWith("{") || !line.includes("CloudWatchMetrics")) continue;
    const record = JSON.parse(line) as Record<string, unknown> & {
      _aws: { CloudWatchMetrics: { Metrics: { Name: string; Unit: string }[] }[] };
    };
    records++;
    const name =
      typeof record.route === "string"
        ? record.route
        : typeof record.kind === "string"
          ? `broadcast ${record.kind}`
          : "(no route)";
    const series = totals[name] ?? {};
    totals[name] = series;
    const seen = new Set<string>();
    for (const { Name, Unit } of record._aws.CloudWatchMetrics.flatMap((directive) => directive.Metrics)) {
      if (seen.has(Name) || Unit === "Milliseconds") continue;
      seen.add(Name);
      const raw = record[Name];
      for (const value of Array.isArray(raw) ? raw : [raw])
        series[Name] = (series[Name] ?? 0) + Number(value);
    }
  }
  return { records, totals };
}

async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, detail: () => string) {
  const deadline = Date.now() + WAIT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${detail()}`);
    await new Promise((done) => setTimeout(done, 100));
  }
}

describe("the metrics page plots the EMF records of known traffic", () => {
  let stack: LocalStack;
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];
  /** What the client saw. */
  const seen = {
    users200: 0,
    users429: 0,
    unmatched404: 0,
    unauthorized401: 0,
    cacheHits: 0,
    cacheMisses: 0,
    delivered: 0,
    flakyRequests: 0,
    circuitRefusals: 0,
  };

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

  it("drives traffic, and the page's table and plots equal the functions' EMF counts", async () => {
    // Prepare: a tiny-plan key (3 at once, then 1 a second: gateway.config.ts) and a chat socket in a room.
    const admin = await devToken(ROOT, { port: stack.ports.issuer, sub: "ops", scope: "gatehouse:admin" });
    const created = await fetch(`${stack.httpUrl}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
      body: JSON.stringify({ owner: "e2e-metrics", plan: "tiny" }),
    });
    assert.equal(created.status, 201);
    const tinyKey = ((await created.json()) as { key: string }).key;
    const chatToken = await devToken(ROOT, { port: stack.ports.issuer, sub: "mia", scope: "chat:write" });
    const socket = new WebSocket(`${stack.wsUrl}?token=${encodeURIComponent(chatToken)}`);
    const frames: { type?: string; ref?: string }[] = [];
    socket.on("message", (data) => frames.push(JSON.parse(data.toString())));
    await new Promise((done, fail) => {
      socket.once("open", done);
      socket.once("error", fail);
    });

    try {
      // Act: known traffic.
      const count = (status: number) => {
        if (status === 200) seen.users200++;
        if (status === 429) seen.users429++;
      };
      for (let i = 0; i < 5; i++) {
        const response = await fetch(`${stack.httpUrl}/v1/users/1`, {
          headers: { "x-api-key": DEMO_API_KEY },
        });
        await response.arrayBuffer();
        count(response.status);
      }
      // Six at once on a plan that takes three at once, then one a second: some are refused with 429
      // (how many depends on how fast the stack's two instances take them).
      const burst = await Promise.all(
        Array.from({ length: 6 }, () =>
          fetch(`${stack.httpUrl}/v1/users/2`, { headers: { "x-api-key": tinyKey } }),
        ),
      );
      for (const response of burst) {
        await response.arrayBuffer();
        count(response.status);
      }
      assert.equal(seen.users200 + seen.users429, 11, "a valid key gets 200 or 429 only");
      assert.ok(seen.users429 >= 1, "the tiny plan refused some of the burst");
      for (let i = 0; i < 2; i++) {
        const response = await fetch(`${stack.httpUrl}/metrics-page/nowhere`);
        await response.arrayBuffer();
        if (response.status === 404) seen.unmatched404++;
      }
      // Refused by the authorizer: API Gateway answers, the gateway function never runs, no record.
      const unauthorized = await fetch(`${stack.httpUrl}/v1/users/1`);
      await unauthorized.arrayBuffer();
      if (unauthorized.status === 401) seen.unauthorized401++;
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${stack.httpUrl}/v1/prices/p-1`, {
          headers: { "x-api-key": DEMO_API_KEY },
        });
        await response.arrayBuffer();
        assert.equal(response.status, 200);
        if (response.headers.get("x-cache") === "hit") seen.cacheHits++;
        if (response.headers.get("x-cache") === "miss") seen.cacheMisses++;
      }
      // The flaky service down: each instance's circuit opens after 3 failures (gateway.config.ts), and
      // then the gateway itself refuses with problem+json 503 (the service's own 503 is plain JSON).
      const demo = `http://127.0.0.1:${stack.ports.demo}`;
      await (await fetch(`${demo}/flaky/down`, { method: "POST" })).arrayBuffer();
      try {
        while (seen.flakyRequests < 20 && seen.circuitRefusals < 2) {
          const response = await fetch(`${stack.httpUrl}/v1/flaky`, {
            headers: { "x-api-key": DEMO_API_KEY },
          });
          await response.arrayBuffer();
          seen.flakyRequests++;
          if (response.status === 503 && response.headers.get("content-type") === "application/problem+json")
            seen.circuitRefusals++;
        }
      } finally {
        await (await fetch(`${demo}/flaky/up`, { method: "POST" })).arrayBuffer();
      }
      assert.ok(seen.circuitRefusals >= 1, "a circuit opened");
      socket.send(JSON.stringify({ action: "join", room: ROOM, ref: "join" }));
      await waitUntil(
        () => frames.some((frame) => frame.ref === "join"),
        "the join answer",
        () => JSON.stringify(frames),
      );
      const published = await fetch(`${stack.httpUrl}/rooms/${ROOM}/messages`, {
        method: "POST",
        headers: { "x-api-key": DEMO_API_KEY, "content-type": "application/json" },
        body: JSON.stringify({ text: "plotted" }),
      });
      assert.equal(published.status, 201);
      seen.delivered = ((await published.json()) as { delivered: number }).delivered;
    } finally {
      socket.close();
    }
    assert.deepEqual(
      [seen.unmatched404, seen.unauthorized401, seen.cacheMisses, seen.cacheHits, seen.delivered],
      [2, 1, 1, 2, 1],
      JSON.stringify(seen),
    );

    // The records the functions printed (stdout may trail the answers a little).
    await waitUntil(
      () => {
        const { totals } = emfTotals(stack.stdout());
        return (
          totals[USERS_ROUTE]?.Requests === 11 &&
          totals.unmatched?.Requests === 2 &&
          totals[PRICES_ROUTE]?.Requests === 3 &&
          totals[FLAKY_ROUTE]?.Requests === seen.flakyRequests &&
          Object.entries(totals).some(
            ([name, metrics]) => name.startsWith("broadcast") && metrics.FanoutDelivered,
          )
        );
      },
      "the EMF records of the traffic in the stack's stdout",
      () => JSON.stringify(emfTotals(stack.stdout()).totals, null, 1),
    );
    const raw = emfTotals(stack.stdout());
    // The records say what the client saw.
    assert.deepEqual(
      [
        raw.totals[USERS_ROUTE]?.Status429,
        raw.totals[USERS_ROUTE]?.Status4XX,
        raw.totals.unmatched?.Status4XX,
      ],
      [seen.users429, seen.users429, 2],
    );
    assert.deepEqual(
      [raw.totals[PRICES_ROUTE]?.CacheHit, raw.totals[PRICES_ROUTE]?.CacheMiss],
      [seen.cacheHits, seen.cacheMisses],
    );

    assert.equal(raw.totals[FLAKY_ROUTE]?.CircuitOpen, seen.circuitRefusals);

    // The page: opened, polled until it has every record the stack printed.
    page = await (browser as Browser).newPage({ viewport: { width: 1500, height: 900 } });
    page.on("pageerror", (error) => problems.push(`uncaught ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("requestfailed", (request) =>
      problems.push(`${request.url()} failed: ${request.failure()?.errorText}`),
    );
    await page.goto(stack.metricsUrl);
    const final = emfTotals(stack.stdout());
    await waitUntil(
      async () => (await page.locator("#status").getAttribute("data-records")) === String(final.records),
      `the page to show ${final.records} records`,
      () => problems.join("\n"),
    );
    // The records the stack printed since are the page's too; the test compares against one moment.
    const series = (await (await fetch(`${stack.metricsUrl}/series`)).json()) as {
      records: number;
      series: Record<string, { totals: Record<string, number> }>;
    };
    const now = emfTotals(stack.stdout());
    assert.equal(series.records, now.records, "the collector has every EMF line the stack printed");
    await waitUntil(
      async () => (await page.locator("#status").getAttribute("data-records")) === String(now.records),
      `the page to show ${now.records} records`,
      () => problems.join("\n"),
    );
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.locator(`section[data-series="${USERS_ROUTE}"] [data-chart="latency"]`).waitFor();
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000, "a screenshot of the page, not an empty image");

    // Assess: /series, the table and the plots all equal the raw EMF totals.
    const shown = await page.$$eval("td[data-metric]", (cells) =>
      cells.map((cell) => [
        cell.getAttribute("data-series") ?? "",
        cell.getAttribute("data-metric") ?? "",
        cell.getAttribute("data-value") ?? "",
      ]),
    );
    const table: Totals = {};
    for (const [name, metric, value] of shown) table[name] = { ...table[name], [metric]: Number(value) };
    const plotted = await page.$$eval("[data-chart][data-plotted]", (charts) =>
      charts.map((chart) => [
        chart.closest("section")?.getAttribute("data-series") ?? "",
        chart.getAttribute("data-plotted") ?? "{}",
      ]),
    );
    const plots: Totals = {};
    for (const [name, sums] of plotted) plots[name] = { ...plots[name], ...JSON.parse(sums) };

    assert.deepEqual(Object.keys(series.series).sort(), Object.keys(now.totals).sort(), "the same series");
    for (const [name, metrics] of Object.entries(now.totals)) {
      assert.deepEqual(series.series[name]?.totals, metrics, `/series totals of ${name}`);
      for (const [metric, value] of Object.entries(metrics)) {
        assert.equal(table[name]?.[metric], value, `the table's ${metric} of ${name}`);
        if (metric in (plots[name] ?? {}))
          assert.equal(plots[name]?.[metric], value, `the plotted ${metric} of ${name}`);
      }
    }
    // What the issue names is plotted: requests, status classes, 429s, cache, WebSocket deliveries.
    for (const metric of ["Requests", "Status2XX/3XX", "Status4XX", "Status5XX", "Status429"])
      assert.ok(metric in (plots[USERS_ROUTE] ?? {}), `${USERS_ROUTE} plots ${metric}`);
    assert.equal(plots[USERS_ROUTE]?.["Status2XX/3XX"], seen.users200);
    assert.equal(plots[PRICES_ROUTE]?.CacheHit, seen.cacheHits);
    assert.equal(plots[FLAKY_ROUTE]?.CircuitOpen, seen.circuitRefusals);
    const broadcast = Object.keys(plots).find((name) => name.startsWith("broadcast"));
    assert.equal(plots[broadcast ?? ""]?.FanoutDelivered, now.totals[broadcast ?? ""]?.FanoutDelivered);
    assert.ok((table[USERS_ROUTE]?.["Latency samples"] ?? 0) === 11, "every request's latency is a sample");
    assert.deepEqual(problems, [], "the page ran without errors");
  });
});
