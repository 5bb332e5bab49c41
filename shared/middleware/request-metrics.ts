import type middy from "@middy/core";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import { MetricUnit, metrics as sharedMetrics } from "../observability/metrics.ts";

/** One upstream call of a request: by route, upstream and answering target (`none` when nobody answered). */
export interface UpstreamSample {
  upstream: string;
  target: string;
  ms: number;
  failed: boolean;
}

/** What the start step hands to the publish step, on the Middy request. */
interface MetricsState {
  began: number;
}
const stateOf = (request: { internal: object }) => request.internal as { metrics?: MetricsState };

/** Notes an upstream call of this request; `requestMetrics` publishes it with the request's own metrics. */
export function recordUpstream(context: GatehouseContext, sample: UpstreamSample): void {
  context.upstreamCalls?.push(sample);
}

/** Counts a later step or the handler adds to this request's record (the cache's `CacheHit`, …). */
export type RequestCount =
  | "CacheHit"
  | "CacheMiss"
  | "CacheStale"
  | "CacheBypass"
  | "CacheTooLarge"
  | "CircuitOpen";

/** Sets a count of this request's record (by route); `requestMetrics` publishes it with the others. */
export function recordCount(context: GatehouseContext, name: RequestCount, value: number): void {
  if (context.requestCounts) context.requestCounts[name] = value;
}

/**
 * Per request, by route: `Requests`, `Status4XX`, `Status429`, `Status5XX` (0 or 1, so averages are
 * rates; `Status429` is the part of `Status4XX` that limits refused) and
 * `Latency` in ms; per upstream call, by route × upstream × target: `UpstreamLatency` and
 * `UpstreamErrors`; and the counts other steps note (`recordCount`). Each record has the request id as
 * a property (`requestId`), as the logs, the trace and a problem body do. The route dimension is the declared route key, so cardinality stays the config's.
 *
 * A proxied request (one upstream call) is one EMF record with two dimension sets, [route] and
 * [route, upstream, target], so the request counts are also there per target; writing a record is
 * most of what metrics cost per request. An aggregate's calls get a record each.
 */
export function requestMetrics(
  routeKeyOf: (event: HttpEvent) => string | undefined,
  metrics = sharedMetrics,
): {
  start: middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;
  publish: middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext>;
} {
  const requestMetricsBefore: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    stateOf(request).metrics = { began: performance.now() };
    request.context.upstreamCalls = [];
    request.context.requestCounts = {};
  };
  const requestMetricsAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    const status = request.response?.statusCode ?? 500;
    const current = stateOf(request).metrics;
    stateOf(request).metrics = undefined;
    const route = routeKeyOf(request.event) ?? "unmatched";
    const samples = request.context.upstreamCalls ?? [];
    request.context.upstreamCalls = undefined;
    const single = samples.length === 1 ? samples[0] : undefined;

    metrics.addDimension("route", route);
    if (single) {
      metrics.addDimensions({ route, upstream: single.upstream, target: single.target });
      addUpstream(metrics, single);
    }
    metrics.addMetric("Requests", MetricUnit.Count, 1);
    metrics.addMetric("Status4XX", MetricUnit.Count, status >= 400 && status < 500 ? 1 : 0);
    metrics.addMetric("Status429", MetricUnit.Count, status === 429 ? 1 : 0);
    metrics.addMetric("Status5XX", MetricUnit.Count, status >= 500 ? 1 : 0);
    if (current) metrics.addMetric("Latency", MetricUnit.Milliseconds, performance.now() - current.began);
    for (const [name, value] of Object.entries(request.context.requestCounts ?? {}))
      metrics.addMetric(name, MetricUnit.Count, value);
    request.context.requestCounts = undefined;
    // A property of the record, not a dimension: the id its logs, trace and problem body carry.
    const { requestId } = request.context;
    if (requestId) metrics.addMetadata("requestId", requestId);
    metrics.publishStoredMetrics();
    if (single) return;
    for (const sample of samples) {
      metrics.addDimensions({ route, upstream: sample.upstream, target: sample.target });
      addUpstream(metrics, sample);
      if (requestId) metrics.addMetadata("requestId", requestId);
      metrics.publishStoredMetrics();
    }
  };
  // Two steps: `start` is the first request step, so `Latency` covers the body checks and the usage
  // check too (and a request they refuse is timed); `publish` is a response step.
  return {
    start: { before: requestMetricsBefore },
    publish: { after: requestMetricsAfter, onError: requestMetricsAfter },
  };
}

function addUpstream(metrics: typeof sharedMetrics, sample: UpstreamSample): void {
  metrics.addMetric("UpstreamLatency", MetricUnit.Milliseconds, sample.ms);
  metrics.addMetric("UpstreamErrors", MetricUnit.Count, sample.failed ? 1 : 0);
}
