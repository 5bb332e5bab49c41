/**
 * The wait between two attempts of an upstream call (exponential, capped). The HTTP and Lambda
 * clients retry with it, and the config's worst-case time (`upstreamWorstCaseMs`) counts it, so a
 * change here moves both. A module without dependencies, so the config can import it at cold start.
 */
export const RETRY_BACKOFF = { initialDelayMs: 50, maxDelayMs: 500 } as const;
