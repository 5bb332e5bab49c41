import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventFiles } from "../support/events.ts";
import { serverless } from "../support/serverless.ts";

/** The handler's answer: the last top-level JSON document `invoke local` prints (logs come before it). */
function resultOf(stdout: string): Record<string, unknown> {
  const start = stdout.lastIndexOf("\n{\n");
  return JSON.parse(stdout.slice(start === -1 ? stdout.indexOf("{") : start + 1)) as Record<string, unknown>;
}

// Each sample event, run by the real CLI the README shows: `serverless invoke local -f <fn> -p events/<file>`.
describe("serverless invoke local with every sample event", () => {
  for (const { file, functionName } of eventFiles()) {
    it(`${file} → ${functionName}`, async () => {
      const { code, stdout, stderr } = await serverless([
        "invoke",
        "local",
        "--stage",
        "local",
        "-f",
        functionName,
        "-p",
        `events/${file}`,
      ]);
      assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
      const result = resultOf(stdout);
      if (functionName === "wsAuthorizer") {
        // The sample's token has a signature no issuer made: an IAM Deny policy for the route.
        const document = result.policyDocument as { Statement: { Effect: string; Resource: string }[] };
        assert.equal(result.principalId, "denied");
        assert.equal(document.Statement[0]?.Effect, "Deny");
        assert.match(document.Statement[0]?.Resource ?? "", /\$connect$/);
        return;
      }
      if (functionName === "httpAuthorizer") {
        // A simple response: allow with the identity as flat context, or deny with none.
        const allowed = file === "httpAuthorizer.json";
        assert.equal(result.isAuthorized, allowed);
        const context = result.context as Record<string, string>;
        if (allowed) assert.equal(context.keyId, "key_local_demo");
        else assert.deepEqual(context, {});
        return;
      }
      assert.equal(typeof result.statusCode, "number");
      const headers = result.headers as Record<string, string>;
      assert.ok(headers["x-request-id"], "every answer carries the request id");

      if (functionName === "gateway") {
        if (file === "gateway.json") {
          assert.equal(result.statusCode, 200, String(result.body));
          assert.equal((JSON.parse(String(result.body)) as { name: string }).name, "Ada Lovelace");
        } else {
          assert.equal(result.statusCode, 404);
          assert.equal(headers["content-type"], "application/problem+json");
        }
      } else if (functionName === "adminKeys") {
        const body = JSON.parse(String(result.body)) as Record<string, unknown>;
        if (file === "adminKeys.json") {
          assert.equal(result.statusCode, 201);
          assert.match(String(body.key), /^ghk_/);
          assert.equal(body.keyHash, undefined, "the hash is never shown");
        } else {
          assert.equal(result.statusCode, 200);
          assert.ok(Array.isArray(body.keys));
        }
      } else if (functionName === "adminCache") {
        // The sample purges the tag price:p-1: that price's entries of GET /v1/prices/{id} (none in
        // a fresh store; a running local stack's store may hold one).
        assert.equal(result.statusCode, 200, String(result.body));
        const purged = JSON.parse(String(result.body)) as {
          deleted: Record<string, number>;
          total: number;
          memory: string;
        };
        assert.deepEqual(Object.keys(purged.deleted), ["GET /v1/prices/{id}"]);
        assert.equal(purged.total, purged.deleted["GET /v1/prices/{id}"]);
        assert.match(String(purged.memory), /^Deleted from the shared cache table/);
      } else if (functionName === "catalog") {
        // Invoked as the gateway's lambda upstream invokes it: the identity arrives as headers.
        assert.equal(result.statusCode, 200, String(result.body));
        const product = JSON.parse(String(result.body)) as Record<string, unknown>;
        assert.deepEqual([product.id, product.servedBy, product.caller], ["p-1", "lambda", "key:local-demo"]);
      } else if (functionName === "usage") {
        // The seeded key on the free plan, with nothing used yet in this invocation's own store.
        assert.equal(result.statusCode, 200, String(result.body));
        const usage = JSON.parse(String(result.body)) as Record<string, unknown>;
        assert.equal(usage.plan, "free");
        assert.equal((usage.quota as { limit: number }).limit, 10_000);
      } else if (functionName === "rooms") {
        // The bridge publishes to the sample room: stored, and sent to no one (no socket is open).
        assert.equal(result.statusCode, 201, String(result.body));
        const published = JSON.parse(String(result.body)) as Record<string, unknown>;
        assert.deepEqual(
          [published.type, published.room, published.from, published.recipients],
          ["message", "lobby", "key:local-demo", 0],
        );
        assert.match(String(published.messageId), /^[0-9A-HJKMNP-TV-Z]{26}$/);
      } else if (functionName === "whoami") {
        assert.equal(result.statusCode, 200);
        assert.equal((JSON.parse(String(result.body)) as { principal: string }).principal, "key:local-demo");
      } else if (functionName === "health") {
        assert.equal(result.statusCode, 200);
        assert.match(headers["content-type"] ?? "", /^application\/json/);
        const body = JSON.parse(String(result.body)) as Record<string, unknown>;
        assert.equal(body.status, "ok");
        assert.equal(body.stage, "local");
      } else if (functionName === "openapi") {
        assert.equal(result.statusCode, 200);
        assert.match(headers.etag ?? "", /^"[A-Za-z0-9_-]{43}"$/);
        assert.equal((JSON.parse(String(result.body)) as { openapi: string }).openapi, "3.1.0");
      } else if (functionName === "wsConnect" || functionName === "wsDisconnect") {
        assert.equal(result.statusCode, 200);
        assert.equal(result.body, undefined);
      } else {
        // Message routes answer with a frame: a type, a unique id and a timestamp.
        const frame = JSON.parse(String(result.body)) as Record<string, unknown>;
        assert.equal(typeof frame.type, "string");
        assert.match(String(frame.id), /^[0-9a-f-]{36}$/);
        assert.ok(!Number.isNaN(Date.parse(String(frame.at))));
        // The chat sample sends from a connection this invocation's store has never seen.
        const expected = { wsPing: "pong", wsDefault: "error", wsChat: "error" }[functionName];
        assert.equal(frame.type, expected, String(result.body));
        if (functionName === "wsChat") assert.equal((frame.error as { code: string }).code, "gone");
      }
    });
  }

  it("wsChat on a deployed stage (dev): its environment resolves and the handler runs", async () => {
    // Fake credentials and a DynamoDB endpoint where nothing listens, so no call can reach an AWS
    // account: the handler answers the sample with a generic 500. What matters is that `invoke
    // local` got that far (no Fn::Sub it cannot resolve).
    const { code, stdout, stderr } = await serverless(
      ["invoke", "local", "--stage", "dev", "-f", "wsChat", "-p", "events/wsChat.json"],
      {
        AWS_ACCESS_KEY_ID: "local",
        AWS_SECRET_ACCESS_KEY: "local",
        AWS_PROFILE: "",
        AWS_ENDPOINT_URL_DYNAMODB: "http://127.0.0.1:9",
      },
    );
    assert.doesNotMatch(`${stdout}${stderr}`, /Unsupported environment variable format|Could not resolve/);
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.equal(typeof resultOf(stdout).statusCode, "number");
  });
});
