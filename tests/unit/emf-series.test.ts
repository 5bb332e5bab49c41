import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createEmfSeries, parseEmfLine, percentile } from "../../plugins/emf-series.mjs";

/** An EMF line as Powertools Metrics prints it for one gateway request. */
function requestLine(route: string, timestamp: number, status: number, latency: number): string {
  return JSON.stringify({
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: "Gatehouse",
          Dimensions: [["service", "route"]],
          Metrics: [
            { Name: "Requests", Unit: "Count" },
            { Name: "Status4XX", Unit: "Count" },
            { Name: "Status429", Unit: "Count" },
            { Name: "Latency", Unit: "Milliseconds" },
          ],
        },
      ],
    },
    service: "gatehouse",
    route,
    Requests: 1,
    Status4XX: status >= 400 && status < 500 ? 1 : 0,
    Status429: status === 429 ? 1 : 0,
    Latency: latency,
  });
}

describe("EMF series for the local metrics page", () => {
  it("reads only lines holding an EMF record", () => {
    assert.equal(parseEmfLine('{"level":"INFO","message":"hello"}'), undefined);
    assert.equal(parseEmfLine("offline: GET /health (λ: health)"), undefined);
    assert.equal(parseEmfLine('{"_aws":{"CloudWatchMetrics":[{"Namespace"'), undefined, "half a line");
    assert.equal(parseEmfLine(requestLine("GET /a", 0, 200, 1))?.route, "GET /a");
  });

  it("sums counts per route and bucket, and in total", () => {
    // Prepare
    const series = createEmfSeries({ bucketMs: 1_000, windowMs: 60_000 });
    // Act
    for (const [t, status] of [
      [10_100, 200],
      [10_900, 429],
      [11_000, 404],
    ] as const)
      series.addLine(requestLine("GET /a", t, status, 5));
    series.addLine(requestLine("GET /b", 10_500, 200, 5));
    const snapshot = series.snapshot(12_000);
    // Assess
    const a = snapshot.series["GET /a"] as {
      totals: Record<string, number>;
      buckets: { t: number; sums: Record<string, number> }[];
    };
    assert.equal(snapshot.records, 4);
    assert.deepEqual(a.totals, { Requests: 3, Status4XX: 2, Status429: 1 });
    assert.deepEqual(
      a.buckets.map(({ t, sums }) => [t, sums.Requests, sums.Status4XX, sums.Status429]),
      [
        [10_000, 2, 1, 1],
        [11_000, 1, 1, 0],
      ],
    );
    assert.deepEqual(Object.keys(snapshot.series), ["GET /a", "GET /b"]);
  });

  it("gives exact nearest-rank p50 and p99 per bucket and over the window", () => {
    const series = createEmfSeries({ bucketMs: 1_000, windowMs: 60_000 });
    for (let ms = 1; ms <= 100; ms++) series.addLine(requestLine("GET /a", 5_000, 200, 101 - ms));
    series.addLine(requestLine("GET /a", 6_000, 200, 1_000));
    const a = series.snapshot(7_000).series["GET /a"] as {
      latency: Record<string, { count: number; p50: number; p99: number }>;
      buckets: { latency: Record<string, { p50: number; p99: number }> }[];
    };
    assert.deepEqual(a.buckets[0]?.latency.Latency, { count: 100, p50: 50, p99: 99 });
    assert.deepEqual(a.buckets[1]?.latency.Latency, { count: 1, p50: 1_000, p99: 1_000 });
    assert.deepEqual(a.latency.Latency, { count: 101, p50: 51, p99: 100 });
    assert.equal(percentile([], 50), undefined);
  });

  it("keeps only the window's buckets, and totals since the start", () => {
    const series = createEmfSeries({ bucketMs: 1_000, windowMs: 10_000 });
    series.addLine(requestLine("GET /a", 0, 200, 1));
    series.addLine(requestLine("GET /a", 20_000, 200, 1));
    const a = series.snapshot(20_500).series["GET /a"] as {
      totals: Record<string, number>;
      buckets: { t: number }[];
    };
    assert.deepEqual(
      a.buckets.map((bucket) => bucket.t),
      [20_000],
    );
    assert.equal(a.totals.Requests, 2);
  });

  it("bounds the samples kept per bucket and says how many it dropped", () => {
    const series = createEmfSeries({ bucketMs: 1_000, windowMs: 10_000, maxSamples: 3 });
    for (let i = 0; i < 5; i++) series.addLine(requestLine("GET /a", 0, 200, i));
    const a = series.snapshot(500).series["GET /a"] as {
      buckets: { latency: Record<string, { count: number; p99: number; dropped: number }> }[];
    };
    assert.deepEqual(a.buckets[0]?.latency.Latency, { count: 5, p50: 1, p99: 2, dropped: 2 });
  });

  it("names broadcast records by kind, and reads values written as arrays", () => {
    const series = createEmfSeries();
    series.addLine(
      JSON.stringify({
        _aws: {
          Timestamp: 1_000,
          CloudWatchMetrics: [
            {
              Namespace: "Gatehouse",
              Dimensions: [["service", "kind"]],
              Metrics: [{ Name: "FanoutDelivered", Unit: "Count" }],
            },
          ],
        },
        kind: "room",
        FanoutDelivered: [2, 3],
      }),
    );
    const room = series.snapshot(2_000).series["broadcast room"] as { totals: Record<string, number> };
    assert.deepEqual(room.totals, { FanoutDelivered: 5 });
  });
});
