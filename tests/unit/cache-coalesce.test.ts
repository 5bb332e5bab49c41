import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createCoalescer, type Fetched } from "#shared/cache/coalesce.ts";

/** A promise the test settles. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("coalescing", () => {
  it("makes one call for concurrent misses of one key and gives every caller its answer", async () => {
    const coalescer = createCoalescer();
    const upstream = deferred<Fetched<string>>();
    let calls = 0;
    const call = () => {
      calls += 1;
      return upstream.promise;
    };
    const waiting = [1, 2, 3, 4, 5].map(() => coalescer.run("k1:a", call));
    assert.equal(coalescer.inFlight, 1);
    upstream.resolve({ value: "answer", shareable: true });
    const results = await Promise.all(waiting);
    assert.equal(calls, 1);
    assert.deepEqual(
      results.map((r) => r.value),
      ["answer", "answer", "answer", "answer", "answer"],
    );
    assert.equal(results.filter((r) => !r.coalesced).length, 1, "one caller made the call");
    assert.equal(coalescer.inFlight, 0);
  });

  it("keeps keys apart: one call per key", async () => {
    const coalescer = createCoalescer();
    const seen: string[] = [];
    const call = (value: string) => async () => {
      seen.push(value);
      return { value, shareable: true };
    };
    const [a, b] = await Promise.all([coalescer.run("k1:a", call("a")), coalescer.run("k1:b", call("b"))]);
    assert.deepEqual([a.value, b.value], ["a", "b"]);
    assert.deepEqual(seen.sort(), ["a", "b"]);
  });

  it("never hands a waiter an answer that was not shareable: the waiter makes its own call", async () => {
    const coalescer = createCoalescer();
    const leader = deferred<Fetched<string>>();
    const leading = coalescer.run("k1:a", () => leader.promise);
    const waiting = coalescer.run("k1:a", async () => ({ value: "waiter's own", shareable: false }));
    leader.resolve({ value: "leader's private answer", shareable: false });
    assert.deepEqual(await leading, { value: "leader's private answer", coalesced: false });
    assert.deepEqual(await waiting, { value: "waiter's own", coalesced: false });
  });

  it("fails the waiters with the leader's error, and the next miss calls again", async () => {
    const coalescer = createCoalescer();
    const leader = deferred<Fetched<string>>();
    const outage = new Error("upstream unreachable");
    const results = Promise.allSettled([
      coalescer.run("k1:a", () => leader.promise),
      coalescer.run("k1:a", () => Promise.reject(new Error("not called"))),
    ]);
    leader.reject(outage);
    assert.deepEqual(
      (await results).map((r) => (r.status === "rejected" ? r.reason : r.value)),
      [outage, outage],
    );
    assert.equal(coalescer.inFlight, 0);
    assert.deepEqual(await coalescer.run("k1:a", async () => ({ value: "back", shareable: true })), {
      value: "back",
      coalesced: false,
    });
  });
});
