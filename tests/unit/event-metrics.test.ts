import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it, mock } from "node:test";
import { countEvent, metrics } from "#shared/observability/metrics.ts";
import { createLimitPolicy } from "#shared/quota/limit-policy.ts";
import type { PlanLimits } from "#shared/quota/limiter.ts";
import { captureEmf } from "../support/emf.ts";

type Record_ = Record<string, unknown>;
const dimensionsOf = (record: Record_ | undefined) =>
  (record?._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] } | undefined)?.CloudWatchMetrics[0]
    ?.Dimensions;

const plan: PlanLimits = { name: "free", rate: { perSecond: 1, burst: 1 }, shards: 1 };
const refused = { admitted: false, reason: "rate" as const, limit: 1, remaining: 0, resetSeconds: 1 };
const admitted = { admitted: true, limit: 1, remaining: 0, resetSeconds: 1 };

describe("counts published on their own (countEvent)", () => {
  let emf: Record_[] = [];
  beforeEach(() => {
    emf = captureEmf();
  });
  afterEach(() => mock.restoreAll());

  it("writes one record per count, under [service] or under each dimension set given", () => {
    // Prepare: a request record being built on the shared instance.
    metrics.addDimension("route", "GET /a");
    metrics.addMetric("Requests", "Count", 1);

    // Act
    countEvent("Plain");
    countEvent("CircuitOpened", { upstream: "users" }, { upstream: "users", target: "https://u.example" });

    // Assess: two records written at once; the request record is left for its own publish.
    assert.deepEqual(
      emf.map((record) => [Object.keys(record).find((key) => /^[A-Z]/.test(key)), dimensionsOf(record)]),
      [
        ["Plain", [["service"]]],
        [
          "CircuitOpened",
          [
            ["service", "upstream"],
            ["service", "upstream", "target"],
          ],
        ],
      ],
    );
    metrics.publishStoredMetrics();
    assert.equal(emf.at(-1)?.route, "GET /a");
    assert.equal("Plain" in (emf.at(-1) ?? {}), false);
  });

  it("publishes a degraded admission at once, under [service], wherever the limit is checked", async () => {
    // Prepare: a usage table that cannot be reached, and an open policy.
    const policy = createLimitPolicy({
      limiter: {
        check: async () => {
          throw new Error("ECONNREFUSED");
        },
        addUsage: async () => undefined,
      },
      onStoreFailure: "open",
      what: "Usage limits",
    });

    // Act
    const outcome = await policy.check("key:a", plan, 1, 1_000);

    // Assess
    assert.equal(outcome.mode, "degraded");
    const record = emf.find((r) => "LimiterDegradedAdmission" in r);
    assert.deepEqual(dimensionsOf(record), [["service"]]);
  });

  it("counts every refusal as LimitRefused by plan, counted or degraded, and nothing for an admission", async () => {
    // Prepare
    const answers = [refused, admitted];
    const policy = createLimitPolicy({
      limiter: { check: async () => answers.shift() ?? admitted, addUsage: async () => undefined },
      onStoreFailure: "open",
      what: "Usage limits",
    });

    // Act
    await policy.check("key:a", plan, 1, 1_000);
    await policy.check("key:a", plan, 1, 1_000);

    // Assess
    const refusals = emf.filter((r) => "LimitRefused" in r);
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]?.plan, "free");
    assert.deepEqual(dimensionsOf(refusals[0]), [["service", "plan"]]);
  });
});
