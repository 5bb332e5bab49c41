import { ServiceUnavailableError } from "../errors.ts";
import { logger } from "../observability/logger.ts";
import { countEvent } from "../observability/metrics.ts";
import {
  type LimitDecision,
  type Limiter,
  LimiterThrottledError,
  LimiterTimeoutError,
  type PlanLimits,
} from "./limiter.ts";
import { createLocalLimiter, type LocalLimiter } from "./local-limiter.ts";

/** How a decision was reached: counted in the usage table, or in memory while the table was unreachable. */
type LimitMode = "counted" | "degraded";
export type LimitOutcome = LimitDecision & { mode: LimitMode };

export interface LimitPolicyOptions {
  limiter: Pick<Limiter, "check" | "addUsage">;
  /** `limits.onStoreFailure`: what an unreachable table means (never a slow one). */
  onStoreFailure: "open" | "closed";
  /** Names the limits in messages and logs: "Usage limits", "Message limits". */
  what: string;
  local?: LocalLimiter;
}

/** One warning per kind per this long, so a table outage is not a log line per request. */
const WARN_EVERY_MS = 10_000;

/**
 * The one policy for every limit check (HTTP routes, the bridge, WebSocket messages and connections):
 * - counted: one conditional write in the usage table decides (exact);
 * - the subject's own counter throttled (or contended): a refusal, `429 rate-limited`;
 * - the check's time budget ran out (the table is slow, not down): `503` with `Retry-After`; never an
 *   uncounted admission;
 * - the table unreachable or failing: `closed` answers 503; `open` decides in memory at the plan's
 *   own limits per container (`LimiterDegradedAdmission` for every admission), and books what it
 *   admitted into the table's quota counters once the table answers again.
 *
 * Its counts are published at once under `[service]` (`LimiterThrottled`, `LimiterTimeout`,
 * `LimiterUnavailable`, `LimiterDegradedAdmission`/`Refusal`), and every refusal as `LimitRefused`
 * by plan, so they read the same from the gateway, the bridge and the WebSocket handlers.
 *
 * Example: `const outcome = await policy.check("key:k1", plan, 1, 2_000)`.
 */
export function createLimitPolicy({
  limiter,
  onStoreFailure,
  what,
  local = createLocalLimiter(),
}: LimitPolicyOptions) {
  const warned = new Map<string, number>();
  const warn = (kind: string, message: string, fields: Record<string, unknown>) => {
    const last = warned.get(kind) ?? Number.NEGATIVE_INFINITY;
    if (Date.now() - last < WARN_EVERY_MS) return;
    warned.set(kind, Date.now());
    logger.warn(message, fields);
  };

  /** Books degraded admissions into the table; what fails is kept for the next time. */
  async function settleOwed(signal: AbortSignal): Promise<void> {
    const entries = local.takeOwed();
    const failed = [];
    for (const entry of entries) {
      try {
        await limiter.addUsage(entry.subject, entry.plan, entry.windowId, entry.units, signal);
      } catch {
        failed.push(entry);
      }
    }
    local.returnOwed(failed);
    if (entries.length > failed.length) {
      logger.info(`${what}: degraded admissions booked into the usage table`, {
        entries: entries.length - failed.length,
      });
    }
  }

  return {
    /**
     * Counts `cost` for `subject` under `plan` within `budgetMs`. Resolves with the decision (admitted
     * or refused by a limit); throws `ServiceUnavailableError` (503) when it cannot decide.
     */
    async check(subject: string, plan: PlanLimits, cost: number, budgetMs: number): Promise<LimitOutcome> {
      const signal = AbortSignal.timeout(Math.max(1, Math.floor(budgetMs)));
      try {
        const decision = await limiter.check(subject, plan, cost, signal);
        if (local.owing) await settleOwed(signal);
        if (!decision.admitted) countEvent("LimitRefused", { plan: plan.name });
        return { ...decision, mode: "counted" };
      } catch (error) {
        if (error instanceof LimiterThrottledError) {
          countEvent("LimiterThrottled");
          countEvent("LimitRefused", { plan: plan.name });
          warn("throttled", `${what}: counter throttled; refusing`, { subject, error });
          return {
            admitted: false,
            reason: "rate",
            limit: plan.rate?.burst ?? plan.quota?.limit ?? 0,
            remaining: 0,
            resetSeconds: 1,
            retryAfterSeconds: 1,
            mode: "counted",
          };
        }
        if (error instanceof LimiterTimeoutError) {
          countEvent("LimiterTimeout");
          warn("timeout", `${what}: usage table too slow; refusing (not admitted uncounted)`, {
            budgetMs,
            error,
          });
          throw new ServiceUnavailableError(`${what} could not be checked in time; try again shortly`, {
            headers: { "retry-after": "1" },
            cause: error,
          });
        }
        if (onStoreFailure === "closed") {
          countEvent("LimiterUnavailable");
          warn("closed", `${what}: usage table unavailable; refusing (onStoreFailure: closed)`, { error });
          throw new ServiceUnavailableError(`${what} cannot be checked right now; try again shortly`, {
            headers: { "retry-after": "1" },
            cause: error,
          });
        }
        const decision = local.check(subject, plan, cost);
        countEvent(decision.admitted ? "LimiterDegradedAdmission" : "LimiterDegradedRefusal");
        if (!decision.admitted) countEvent("LimitRefused", { plan: plan.name });
        warn("open", `${what}: usage table unavailable; counting in memory (onStoreFailure: open)`, {
          error,
        });
        return { ...decision, mode: "degraded" };
      }
    },
  };
}

export type LimitPolicy = ReturnType<typeof createLimitPolicy>;

/** `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds), as the IETF draft names them. */
export function rateLimitHeaders(decision: LimitDecision): Record<string, string> {
  return {
    "ratelimit-limit": String(decision.limit),
    "ratelimit-remaining": String(decision.remaining),
    "ratelimit-reset": String(decision.resetSeconds),
  };
}
