/**
 * Calendar windows for quotas (UTC) and fixed windows for rates. A window's id goes into the
 * counter's key (quota) or is compared in the condition (rate), so a new window starts from zero
 * without a reset write.
 */

export type QuotaPeriod = "day" | "week" | "month";

export interface Window {
  /** Stable id, e.g. `day#2026-11-21`, `week#2026-11-16`, `month#2026-11`. */
  id: string;
  startMs: number;
  endMs: number;
}

const DAY_MS = 86_400_000;

/** The quota window holding `nowMs`: a UTC day, an ISO week (from Monday), or a calendar month. */
export function quotaWindow(period: QuotaPeriod, nowMs: number): Window {
  const now = new Date(nowMs);
  if (period === "day") {
    const startMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    return { id: `day#${isoDay(startMs)}`, startMs, endMs: startMs + DAY_MS };
  }
  if (period === "week") {
    const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    const sinceMonday = (now.getUTCDay() + 6) % 7;
    const startMs = midnight - sinceMonday * DAY_MS;
    return { id: `week#${isoDay(startMs)}`, startMs, endMs: startMs + 7 * DAY_MS };
  }
  const startMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  const endMs = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
  return { id: `month#${isoDay(startMs).slice(0, 7)}`, startMs, endMs };
}

/** The rate window holding `nowMs`: fixed windows of `lengthMs`, numbered from the epoch. */
export function rateWindow(lengthMs: number, nowMs: number): { index: number; endMs: number } {
  const index = Math.floor(nowMs / lengthMs);
  return { index, endMs: (index + 1) * lengthMs };
}

/** `YYYY-MM-DD` of a UTC time. */
export function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Whole seconds until `ms` from now, at least 1 (for `Retry-After` and `RateLimit-Reset`). */
export function secondsFrom(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
