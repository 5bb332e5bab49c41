// @ts-check
// EMF records (CloudWatch embedded metric format, as Powertools Metrics prints them) turned into
// per-route time series for the local metrics page. Pure: no I/O, no clock of its own; the caller
// hands in each printed line and the time to read the series at.
//
// A series is named by the record's `route` dimension (the gateway's requests), else its `kind`
// dimension (WebSocket broadcasts: `broadcast <kind>`), else `(no route)`. Counts are summed per
// bucket and in total since the stack started (`totals`: every metric but the millisecond ones); millisecond metrics (Latency, UpstreamLatency,
// FanoutDuration) keep their samples per bucket, so p50 and p99 are exact per bucket and over the
// kept window. Memory is bounded: buckets older than the window are dropped, and a bucket keeps at
// most `maxSamples` samples of a metric (the rest are counted but not kept: `dropped`).

/** The key that makes a JSON log line an EMF record. */
const EMF_KEY = "_aws";

/**
 * The EMF record in one printed line, or undefined when the line is anything else (a log line,
 * a banner, half a line).
 * @param {string} line
 * @returns {EmfRecord | undefined}
 */
export function parseEmfLine(line) {
  const text = line.trim();
  if (!text.startsWith("{") || !text.includes('"CloudWatchMetrics"')) return undefined;
  let record;
  try {
    record = JSON.parse(text);
  } catch {
    return undefined;
  }
  const aws = record?.[EMF_KEY];
  if (!aws || !Array.isArray(aws.CloudWatchMetrics)) return undefined;
  return record;
}

/**
 * @typedef {{ _aws: { Timestamp: number, CloudWatchMetrics: { Namespace: string, Dimensions: string[][], Metrics: { Name: string, Unit?: string }[] }[] }, [key: string]: unknown }} EmfRecord
 * @typedef {{ sum: number, count: number, samples?: number[], sorted?: Float64Array, dropped?: number }} Cell
 * @typedef {{ t: number, metrics: Map<string, Cell> }} Bucket
 * @typedef {{ totals: Map<string, number>, units: Map<string, string>, buckets: Map<number, Bucket> }} Series
 */

/** The series a record belongs to. @param {EmfRecord} record */
function seriesName(record) {
  if (typeof record.route === "string") return record.route;
  if (typeof record.kind === "string") return `broadcast ${record.kind}`;
  return "(no route)";
}

/**
 * Each metric of a record with its values (Powertools writes an array when one metric was added
 * more than once before a flush) and unit.
 * @param {EmfRecord} record
 * @returns {{ name: string, unit: string, values: number[] }[]}
 */
function metricValues(record) {
  /** @type {Map<string, { name: string, unit: string, values: number[] }>} */
  const found = new Map();
  for (const directive of record._aws.CloudWatchMetrics) {
    for (const { Name, Unit } of directive.Metrics ?? []) {
      if (found.has(Name)) continue;
      const raw = record[Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter(
        /** @returns {value is number} */ (value) => typeof value === "number" && Number.isFinite(value),
      );
      found.set(Name, { name: Name, unit: Unit ?? "None", values });
    }
  }
  return [...found.values()];
}

/**
 * The nearest-rank percentile of sorted samples (p in 0..100); undefined for none.
 * @param {ArrayLike<number>} sorted ascending
 * @param {number} p
 */
export function percentile(sorted, p) {
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/**
 * Per-series, per-metric time series of EMF records, bounded to the last `windowMs`.
 * @param {{ bucketMs?: number, windowMs?: number, maxSamples?: number }} [options]
 */
export function createEmfSeries({ bucketMs = 2_000, windowMs = 15 * 60_000, maxSamples = 5_000 } = {}) {
  /** @type {Map<string, Series>} */
  const series = new Map();
  let records = 0;

  /** @param {string} name */
  const seriesOf = (name) => {
    let found = series.get(name);
    if (!found) {
      found = { totals: new Map(), units: new Map(), buckets: new Map() };
      series.set(name, found);
    }
    return found;
  };

  /** Drops the buckets that ended before the window. @param {number} now */
  const prune = (now) => {
    const oldest = now - windowMs;
    for (const { buckets } of series.values()) {
      for (const t of buckets.keys()) if (t + bucketMs <= oldest) buckets.delete(t);
    }
  };

  return {
    bucketMs,
    windowMs,
    /**
     * Adds one record; its `_aws.Timestamp` places it in a bucket.
     * @param {EmfRecord} record
     */
    add(record) {
      records++;
      const { totals, units, buckets } = seriesOf(seriesName(record));
      const timestamp = Number(record._aws.Timestamp);
      const t = Math.floor(timestamp / bucketMs) * bucketMs;
      let bucket = buckets.get(t);
      if (!bucket) {
        bucket = { t, metrics: new Map() };
        buckets.set(t, bucket);
      }
      for (const { name, unit, values } of metricValues(record)) {
        units.set(name, unit);
        let cell = bucket.metrics.get(name);
        if (!cell) {
          cell = { sum: 0, count: 0 };
          bucket.metrics.set(name, cell);
        }
        for (const value of values) {
          cell.sum += value;
          cell.count++;
          if (unit !== "Milliseconds") {
            totals.set(name, (totals.get(name) ?? 0) + value);
            continue;
          }
          cell.samples ??= [];
          cell.sorted = undefined;
          if (cell.samples.length < maxSamples) cell.samples.push(value);
          else cell.dropped = (cell.dropped ?? 0) + 1;
        }
      }
    },
    /** Adds the record in `line`, if it holds one. @param {string} line @returns {boolean} */
    addLine(line) {
      const record = parseEmfLine(line);
      if (record) this.add(record);
      return record !== undefined;
    },
    /** How many records were added since the start. */
    get records() {
      return records;
    },
    /**
     * The series as plain data, for the page: per series, totals since the start and the buckets of
     * the window (oldest first), each with sums (counts) or p50/p99 (millisecond metrics), and the
     * window's p50/p99 per millisecond metric.
     * @param {number} now
     */
    snapshot(now) {
      prune(now);
      /** @type {Record<string, unknown>} */
      const out = {};
      for (const [name, { totals, units, buckets }] of [...series].sort(([a], [b]) => a.localeCompare(b))) {
        const ordered = [...buckets.values()].sort((a, b) => a.t - b.t);
        /** @type {Record<string, Float64Array[]>} */
        const windowSamples = {};
        const points = ordered.map(({ t, metrics }) => {
          /** @type {Record<string, number>} */
          const sums = {};
          /** @type {Record<string, { count: number, p50?: number, p99?: number, dropped?: number }>} */
          const latency = {};
          for (const [metric, cell] of metrics) {
            if (cell.samples) {
              // Sorted once per change: a finished bucket is not sorted again on the next poll.
              cell.sorted ??= Float64Array.from(cell.samples).sort();
              const sorted = cell.sorted;
              latency[metric] = {
                count: cell.count,
                p50: percentile(sorted, 50),
                p99: percentile(sorted, 99),
              };
              if (cell.dropped) latency[metric].dropped = cell.dropped;
              windowSamples[metric] = [...(windowSamples[metric] ?? []), sorted];
            } else sums[metric] = cell.sum;
          }
          return { t, sums, latency };
        });
        /** @type {Record<string, { count: number, p50?: number, p99?: number }>} */
        const windowLatency = {};
        for (const [metric, parts] of Object.entries(windowSamples)) {
          const samples = new Float64Array(parts.reduce((length, part) => length + part.length, 0));
          let offset = 0;
          for (const part of parts) {
            samples.set(part, offset);
            offset += part.length;
          }
          samples.sort();
          windowLatency[metric] = {
            count: samples.length,
            p50: percentile(samples, 50),
            p99: percentile(samples, 99),
          };
        }
        out[name] = {
          totals: Object.fromEntries(totals),
          units: Object.fromEntries(units),
          latency: windowLatency,
          buckets: points,
        };
      }
      return { now, bucketMs, windowMs, records, series: out };
    },
  };
}
