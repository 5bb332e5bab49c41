import assert from "node:assert/strict";
import { randomBytes, randomInt } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { crc32 } from "node:zlib";
import fc from "fast-check";
import { type ApiKeyStore, apiKeyStore, createApiKeyAuthenticator } from "#shared/auth/api-keys.ts";
import { createIdentityCore, type Decision } from "#shared/auth/identity.ts";
import { defineGateway, type GatewayConfigInput, loadGateway } from "#shared/config/gateway.ts";
import { HttpError } from "#shared/errors.ts";
import { type CallCounter, type CallCounts, countDynamoCalls } from "../../bench/support/dynamodb-calls.ts";
import exampleGateway from "../../gateway.config.ts";
import { apiKeysConfig, putLegacyKey } from "../support/api-keys.ts";
import { startTestStore, type TestStore } from "../support/dynamo.ts";

/** The key format as documented (docs/api-keys.md), written out here rather than imported. */
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_KEYS = 10_000;

const randomBase62 = (length: number) => Array.from({ length }, () => BASE62[randomInt(62)]).join("");
/** The 6-character checksum as documented: the CRC-32 of everything before it, in base62. */
function documentedChecksum(payload: string): string {
  let value = crc32(payload);
  let digits = "";
  for (let i = 0; i < 6; i++, value = Math.floor(value / 62)) digits = BASE62[value % 62] + digits;
  return digits;
}
/** The distinct statuses the keys end in, authenticated one after another. */
async function statusesOf(
  authenticate: (key: string) => Promise<unknown>,
  keys: string[],
): Promise<Set<number>> {
  const statuses = new Set<number>();
  for (const key of keys) statuses.add(await statusOf(authenticate, key));
  return statuses;
}
const totalCalls = (counts: CallCounts) => Object.values(counts.byKind).reduce((sum, n) => sum + n, 0);
/** The HTTP status an authentication ends in: 200 if the key is admitted. */
async function statusOf(authenticate: (key: string) => Promise<unknown>, key: string): Promise<number> {
  try {
    await authenticate(key);
    return 200;
  } catch (error) {
    if (error instanceof HttpError) return error.statusCode;
    throw error;
  }
}

describe("API key lookups against dynalite, DynamoDB calls counted on the wire", () => {
  let store: TestStore;
  let keys: ApiKeyStore;
  let calls: CallCounter;

  /** Runs `act`: its result, and the DynamoDB calls (of any kind) it made. */
  async function counted<T>(act: () => Promise<T>): Promise<{ value: T; calls: number }> {
    const before = calls.snapshot();
    const value = await act();
    return { value, calls: totalCalls(calls.since(before)) };
  }

  before(async () => {
    store = await startTestStore();
    keys = apiKeyStore({ client: store.client, tableName: store.tables.ApiKeysTable as string });
    calls = countDynamoCalls(store.client);
  });
  after(() => store.stop());

  describe("keys refused on their text alone", () => {
    it("issues ghk_ + 43 base62 characters + the base62 CRC-32 of the rest, recorded as format ghk, which authenticates with one read", async () => {
      // Prepare
      const { key, record: created } = await keys.create({ owner: "format", plan: "free" });
      const authenticate = createApiKeyAuthenticator({ store: keys, ...apiKeysConfig() });

      // Act
      const { value: record, calls: reads } = await counted(() => authenticate(key));

      // Assess
      assert.match(key, /^ghk_[0-9A-Za-z]{43}[0-9A-Za-z]{6}$/);
      assert.equal(key.slice(47), documentedChecksum(key.slice(0, 47)));
      assert.equal(created.format, "ghk");
      assert.equal(record.owner, "format");
      assert.equal(reads, 1);
    });

    it(`${RANDOM_KEYS.toLocaleString("en")} random ghk_ keys with a wrong checksum make no DynamoDB call; with the right one, each is read`, async () => {
      // Prepare
      const authenticate = createApiKeyAuthenticator({ store: keys, ...apiKeysConfig() });
      const payloads = Array.from({ length: RANDOM_KEYS }, () => `ghk_${randomBase62(43)}`);
      const wrong = payloads
        .map((payload) => `${payload}${randomBase62(6)}`)
        .filter((key) => key.slice(47) !== documentedChecksum(key.slice(0, 47))); // 1 in 2^32 is right by chance
      const right = payloads.slice(0, 10).map((payload) => `${payload}${documentedChecksum(payload)}`);

      // Act
      const { value: wrongStatuses, calls: wrongCalls } = await counted(() =>
        statusesOf(authenticate, wrong),
      );
      const { value: rightStatuses, calls: rightCalls } = await counted(() =>
        statusesOf(authenticate, right),
      );

      // Assess
      assert.ok(wrong.length > RANDOM_KEYS - 5);
      assert.deepEqual([...wrongStatuses], [401]);
      assert.equal(wrongCalls, 0);
      assert.deepEqual([...rightStatuses], [401], "well-formed, but never issued");
      assert.equal(rightCalls, right.length);
    });

    it(`${RANDOM_KEYS.toLocaleString("en")} random old-format gh_ keys make no DynamoDB call under legacyKeys: refuse`, async () => {
      // Prepare
      const authenticate = createApiKeyAuthenticator({
        store: keys,
        ...apiKeysConfig({ legacyKeys: "refuse" }),
      });
      const random = Array.from({ length: RANDOM_KEYS }, () => `gh_${randomBytes(32).toString("base64url")}`);

      // Act
      const { value: statuses, calls: made } = await counted(() => statusesOf(authenticate, random));

      // Assess
      assert.deepEqual([...statuses], [401]);
      assert.equal(made, 0);
    });

    it(`${RANDOM_KEYS.toLocaleString("en")} junk strings make no DynamoDB call under legacyKeys: refuse`, async () => {
      // Prepare
      const authenticate = createApiKeyAuthenticator({
        store: keys,
        ...apiKeysConfig({ legacyKeys: "refuse" }),
      });
      const junk = fc.oneof(
        fc.string({ maxLength: 120 }),
        fc.string({ unit: "binary", maxLength: 120 }),
        // What the old pattern let through to a read: `gh_` + 20 to 100 of [A-Za-z0-9_-].
        fc.stringMatching(/^gh_[A-Za-z0-9_-]{20,100}$/),
        // Nearly the new format: a wrong length, or a character outside base62.
        fc.stringMatching(/^ghk_[0-9A-Za-z]{0,48}$/),
        fc.stringMatching(/^ghk_[0-9A-Za-z]{50,60}$/),
        fc.stringMatching(/^ghk_[0-9A-Za-z_-]{49}$/).filter((key) => /[_-]/.test(key.slice(4))),
      );
      const statuses = new Set<number>();

      // Act
      const { calls: made } = await counted(() =>
        fc.assert(
          fc.asyncProperty(junk, async (key) => {
            statuses.add(await statusOf(authenticate, key));
          }),
          { numRuns: RANDOM_KEYS },
        ),
      );

      // Assess
      assert.deepEqual([...statuses], [401]);
      assert.equal(made, 0);
    });

    it("an issued key with any one character changed is refused; only the variant in the old format (gh__…) is read, and only under accept", async () => {
      // Prepare
      const { key } = await keys.create({ owner: "typo", plan: "free" });
      const refusing = createApiKeyAuthenticator({ store: keys, ...apiKeysConfig({ legacyKeys: "refuse" }) });
      const accepting = createApiKeyAuthenticator({
        store: keys,
        ...apiKeysConfig({ legacyKeys: "accept" }),
      });
      const changed: string[] = [];
      for (let at = 0; at < key.length; at++) {
        for (const char of `${BASE62}_-.`) {
          if (char !== key[at]) changed.push(`${key.slice(0, at)}${char}${key.slice(at + 1)}`);
        }
      }
      const readUnderAccept: string[] = [];

      // Act
      const { value: statuses, calls: readsUnderRefuse } = await counted(() => statusesOf(refusing, changed));
      for (const variant of changed) {
        const { value: status, calls } = await counted(() => statusOf(accepting, variant));
        if (calls > 0) readUnderAccept.push(variant);
        statuses.add(status);
      }

      // Assess
      assert.equal(changed.length, key.length * 64);
      assert.deepEqual([...statuses], [401]);
      assert.equal(readsUnderRefuse, 0);
      assert.deepEqual(readUnderAccept, [`gh_${key.slice(3)}`.replace(/^gh_k/, "gh__")]);
    });

    it("legacyKeys: accept admits an old-format key with one read; refuse turns it away with none", async () => {
      // Prepare
      const legacy = `gh_${randomBytes(32).toString("base64url")}`;
      await putLegacyKey(store, legacy, "old-client");
      const accepting = createApiKeyAuthenticator({
        store: keys,
        ...apiKeysConfig({ legacyKeys: "accept" }),
      });
      const refusing = createApiKeyAuthenticator({ store: keys, ...apiKeysConfig({ legacyKeys: "refuse" }) });

      // Act
      const { value: admitted, calls: acceptReads } = await counted(() => accepting(legacy));
      const { value: refused, calls: refuseReads } = await counted(() => statusOf(refusing, legacy));

      // Assess
      assert.equal(admitted.owner, "old-client");
      assert.equal(acceptReads, 1);
      assert.equal(refused, 401);
      assert.equal(refuseReads, 0);
    });

    it(`with the example gateway.config.ts (stage local), ${RANDOM_KEYS.toLocaleString("en")} random keys of any shape make no DynamoDB call`, async () => {
      // Prepare
      const authenticate = createApiKeyAuthenticator({
        store: keys,
        ...loadGateway(exampleGateway, "local").auth.apiKeys,
      });
      const anyShape = fc.oneof(
        fc
          .stringMatching(/^ghk_[0-9A-Za-z]{49}$/)
          .filter((key) => key.slice(47) !== documentedChecksum(key.slice(0, 47))),
        fc.stringMatching(/^gh_[A-Za-z0-9_-]{20,100}$/),
        fc.string({ maxLength: 120 }),
      );
      const statuses = new Set<number>();

      // Act
      const { calls: made } = await counted(() =>
        fc.assert(
          fc.asyncProperty(anyShape, async (key) => {
            statuses.add(await statusOf(authenticate, key));
          }),
          { numRuns: RANDOM_KEYS },
        ),
      );

      // Assess
      assert.deepEqual([...statuses], [401]);
      assert.equal(made, 0);
    });

    it('legacyKeys defaults to "accept", so an upgrade keeps old keys working', () => {
      assert.equal(apiKeysConfig().legacyKeys, "accept");
    });
  });

  describe("the per-source budget of lookups that find no key", () => {
    const KEY_ROUTE = "GET /key";
    /** The identity core as the authorizer runtime builds it, on this store, for one API-key route. */
    function identityCore(apiKeys: NonNullable<GatewayConfigInput["auth"]["apiKeys"]>) {
      const gateway = loadGateway(
        defineGateway(() => ({
          auth: { apiKeys },
          routes: { [KEY_ROUTE]: { auth: { apiKey: {} }, handler: "whoami" } },
        })),
        "test",
      );
      const authorize = createIdentityCore({
        config: gateway,
        verifyToken: async () => {
          throw new Error("no JWT in these tests");
        },
        authenticateApiKey: createApiKeyAuthenticator({ store: keys, ...gateway.auth.apiKeys }),
      });
      return { authorize, budget: gateway.auth.apiKeys.unknownKeys.perIp };
    }
    const decisionStatus = (decision: Decision) => (decision.allow ? 200 : decision.status);
    const randomLegacyKey = () => `gh_${randomBytes(32).toString("base64url")}`;

    it("N + k unknown old-format keys from one IP make exactly N reads; another IP is unaffected", async () => {
      // Prepare
      const { authorize, budget } = identityCore({ legacyKeys: "accept" });
      const { key: valid } = await keys.create({ owner: "neighbour", plan: "free" });
      const fromAttacker = (key: string) =>
        authorize({ routeKey: KEY_ROUTE, sourceIp: "198.51.100.7", credentials: { apiKey: key } });
      const fromOther = (key: string) =>
        authorize({ routeKey: KEY_ROUTE, sourceIp: "203.0.113.20", credentials: { apiKey: key } });

      // Act
      const attack = await counted(async () => {
        const statuses = new Set<number>();
        for (let i = 0; i < budget + 30; i++)
          statuses.add(decisionStatus(await fromAttacker(randomLegacyKey())));
        return statuses;
      });
      const other = await counted(async () => [
        decisionStatus(await fromOther(randomLegacyKey())),
        decisionStatus(await fromOther(valid)),
      ]);

      // Assess
      assert.equal(budget, 20, "the default budget");
      assert.equal(attack.calls, budget);
      assert.deepEqual([...attack.value], [401]);
      assert.deepEqual(other.value, [401, 200]);
      assert.equal(other.calls, 2);
    });

    it("counts ghk_ keys with a right checksum too (anyone can compute a CRC-32)", async () => {
      // Prepare
      const apiKeys = apiKeysConfig({ unknownKeys: { perIp: 5 } });
      const authenticate = createApiKeyAuthenticator({ store: keys, ...apiKeys });
      const forged = Array.from({ length: 12 }, () => {
        const payload = `ghk_${randomBase62(43)}`;
        return `${payload}${documentedChecksum(payload)}`;
      });

      // Act
      const { value: statuses, calls: made } = await counted(() =>
        statusesOf((key) => authenticate(key, "198.51.100.8"), forged),
      );

      // Assess
      assert.deepEqual([...statuses], [401]);
      assert.equal(made, 5);
    });

    it("unknown keys sent all at once from one IP make exactly the budget of reads", async () => {
      // Prepare
      const authenticate = createApiKeyAuthenticator({
        store: keys,
        ...apiKeysConfig({ legacyKeys: "accept", unknownKeys: { perIp: 10 } }),
      });
      const burst = Array.from({ length: 50 }, randomLegacyKey);

      // Act
      const { value: statuses, calls: made } = await counted(() =>
        Promise.all(burst.map((key) => statusOf((k) => authenticate(k, "198.51.100.9"), key))),
      );

      // Assess
      assert.deepEqual([...new Set(statuses)], [401]);
      assert.equal(made, 10);
    });

    it("past its budget, an IP keeps the keys this container has found (re-read each cacheSeconds); a key new to the container waits for the window's end", async () => {
      // Prepare
      let clock = Date.parse("2026-06-01T00:00:00Z");
      const authenticate = createApiKeyAuthenticator({
        store: keys,
        ...apiKeysConfig({
          legacyKeys: "accept",
          cacheSeconds: 10,
          unknownKeys: { perIp: 3, windowSeconds: 60 },
        }),
        now: () => clock,
      });
      const blocked = "198.51.100.10";
      const { key: inUse } = await keys.create({ owner: "in-use", plan: "free" });
      const { key: unseen } = await keys.create({ owner: "unseen", plan: "free" });
      await authenticate(inUse, blocked);
      for (let i = 0; i < 3; i++) await statusOf((key) => authenticate(key, blocked), randomLegacyKey());
      clock += 15_000; // past cacheSeconds: the key in use needs a fresh read

      // Act
      const inUseAfterCache = await counted(() => statusOf((key) => authenticate(key, blocked), inUse));
      const unseenInWindow = await counted(() => statusOf((key) => authenticate(key, blocked), unseen));
      clock += 45_001; // the window (60 s from the first lookup) has ended
      const unseenAfterWindow = await counted(() => statusOf((key) => authenticate(key, blocked), unseen));

      // Assess
      assert.deepEqual([inUseAfterCache.value, inUseAfterCache.calls], [200, 1]);
      assert.deepEqual([unseenInWindow.value, unseenInWindow.calls], [401, 0]);
      assert.deepEqual([unseenAfterWindow.value, unseenAfterWindow.calls], [200, 1]);
    });

    it("defaults to 20 unknown keys per IP per 60 s", () => {
      assert.deepEqual(apiKeysConfig().unknownKeys, { perIp: 20, windowSeconds: 60 });
    });
  });
});
