/**
 * Coalescing of concurrent misses (docs/caching.md, "Coalescing"): callers that miss one key while
 * a call for it is in flight wait for that call instead of making their own. Made once per cache,
 * per container; the keys already carry the identity scope, so only callers that would share the
 * entry ever share a call.
 */

/** What a call produced, and whether it may be handed to other callers (it was stored). */
export interface Fetched<T> {
  value: T;
  shareable: boolean;
}

interface Coalesced<T> {
  value: T;
  /** True when this caller got another caller's answer rather than making the call itself. */
  coalesced: boolean;
}

export interface Coalescer {
  /**
   * Runs `call` for `key` unless one is in flight, then waits for that one. A waiter takes the
   * in-flight answer only when it is shareable; otherwise (a `Set-Cookie`, `private`, an unkeyed
   * `Vary`) it makes its own call. A failed call fails its waiters too: one outage, one error each,
   * and each may serve its stale entry.
   */
  run<T>(key: string, call: () => Promise<Fetched<T>>): Promise<Coalesced<T>>;
  /** Calls in flight now. */
  readonly inFlight: number;
}

/** Example: `const coalescer = createCoalescer(); await coalescer.run(key.id, fetchAndStore)`. */
export function createCoalescer(): Coalescer {
  const calls = new Map<string, Promise<Fetched<unknown>>>();

  async function lead<T>(key: string, call: () => Promise<Fetched<T>>): Promise<Coalesced<T>> {
    const pending = call();
    calls.set(key, pending);
    try {
      return { value: (await pending).value, coalesced: false };
    } finally {
      if (calls.get(key) === pending) calls.delete(key);
    }
  }

  return {
    async run<T>(key: string, call: () => Promise<Fetched<T>>): Promise<Coalesced<T>> {
      const pending = calls.get(key) as Promise<Fetched<T>> | undefined;
      if (!pending) return lead(key, call);
      const fetched = await pending;
      if (fetched.shareable) return { value: fetched.value, coalesced: true };
      // Not the leader's to give: this caller asks for itself (and leads any that come after it).
      return calls.has(key) ? { value: (await call()).value, coalesced: false } : lead(key, call);
    },
    get inFlight() {
      return calls.size;
    },
  };
}
