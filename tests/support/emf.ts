import { mock } from "node:test";
import { metrics } from "#shared/observability/metrics.ts";

/**
 * Captures the EMF records Powertools Metrics writes (instead of printing them) until
 * `mock.restoreAll()`; the returned array fills as records are written.
 */
export function captureEmf(): Record<string, unknown>[] {
  const records: Record<string, unknown>[] = [];
  mock.method((metrics as unknown as { console: Console }).console, "log", (line: string) => {
    records.push(JSON.parse(line) as Record<string, unknown>);
  });
  return records;
}
