import { LRUCache } from "lru-cache";
import type { LimitDecision, PlanLimits } from "./limiter.ts";
import { quotaWindow, rateWindow, secondsFrom } from "./windows.ts";

/**
 * The degraded-mode limiter: used only while the usage table is unreachable (never when it is merely
 * slow). It keeps the plan's own limits per subject in this container's memory, with the same fixed
 * rate windows and calendar quota windows as the DynamoDB limiter, so the worst case over the whole
 * fleet is stated: each warm container admits at most `burst` per rate window and `quota.limit` per
 * quota window for a subject (containers × that, in all). Shards are ignored: a container holds the
 * whole plan.
 *
 * What it admits is remembered per subject and quota window (`owed`), so the quota counter in
 * DynamoDB can be brought up to date once the table answers again (`takeOwed`).
 */
export interface OwedUsage {
  subject: string;
  plan: PlanLimits;
  windowId: string;
  units: number;
}

interface Counters {
  rw: number;
  rc: number;
  qw: string | undefined;
  used: number;
}

export function createLocalLimiter({
  now = Date.now,
  maxSubjects = 10_000,
}: {
  now?: () => number;
  maxSubjects?: number;
} = {}) {
  // Bounded: a flood of distinct subjects evicts the least recent (each of those starts afresh,
  // which the stated worst case already allows for a container that has just started).
  const counters = new LRUCache<string, Counters>({ max: maxSubjects });
  const owed = new Map<string, OwedUsage>();

  return {
    /** Counts `cost` for `subject` in memory; the decision has the same shape as the store's. */
    check(subject: string, plan: PlanLimits, cost: number): LimitDecision {
      const nowMs = now();
      const windowMs = plan.rate ? (plan.rate.burst / plan.rate.perSecond) * 1000 : 0;
      const rate = plan.rate ? rateWindow(windowMs, nowMs) : undefined;
      const quota = plan.quota ? quotaWindow(plan.quota.period, nowMs) : undefined;
      const key = `${plan.name}|${subject}`;
      const state = counters.get(key) ?? { rw: -1, rc: 0, qw: undefined, used: 0 };
      if (rate && state.rw !== rate.index) Object.assign(state, { rw: rate.index, rc: 0 });
      if (quota && state.qw !== quota.id) Object.assign(state, { qw: quota.id, used: 0 });
      counters.set(key, state);

      const quotaLeft = plan.quota ? plan.quota.limit - state.used : Number.POSITIVE_INFINITY;
      const rateLeft = plan.rate ? plan.rate.burst - state.rc : Number.POSITIVE_INFINITY;
      const quotaReset = quota ? secondsFrom(quota.endMs - nowMs) : 0;
      const rateReset = rate ? secondsFrom(rate.endMs - nowMs) : 0;
      if (plan.quota && cost > quotaLeft) {
        return refusal("quota", plan.quota.limit, quotaLeft, quotaReset);
      }
      if (plan.rate && cost > rateLeft) return refusal("rate", plan.rate.burst, rateLeft, rateReset);

      state.rc += cost;
      state.used += cost;
      if (plan.quota && quota) {
        const owedKey = `${key}|${quota.id}`;
        const entry = owed.get(owedKey) ?? { subject, plan, windowId: quota.id, units: 0 };
        entry.units += cost;
        owed.set(owedKey, entry);
      }
      // The headers describe the limit closest to running out, as the store's decisions do.
      if (plan.quota && quotaLeft - cost <= rateLeft - cost) {
        return {
          admitted: true,
          limit: plan.quota.limit,
          remaining: quotaLeft - cost,
          resetSeconds: quotaReset,
        };
      }
      return {
        admitted: true,
        limit: plan.rate?.burst ?? 0,
        remaining: Number.isFinite(rateLeft) ? rateLeft - cost : 0,
        resetSeconds: rateReset,
      };
    },

    /** Whether degraded admissions are waiting to be added to the store's quota counters. */
    get owing(): boolean {
      return owed.size > 0;
    },

    /** The degraded admissions not yet in the store, handed over (and forgotten here). */
    takeOwed(): OwedUsage[] {
      const entries = [...owed.values()];
      owed.clear();
      return entries;
    },

    /** Gives back entries that could not be written, to try again later. */
    returnOwed(entries: readonly OwedUsage[]): void {
      for (const entry of entries) {
        const key = `${entry.plan.name}|${entry.subject}|${entry.windowId}`;
        const held = owed.get(key);
        if (held) held.units += entry.units;
        else owed.set(key, { ...entry });
      }
    },
  };
}

export type LocalLimiter = ReturnType<typeof createLocalLimiter>;

function refusal(reason: "rate" | "quota", limit: number, left: number, reset: number): LimitDecision {
  return {
    admitted: false,
    reason,
    limit,
    remaining: Math.max(0, left),
    resetSeconds: reset,
    retryAfterSeconds: reset,
  };
}
