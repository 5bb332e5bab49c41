import { ServiceUnavailableError } from "../errors.ts";
import { logger } from "../observability/logger.ts";
import { MetricUnit, metrics } from "../observability/metrics.ts";

/**
 * `limits.onStoreFailure` when the usage table could not answer a limit check: `closed` throws a 503
 * (`Retry-After: 1`); `open` logs a warning, counts `LimiterFailOpen` and returns, so the caller admits.
 * `what` names the limits in both ("Usage limits", "Message limits").
 */
export function onStoreFailure(
  policy: "open" | "closed",
  error: unknown,
  what: string,
  fields: Record<string, unknown> = {},
): void {
  if (policy === "closed") {
    throw new ServiceUnavailableError(`${what} cannot be checked right now; try again shortly`, {
      headers: { "retry-after": "1" },
      cause: error,
    });
  }
  logger.warn(`${what.toLowerCase()} unavailable; admitting (onStoreFailure: open)`, { ...fields, error });
  metrics.addMetric("LimiterFailOpen", MetricUnit.Count, 1);
}
