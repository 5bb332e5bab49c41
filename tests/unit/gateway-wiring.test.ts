import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadGateway, routeWorstCaseMs } from "#shared/config/gateway.ts";
import { FANOUT_KINDS } from "#shared/ws/fanout.ts";
import { CHAT_ACTIONS } from "#shared/ws/protocol.ts";
import definition from "../../gateway.config.ts";
import GatewayWiring, {
  CACHE_ACCESS,
  CACHE_ADMIN_FUNCTION,
  CACHE_PURGE,
  gatewayWiring,
  httpEvents,
  websocketEvents,
} from "../../plugins/gateway-wiring.mjs";

const gateway = loadGateway(definition, "prod");
/** What the plugin's load() gives besides the config: for the dashboard and alarms. */
const OBSERVABILITY = {
  fanoutKinds: FANOUT_KINDS,
  namespace: "Gatehouse",
  worstCaseMs: (route: Parameters<typeof routeWorstCaseMs>[1]) => routeWorstCaseMs(gateway, route),
};
const FUNCTIONS = [
  "health",
  "openapi",
  "whoami",
  "gateway",
  "usage",
  "adminKeys",
  "adminCache",
  "rooms",
  "wsConnect",
  "wsDisconnect",
  "wsDefault",
  "wsPing",
  "wsChat",
];
const functions = () => Object.fromEntries(FUNCTIONS.map((key) => [key, { events: [] as unknown[] }]));
const logicalId = (key: string) => `${key[0]?.toUpperCase()}${key.slice(1)}LambdaFunction`;

describe("the wiring plugins/gateway-wiring.mjs generates from gateway.config.ts", () => {
  it("gives every config route one httpApi event, on its handler or the gateway, behind its authorizer", () => {
    const events = httpEvents(gateway);
    const cachedGets = Object.keys(gateway.routes).filter(
      (key) => key.startsWith("GET ") && gateway.routes[key]?.cache,
    );
    assert.ok(cachedGets.length > 0, "the config caches GET routes");
    assert.equal(events.length, Object.keys(gateway.routes).length + cachedGets.length + 1);
    // A cached GET route's HEAD beside it: same function and authorizer (API Gateway matches methods exactly).
    assert.deepEqual(
      events.find((event) => event.key === "HEAD /v1/prices/{id}"),
      {
        key: "HEAD /v1/prices/{id}",
        functionKey: "gateway",
        event: {
          httpApi: { method: "HEAD", path: "/v1/prices/{id}", authorizer: { name: "apiKeyAuthorizer" } },
        },
      },
    );
    assert.equal(
      events.find((event) => event.key === "HEAD /v1/users"),
      undefined,
      "not for an uncached GET",
    );
    assert.deepEqual(events.at(-1), { key: "$default", functionKey: "gateway", event: { httpApi: "*" } });
    assert.deepEqual(
      events.find((event) => event.key === "GET /admin/usage"),
      {
        key: "GET /admin/usage",
        functionKey: "usage",
        event: { httpApi: { method: "GET", path: "/admin/usage", authorizer: { name: "jwtAuthorizer" } } },
      },
    );
    assert.deepEqual(events.find((event) => event.key === "ANY /v1/echo/{rest+}")?.event, {
      httpApi: { method: "*", path: "/v1/echo/{rest+}", authorizer: { name: "apiKeyAuthorizer" } },
    });
    // The generated preflight: public, on the gateway.
    assert.deepEqual(
      events.find((event) => event.key === "OPTIONS /v1/echo/{rest+}"),
      {
        key: "OPTIONS /v1/echo/{rest+}",
        functionKey: "gateway",
        event: { httpApi: { method: "OPTIONS", path: "/v1/echo/{rest+}" } },
      },
    );
  });

  it("routes $connect through wsAuthorizer only when the config's connect auth is not public", () => {
    const authorized = websocketEvents(gateway, CHAT_ACTIONS).find((event) => event.key === "$connect");
    assert.deepEqual(authorized?.event, {
      websocket: {
        route: "$connect",
        authorizer: { name: "wsAuthorizer", identitySource: ["context.connectionId"] },
      },
    });
    const open = { ...gateway, websocket: { ...gateway.websocket, connect: { auth: "public" as const } } };
    const publicConnect = websocketEvents(open, CHAT_ACTIONS).find((event) => event.key === "$connect");
    assert.deepEqual(publicConnect?.event, { websocket: { route: "$connect" } });
  });

  it("grants the gateway lambda:InvokeFunction on each lambda upstream's function (key or ARN)", () => {
    const arn = "arn:aws:lambda:us-east-1:123456789012:function:elsewhere";
    const config = {
      ...gateway,
      upstreams: {
        ...gateway.upstreams,
        remote: { kind: "lambda", function: arn, timeoutMs: 1_000, retries: 0 },
      },
    };
    const { problems, invoke } = gatewayWiring({
      gateway: config,
      chatActions: CHAT_ACTIONS,
      functions: functions(),
      logicalId,
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(invoke, [{ "Fn::GetAtt": ["CatalogLambdaFunction", "Arn"] }, arn]);
  });

  it("declares the function of a Lambda upstream that gives its code, with the logs-only role", () => {
    const { problems, declares, invoke } = gatewayWiring({
      gateway,
      chatActions: CHAT_ACTIONS,
      functions: functions(),
      logicalId,
    });
    assert.deepEqual(problems, []);
    assert.deepEqual(declares, {
      catalog: {
        handler: "handlers/services/catalog.handler",
        description: "The catalog upstream, invoked by the gateway (declared by gateway.config.ts)",
        role: "HttpSystemRole",
        events: [],
      },
    });
    assert.deepEqual(invoke, [{ "Fn::GetAtt": ["CatalogLambdaFunction", "Arn"] }]);
  });

  it("refuses a function both declared by an upstream's code and in serverless.yml", () => {
    const { problems } = gatewayWiring({
      gateway,
      chatActions: CHAT_ACTIONS,
      functions: { ...functions(), catalog: { events: [] } },
      logicalId,
    });
    assert.deepEqual(problems, [
      'upstreams.catalog.code: function "catalog" is also declared in serverless.yml; remove code from the upstream, or the function from serverless.yml',
    ]);
  });

  it("names the field when the config names a function serverless.yml does not define", () => {
    const config = {
      ...gateway,
      upstreams: {
        ...gateway.upstreams,
        inventory: { kind: "lambda", function: "inventory", timeoutMs: 1_000, retries: 0 },
      },
      routes: { ...gateway.routes, "GET /status": { auth: "public" as const, handler: "status" } },
    };
    const { problems } = gatewayWiring({
      gateway: config,
      chatActions: CHAT_ACTIONS,
      functions: functions(),
      logicalId,
    });
    assert.equal(problems.length, 2);
    assert.match(
      problems[0] ?? "",
      /^routes\["GET \/status"\]\.handler: "status" is not a function of serverless\.yml/,
    );
    assert.match(
      problems[1] ?? "",
      /^upstreams\.inventory\.function: "inventory" is not a function of serverless\.yml .*add it under functions:/,
    );
  });

  it("refuses a hand-written httpApi or websocket event: the config is the only place for a route", () => {
    const withHandWritten = functions();
    withHandWritten.health = { events: [{ httpApi: { method: "GET", path: "/health" } }] };
    const { problems } = gatewayWiring({
      gateway,
      chatActions: CHAT_ACTIONS,
      functions: withHandWritten,
      logicalId,
    });
    assert.deepEqual(problems, [
      "functions.health.events: a hand-written httpApi event; routes are generated from gateway.config.ts (plugins/gateway-wiring.mjs), so declare the route there and remove the event",
    ]);
  });

  it("lists the functions serving limited routes, for their usage table and counting grant", () => {
    const { limited } = gatewayWiring({
      gateway,
      chatActions: CHAT_ACTIONS,
      functions: functions(),
      logicalId,
    });
    assert.deepEqual(limited.sort(), ["gateway", "rooms"]);
  });

  it("says whether a route caches, so the gateway function gets the cache table; not when the stage turns caching off", () => {
    const wiring = (config: typeof gateway) =>
      gatewayWiring({ gateway: config, chatActions: CHAT_ACTIONS, functions: functions(), logicalId });
    assert.equal(wiring(gateway).caches, true, "gateway.config.ts caches demo routes");
    assert.equal(wiring(withoutCache()).caches, false);
    const cached = withCachedRoute();
    assert.equal(wiring(cached).caches, true);
    assert.equal(wiring({ ...cached, cache: { ...cached.cache, enabled: false } }).caches, false);
  });

  it("gives the gateway function CACHE_TABLE and Get/Put/DeleteItem on CacheTable when a route caches", async () => {
    const { serverless, service, role } = fakeServerless();
    const plugin = new GatewayWiring(serverless, {});
    plugin.loaded = Promise.resolve({
      gateway: withCachedRoute(),
      chatActions: CHAT_ACTIONS,
      ...OBSERVABILITY,
    });
    await plugin.wire();
    assert.equal(service.functions.gateway?.environment?.CACHE_TABLE, "gatehouse-prod-cache");
    assert.equal(service.functions.rooms?.environment?.CACHE_TABLE, undefined, "only the gateway function");
    const cachePolicies = role.Properties.Policies.filter((policy) => policy.PolicyName === "response-cache");
    assert.deepEqual(
      cachePolicies.map((policy) => policy.PolicyDocument.Statement),
      [[CACHE_ACCESS]],
    );
    assert.deepEqual(CACHE_ACCESS.Action, ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"]);
    assert.deepEqual(CACHE_ACCESS.Resource, { "Fn::GetAtt": ["CacheTable", "Arn"] });
  });

  it("adds the purge's Query on index byRoute, BatchWriteItem and UpdateItem only when a write route invalidates", async () => {
    const policyOf = async (config: typeof gateway) => {
      const { serverless, role } = fakeServerless();
      const plugin = new GatewayWiring(serverless, {});
      plugin.loaded = Promise.resolve({ gateway: config, chatActions: CHAT_ACTIONS, ...OBSERVABILITY });
      await plugin.wire();
      return role.Properties.Policies.find((policy) => policy.PolicyName === "response-cache")?.PolicyDocument
        .Statement;
    };
    assert.deepEqual(await policyOf(withCachedRoute()), [CACHE_ACCESS]);
    const cached = withCachedRoute();
    const target = Object.keys(cached.routes).find((key) => cached.routes[key]?.cache) as string;
    const writing = {
      ...cached,
      routes: { ...cached.routes, "PUT /cached": { auth: "public", cache: { invalidates: [target] } } },
    } as unknown as typeof gateway;
    assert.deepEqual(await policyOf(writing), [CACHE_ACCESS, ...CACHE_PURGE]);
    assert.deepEqual(
      CACHE_PURGE.map((statement) => [statement.Action, statement.Resource]),
      [
        // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub, not a JS template
        [["dynamodb:Query"], { "Fn::Sub": "${CacheTable.Arn}/index/byRoute" }],
        [["dynamodb:BatchWriteItem", "dynamodb:UpdateItem"], { "Fn::GetAtt": ["CacheTable", "Arn"] }],
      ],
    );
  });

  it("gives the cache admin function, and only it, CACHE_TABLE and the purge's Query, BatchWriteItem and UpdateItem", async () => {
    // Prepare: gateway.config.ts's purge route names the function, which has a role of its own.
    assert.equal(gateway.routes["DELETE /admin/cache"]?.handler, CACHE_ADMIN_FUNCTION);
    const { serverless, service, role } = fakeServerless();
    const adminRole = { Type: "AWS::IAM::Role", Properties: { Policies: [] as Policy[] } };
    Object.assign(service.resources.Resources, { AdminCacheRole: adminRole });
    service.functions[CACHE_ADMIN_FUNCTION] = { events: [], role: "AdminCacheRole", environment: undefined };
    const plugin = new GatewayWiring(serverless, {});
    plugin.loaded = Promise.resolve({
      gateway: withCacheAdmin(withoutCache()),
      chatActions: CHAT_ACTIONS,
      ...OBSERVABILITY,
    });

    // Act
    await plugin.wire();

    // Assess
    assert.equal(CACHE_ADMIN_FUNCTION, "adminCache");
    assert.equal(service.functions.adminCache?.environment?.CACHE_TABLE, "gatehouse-prod-cache");
    assert.deepEqual(
      adminRole.Properties.Policies.map((policy) => [policy.PolicyName, policy.PolicyDocument.Statement]),
      [["cache-purge", CACHE_PURGE]],
    );
    assert.deepEqual(
      role.Properties.Policies.filter((policy) => /cache/.test(policy.PolicyName)),
      [],
      "no cached route: the gateway gets nothing on the cache table",
    );
    assert.equal(service.functions.gateway?.environment?.CACHE_TABLE, undefined);
  });

  it("wires the cache admin function on a stage with caching off, and refuses it without a cache table", async () => {
    const off = withCacheAdmin({ ...gateway, cache: { ...gateway.cache, enabled: false } });
    assert.equal(
      gatewayWiring({ gateway: off, chatActions: CHAT_ACTIONS, functions: functions(), logicalId })
        .cacheAdmin,
      true,
    );
    const { serverless, service } = fakeServerless();
    service.functions[CACHE_ADMIN_FUNCTION] = { events: [], role: "SharedRole", environment: undefined };
    delete service.custom.tables.cache;
    const plugin = new GatewayWiring(serverless, {});
    plugin.loaded = Promise.resolve({ gateway: off, chatActions: CHAT_ACTIONS, ...OBSERVABILITY });
    await assert.rejects(
      plugin.wire(),
      /custom\.tables\.cache: the cache table's name, needed by the adminCache function/,
    );
  });

  it("refuses a cached route when serverless.yml names no cache table", async () => {
    const { serverless, service } = fakeServerless();
    delete service.custom.tables.cache;
    const plugin = new GatewayWiring(serverless, {});
    plugin.loaded = Promise.resolve({
      gateway: withCachedRoute(),
      chatActions: CHAT_ACTIONS,
      ...OBSERVABILITY,
    });
    await assert.rejects(plugin.wire(), /custom\.tables\.cache: the cache table's name/);
  });
});

/** A config whose cache purge route is answered by the cache admin function. */
function withCacheAdmin(config: typeof gateway): typeof gateway {
  return {
    ...config,
    routes: {
      ...config.routes,
      "DELETE /admin/cache": {
        kind: "handler",
        auth: { jwt: { scopes: ["gatehouse:admin"] } },
        ipRules: { allow: [], deny: [] },
        handler: "adminCache",
      },
    },
  } as typeof gateway;
}

/** The project's config with no route cached and nothing invalidated. */
function withoutCache(): typeof gateway {
  const routes = Object.fromEntries(
    Object.entries(gateway.routes).map(([key, { cache: _cache, ...route }]) => [key, route]),
  );
  return { ...gateway, routes } as typeof gateway;
}

/** The project's config with exactly one cached route, and no write route invalidating it. */
function withCachedRoute(): typeof gateway {
  const plain = withoutCache();
  const [key, route] = Object.entries(plain.routes).find(
    ([routeKey, r]) => routeKey.startsWith("GET ") && r.handler === undefined,
  ) ?? [undefined, undefined];
  assert.ok(key && route, "the prod config has a GET route on the gateway function");
  return {
    ...plain,
    routes: { ...plain.routes, [key]: { ...route, cache: { ttlSeconds: 30 } } },
  } as typeof gateway;
}

interface Policy {
  PolicyName: string;
  PolicyDocument: { Statement: unknown[] };
}

/** Just enough of the Serverless Framework for the plugin's `wire`: functions, one role, the table names. */
function fakeServerless() {
  const role = { Type: "AWS::IAM::Role", Properties: { Policies: [] as Policy[] } };
  const service = {
    functions: Object.fromEntries(
      FUNCTIONS.map((key) => [
        key,
        {
          events: [] as unknown[],
          role: "SharedRole",
          environment: undefined as Record<string, unknown> | undefined,
        },
      ]),
    ),
    resources: { Resources: { SharedRole: role } },
    custom: {
      tables: { usage: "gatehouse-prod-usage", cache: "gatehouse-prod-cache" } as Record<string, string>,
    },
    provider: { stage: "prod" },
    setFunctionNames: () => {},
  };
  const serverless = {
    service,
    serviceDir: process.cwd(),
    getProvider: () => ({ naming: { getLambdaLogicalId: logicalId } }),
    classes: { Error },
  };
  return { serverless, service, role };
}
