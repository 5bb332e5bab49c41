import type { Metrics } from "@aws-lambda-powertools/metrics";
import pMap from "p-map";
import { logger } from "../observability/logger.ts";
import { MetricUnit, metrics as sharedMetrics } from "../observability/metrics.ts";

/** Sends one payload to one connection; throws the SDK's error when API Gateway refuses or `signal` aborts. */
export type PostToConnection = (connectionId: string, payload: string, signal?: AbortSignal) => Promise<void>;

export interface FanoutReport {
  /** Connections the payload was addressed to. */
  recipients: number;
  delivered: number;
  /** Connections API Gateway says are gone (410); their records have been removed. */
  gone: string[];
  /** Sends that failed for another reason (throttled past the SDK's retries, 5XX, timeouts). */
  failed: number;
  /** Sends not made, or cut off, because the broadcast ran out of time (`signal`). */
  skipped: number;
  durationMs: number;
}

/**
 * A 410 from PostToConnection: the connection is closed for good. Detected by the HTTP status the
 * SDK records, since the error's name depends on the SDK's model (`GoneException` on AWS; the local
 * stack's 410 reaches the SDK as `Unknown`).
 */
export function isGone(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata
    ?.httpStatusCode;
  return status === 410 || (error as Error | undefined)?.name === "GoneException";
}

export interface FanoutOptions {
  post: PostToConnection;
  connectionIds: string[];
  payload: string;
  /** Sends in flight at once. */
  concurrency: number;
  /** Removes a connection found gone; its failure is logged, never the broadcast's. */
  removeGone: (connectionId: string) => Promise<void>;
  /** Metric dimension: what was broadcast. */
  kind: FanoutKind;
  /**
   * The broadcast's time budget: once it aborts, no new send starts and those in flight are cut off,
   * so the function answers before its own timeout. The message is already stored: a recipient that
   * was skipped finds it in history.
   */
  signal?: AbortSignal;
  metrics?: Metrics;
}

/** What a broadcast was, the `kind` dimension of its metrics (the dashboards and alarms list them). */
export const FANOUT_KINDS = ["room", "direct", "bridge"] as const;
export type FanoutKind = (typeof FANOUT_KINDS)[number];

/**
 * Delivers one payload to many connections, at most `concurrency` at a time. A send that fails never
 * stops the others; a gone connection is cleaned up as it is found (not the sender's: each target's
 * own 410 names it). One EMF record per broadcast: recipients, delivered, gone, failed, duration.
 */
export async function fanOut({
  post,
  connectionIds,
  payload,
  concurrency,
  removeGone,
  kind,
  signal,
  metrics = sharedMetrics,
}: FanoutOptions): Promise<FanoutReport> {
  const began = performance.now();
  const gone: string[] = [];
  let delivered = 0;
  let failed = 0;
  let skipped = 0;
  const targets = [...new Set(connectionIds)];
  await pMap(
    targets,
    async (connectionId) => {
      if (signal?.aborted) {
        skipped++;
        return;
      }
      try {
        await post(connectionId, payload, signal);
        delivered++;
      } catch (error) {
        if (signal?.aborted) {
          skipped++;
          return;
        }
        if (!isGone(error)) {
          failed++;
          logger.warn("could not deliver to a connection", { connectionId, error });
          return;
        }
        gone.push(connectionId);
        await removeGone(connectionId).catch((cleanupError: unknown) =>
          logger.warn("could not remove a gone connection; it will expire", {
            connectionId,
            error: cleanupError,
          }),
        );
      }
    },
    { concurrency },
  );
  const report: FanoutReport = {
    recipients: targets.length,
    delivered,
    gone,
    failed,
    skipped,
    durationMs: performance.now() - began,
  };
  metrics.addDimension("kind", kind);
  metrics.addMetric("FanoutRecipients", MetricUnit.Count, report.recipients);
  metrics.addMetric("FanoutDelivered", MetricUnit.Count, delivered);
  metrics.addMetric("FanoutGone", MetricUnit.Count, gone.length);
  metrics.addMetric("FanoutFailed", MetricUnit.Count, failed);
  metrics.addMetric("FanoutSkipped", MetricUnit.Count, skipped);
  metrics.addMetric("FanoutDuration", MetricUnit.Milliseconds, report.durationMs);
  metrics.publishStoredMetrics();
  if (failed > 0 || skipped > 0) logger.warn("broadcast incomplete", { kind, ...report, gone: gone.length });
  return report;
}

/** Time kept back from a broadcast's budget, for the answer and the log after it. */
const ANSWER_MARGIN_MS = 2_000;

/** A broadcast's time budget: what the invocation has left, less the margin to answer in. */
export function broadcastBudget(context: { getRemainingTimeInMillis(): number }): AbortSignal {
  return AbortSignal.timeout(Math.max(500, context.getRemainingTimeInMillis() - ANSWER_MARGIN_MS));
}
