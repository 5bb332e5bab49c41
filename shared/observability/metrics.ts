import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { env } from "../config/env.ts";
import { logger } from "./logger.ts";

/**
 * Powertools Metrics warns whenever one key is in two dimension sets ("Dimension route has already been
 * added", "EMF key route is defined as both…"), though EMF means exactly that: the gateway's request
 * record has the sets [route] and [route, upstream, target] (a circuit's opening, [upstream] and
 * [upstream, target]). Those warnings would be a log line per
 * request; everything else Metrics has to say goes to the logger.
 */
const SHARED_DIMENSION =
  /^(Dimension "(route|upstream)" has already been added|EMF key "(route|upstream)" is defined as both a (dimension|dimension set) and dimension set)/;
type Level = "debug" | "info" | "warn" | "error";
const forward =
  (level: Level) =>
  (...content: unknown[]): void => {
    const [message, ...rest] = content;
    if (level === "warn" && SHARED_DIMENSION.test(String(message))) return;
    if (rest.length === 0) logger[level](String(message));
    else logger[level](String(message), { detail: rest.map(String) });
  };
const metricsLog = {
  debug: forward("debug"),
  info: forward("info"),
  warn: forward("warn"),
  error: forward("error"),
};

/** The CloudWatch namespace of every metric the functions publish (the dashboards read it too). */
export const METRICS_NAMESPACE = "Gatehouse";

/**
 * CloudWatch metrics in embedded metric format (Powertools Metrics), one instance per container:
 * written to the log as JSON, turned into metrics by CloudWatch with no API call on the request path.
 * Namespace `Gatehouse`; the `service` dimension is `env.serviceName` (`<service>-<stage>` deployed).
 */
export const metrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: env.serviceName,
  logger: metricsLog,
});

/**
 * A second instance for counts that are not part of a request's record: published at once, with only
 * the dimensions given (plus `service`), so they land under the same dimensions in every function, and
 * in functions that publish no request record (the WebSocket handlers, the authorizers).
 */
export const eventMetrics = new Metrics({
  namespace: METRICS_NAMESPACE,
  serviceName: env.serviceName,
  logger: metricsLog,
});

/**
 * Publishes one count now, in its own EMF record, leaving any request record being built untouched:
 * under `[service]` alone, or under each dimension set given (each with `service`). Dimension values
 * must come from a bounded set (config names, fixed codes).
 * Example: `countEvent("CircuitOpened", { upstream: "users" }, { upstream: "users", target: url })`.
 */
export function countEvent(name: string, ...dimensionSets: Record<string, string>[]): void {
  for (const set of dimensionSets) eventMetrics.addDimensions(set);
  eventMetrics.addMetric(name, MetricUnit.Count, 1);
  eventMetrics.publishStoredMetrics();
}

export { MetricUnit };
