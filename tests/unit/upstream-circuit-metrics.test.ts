import assert from "node:assert/strict";
import { afterEach, describe, it, mock } from "node:test";
import { createUpstreamClient } from "#shared/upstream/http-client.ts";
import { captureEmf } from "../support/emf.ts";

describe("upstream client: circuit metrics", () => {
  afterEach(() => mock.restoreAll());

  it("publishes CircuitOpened by upstream and by upstream × target when a target's circuit opens", async () => {
    // Prepare: two targets that refuse every connection; the circuit opens at the first failure.
    const emf = captureEmf();
    const client = createUpstreamClient({
      name: "users",
      targets: [
        { url: "http://a.invalid", weight: 1 },
        { url: "http://b.invalid", weight: 1 },
      ],
      timeoutMs: 1_000,
      retries: 0,
      breaker: { consecutiveFailures: 1, halfOpenAfterMs: 60_000 },
      maxResponseBytes: 1_024,
      random: () => 0, // the first target that may take traffic
      transport: async () => async () => {
        throw new Error("ECONNREFUSED");
      },
    });

    // Act: the first call opens a's circuit, the second b's; the third finds both open.
    for (let call = 0; call < 3; call += 1) {
      await assert.rejects(client({ method: "POST", path: "/", headers: {} }));
    }

    // Assess
    const opened = emf.filter((record) => "CircuitOpened" in record);
    assert.deepEqual(
      opened.map((record) => [record.upstream, record.target]),
      [
        ["users", "http://a.invalid"],
        ["users", "http://b.invalid"],
      ],
    );
    const aws = opened[0]?._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] };
    assert.deepEqual(aws.CloudWatchMetrics[0]?.Dimensions, [
      ["service", "upstream"],
      ["service", "upstream", "target"],
    ]);
  });
});
