import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";

/**
 * CloudWatch metrics in embedded metric format (Powertools Metrics), one instance per container:
 * written to the log as JSON, turned into metrics by CloudWatch with no API call on the request path.
 * Namespace from `POWERTOOLS_METRICS_NAMESPACE` (serverless.yml), default `Gatehouse`.
 */
export const metrics = new Metrics({ namespace: "Gatehouse", serviceName: "gatehouse" });

export { MetricUnit };
