import type middy from "@middy/core";
import type { GatehouseContext, HttpEvent, HttpResult } from "../http.ts";
import { MetricUnit, metrics as sharedMetrics } from "../observability/metrics.ts";

const started = new WeakMap<GatehouseContext, number>();

/**
 * Per request, by route: `Requests`, `Status4XX`, `Status5XX` (0 or 1, so averages are rates) and
 * `Latency` in ms, flushed as one EMF record when the response (or the mapped error) is ready. The
 * route dimension is the declared route key, so its cardinality is the config's.
 */
export function requestMetrics(
  routeKeyOf: (event: HttpEvent) => string | undefined,
  metrics = sharedMetrics,
): middy.MiddlewareObj<HttpEvent, HttpResult, Error, GatehouseContext> {
  const requestMetricsBefore: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    started.set(request.context, performance.now());
  };
  const requestMetricsAfter: middy.MiddlewareFn<HttpEvent, HttpResult, Error, GatehouseContext> = (
    request,
  ) => {
    const status = request.response?.statusCode ?? 500;
    const begin = started.get(request.context) ?? performance.now();
    metrics.addDimension("route", routeKeyOf(request.event) ?? "unmatched");
    metrics.addMetric("Requests", MetricUnit.Count, 1);
    metrics.addMetric("Status4XX", MetricUnit.Count, status >= 400 && status < 500 ? 1 : 0);
    metrics.addMetric("Status5XX", MetricUnit.Count, status >= 500 ? 1 : 0);
    metrics.addMetric("Latency", MetricUnit.Milliseconds, performance.now() - begin);
    metrics.publishStoredMetrics();
  };
  return { before: requestMetricsBefore, after: requestMetricsAfter, onError: requestMetricsAfter };
}

/**
 * Time spent on the upstream call, by route, upstream and answering target; `UpstreamErrors` when
 * nobody answered. Published at once as its own record: a container serves one request at a time,
 * and the request's own metrics are only added after the handler.
 */
export function recordUpstream(
  {
    route,
    upstream,
    target,
    ms,
    failed,
  }: { route: string; upstream: string; target: string; ms: number; failed: boolean },
  metrics = sharedMetrics,
): void {
  metrics.addDimensions({ route, upstream, target });
  metrics.addMetric("UpstreamLatency", MetricUnit.Milliseconds, ms);
  metrics.addMetric("UpstreamErrors", MetricUnit.Count, failed ? 1 : 0);
  metrics.publishStoredMetrics();
}
