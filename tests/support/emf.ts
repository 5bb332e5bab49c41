import { mock } from "node:test";
import { eventMetrics, metrics } from "#shared/observability/metrics.ts";

/**
 * Captures the EMF records Powertools Metrics writes (request records and `countEvent`'s) (instead of printing them) until
 * `mock.restoreAll()`; the returned array fills as records are written.
 */
export function captureEmf(): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  for (const instance of [metrics, eventMetrics]) {
    mock.method((instance as unknown as { console: Console }).console, "log", (line: string) => {
      records.push(JSON.parse(line) as Record<string, unknown>);
    });
  }
  return records;
}
