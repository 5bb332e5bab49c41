// The local metrics page: polls /series (plugins/metrics-page.mjs) once a second and draws, per
// route, uPlot charts of the functions' EMF metrics, with a table of the totals beside them.
// Every number the page shows is also in a data attribute (data-series, data-metric), and every
// chart carries the sums of what it plotted (data-plotted), so a test can read them exactly.
/* global uPlot */

const POLL_MS = 1_000;
const COLORS = ["#2f6fdf", "#d9480f", "#2b8a3e", "#ae3ec9", "#e8590c", "#0c8599", "#5c7cfa", "#868e96"];

/**
 * The charts a series may have, by the metrics they draw; a chart appears once one of its metrics
 * has arrived. `ok` is derived: Requests − Status4XX − Status5XX (the 2XX and 3XX answers).
 */
const CHARTS = [
  { id: "requests", title: "Requests", metrics: ["Requests"] },
  { id: "latency", title: "Latency p50 / p99 (ms)", latency: ["Latency"] },
  { id: "status", title: "Status classes", metrics: ["Status2XX/3XX", "Status4XX", "Status5XX"] },
  {
    id: "limits",
    title: "429s (limits)",
    metrics: ["Status429", "LimiterThrottled", "LimiterDegradedRefusal"],
  },
  {
    id: "cache",
    title: "Cache",
    metrics: ["CacheHit", "CacheMiss", "CacheStale", "CacheBypass", "CacheTooLarge"],
  },
  { id: "circuit", title: "Circuit", prefix: "Circuit" },
  { id: "upstream", title: "Upstream latency p50 / p99 (ms)", latency: ["UpstreamLatency"] },
  {
    id: "ws",
    title: "WebSocket deliveries",
    metrics: ["FanoutRecipients", "FanoutDelivered", "FanoutGone", "FanoutFailed", "FanoutSkipped"],
  },
  { id: "ws-duration", title: "Broadcast duration p50 / p99 (ms)", latency: ["FanoutDuration"] },
];
const OK = "Status2XX/3XX";

/** @type {Map<string, any>} uPlot instances by series and chart id */
const plots = new Map();
const root = document.getElementById("series");
const status = document.getElementById("status");

/** Count metrics of a bucket's sums, with the derived 2XX/3XX. */
function withOk(sums) {
  if (!("Requests" in sums)) return sums;
  return { ...sums, [OK]: sums.Requests - (sums.Status4XX ?? 0) - (sums.Status5XX ?? 0) };
}

/** The bucket start times from the first bucket to now, so a quiet second is drawn as zero. */
function timeline(buckets, now, bucketMs) {
  if (buckets.length === 0) return [];
  const times = [];
  for (let t = buckets[0].t; t <= now; t += bucketMs) times.push(t);
  return times;
}

/** The metrics chart `chart` draws for a series, in the order the chart lists them. */
function chartMetrics(chart, totals, latency) {
  if (chart.latency) return chart.latency.filter((name) => name in latency);
  if (chart.prefix) return Object.keys(totals).filter((name) => name.startsWith(chart.prefix));
  return chart.metrics.filter((name) => name in totals);
}

/** A tick (seconds since the epoch) as a local clock time, HH:MM:SS. */
function clock(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour12: false });
}

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function sectionFor(name) {
  const existing = [...root.querySelectorAll("section.series")].find((node) => node.dataset.series === name);
  if (existing) return existing;
  const section = element("section", { class: "series", "data-series": name });
  section.append(element("h2", {}, name));
  const layout = element("div", { class: "layout" });
  const table = element("table", { class: "totals" });
  table.append(element("tbody"));
  layout.append(table, element("div", { class: "charts" }));
  section.append(layout);
  root.append(section);
  return section;
}

function renderTable(section, name, totals, latency) {
  const rows = [];
  for (const [metric, value] of Object.entries(totals)) rows.push([metric, value]);
  for (const [metric, { p50, p99, count }] of Object.entries(latency)) {
    rows.push([`${metric} samples`, count], [`${metric} p50`, p50], [`${metric} p99`, p99]);
  }
  const body = section.querySelector("tbody");
  body.replaceChildren(
    ...rows.map(([metric, value]) => {
      const row = element("tr");
      const shown =
        typeof value === "number" && !Number.isInteger(value) ? value.toFixed(1) : String(value ?? "–");
      row.append(
        element("th", {}, metric),
        element(
          "td",
          { "data-series": name, "data-metric": metric, "data-value": String(value ?? "") },
          shown,
        ),
      );
      return row;
    }),
  );
}

function renderChart(section, name, chart, names, times, buckets) {
  const key = `${name}\u0000${chart.id}`;
  const byTime = new Map(buckets.map((bucket) => [bucket.t, bucket]));
  const columns = [];
  const labels = [];
  const plotted = {};
  if (chart.latency) {
    for (const metric of names) {
      for (const p of ["p50", "p99"]) {
        columns.push(times.map((t) => byTime.get(t)?.latency[metric]?.[p] ?? null));
        labels.push(`${metric} ${p}`);
      }
    }
  } else {
    for (const metric of names) {
      const column = times.map((t) => {
        const bucket = byTime.get(t);
        return bucket ? (withOk(bucket.sums)[metric] ?? 0) : 0;
      });
      columns.push(column);
      labels.push(metric);
      plotted[metric] = column.reduce((sum, value) => sum + value, 0);
    }
  }
  const data = [times.map((t) => t / 1000), ...columns];
  let entry = plots.get(key);
  if (entry && entry.labels.join() !== labels.join()) {
    entry.plot.destroy();
    entry.holder.remove();
    entry = undefined;
  }
  if (!entry) {
    const holder = element("div", { class: "chart", "data-chart": chart.id });
    holder.append(element("h3", {}, chart.title));
    section.querySelector(".charts").append(holder);
    const plot = new uPlot(
      {
        width: 360,
        height: 170,
        legend: { show: true, live: false },
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(1, max ?? 1)] },
        },
        series: [
          {},
          ...labels.map((label, i) => ({
            label,
            stroke: COLORS[i % COLORS.length],
            width: 1.5,
            points: { show: true, size: 4 },
          })),
        ],
        // Clock times only: uPlot's default adds the date below the first tick, which the narrow
        // charts cut off.
        axes: [{ values: (_u, ticks) => ticks.map(clock), space: 60 }, { size: 40 }],
      },
      data,
      holder,
    );
    entry = { plot, holder, labels };
    plots.set(key, entry);
  } else {
    entry.plot.setData(data);
  }
  entry.holder.dataset.plotted = JSON.stringify(plotted);
}

function render(snapshot) {
  const { series, now, bucketMs, records } = snapshot;
  const current = Math.floor(now / bucketMs) * bucketMs;
  for (const [name, { totals, latency, buckets }] of Object.entries(series)) {
    const section = sectionFor(name);
    const shownTotals = withOk(totals);
    renderTable(section, name, shownTotals, latency);
    const times = timeline(buckets, current, bucketMs);
    for (const chart of CHARTS) {
      const names = chartMetrics(chart, shownTotals, latency);
      if (names.length > 0) renderChart(section, name, chart, names, times, buckets);
    }
  }
  status.textContent = `${records} EMF record(s) collected · ${bucketMs / 1000} s buckets · last ${snapshot.windowMs / 60_000} min · updated ${new Date(now).toLocaleTimeString()}`;
  status.dataset.records = String(records);
}

async function poll() {
  try {
    const response = await fetch("/series", { cache: "no-store" });
    if (!response.ok) throw new Error(`GET /series answered ${response.status}`);
    render(await response.json());
  } catch (error) {
    status.textContent = `cannot read the series: ${error.message}`;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
