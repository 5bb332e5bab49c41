import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { loadGateway } from "#shared/config/gateway.ts";
import { ACTIONS, CHAT_ACTIONS } from "#shared/ws/protocol.ts";
import definition from "../../gateway.config.ts";
import { eventFiles } from "../support/events.ts";
import { type ResolvedService, resolvedService } from "../support/serverless.ts";

// serverless.yml as osls resolves it for prod, with the events and grants plugins/gateway-wiring.mjs
// generates from gateway.config.ts (`serverless print` shows them): the deploy-time facts the issues promise.
type Resources = Record<string, { Properties: Record<string, unknown> }>;

/**
 * What a role may do, by resource: a table's logical id (with `/index/<name>` for an index), or
 * `@connections` for the WebSocket management API. Logs and tracing, common to every role, are left out.
 */
function grants(resources: Resources, roleName: string): Record<string, string[]> {
  const policies = (resources[roleName]?.Properties.Policies ?? []) as {
    PolicyDocument: { Statement: { Action: string[]; Resource: unknown }[] };
  }[];
  const found: Record<string, string[]> = {};
  for (const statement of policies.flatMap((policy) => policy.PolicyDocument.Statement)) {
    if (statement.Action.every((action) => /^(logs|xray):/.test(action))) continue;
    for (const resource of [statement.Resource].flat()) {
      const text = JSON.stringify(resource);
      const key = text.includes("@connections")
        ? "@connections"
        : (text.match(/"Fn::GetAtt":\["(\w+)","Arn"\]/)?.[1] ??
          text
            .match(/\$\{(\w+)\.Arn\}(\/index\/\w+)/)
            ?.slice(1, 3)
            .join("") ??
          text);
      found[key] = [...(found[key] ?? []), ...statement.Action];
    }
  }
  return found;
}

describe("serverless.yml (stage prod)", () => {
  let service: ResolvedService;
  before(async () => {
    service = await resolvedService("prod");
  });

  it("runs nodejs24.x on arm64 with tracing and log retention", () => {
    assert.equal(service.provider.runtime, "nodejs24.x");
    assert.equal(service.provider.architecture, "arm64");
    assert.equal(service.provider.tracing.lambda, true);
    assert.equal(service.provider.logRetentionInDays, 90);
  });

  it("sends every request no route matches to the gateway function (problem+json 404/405)", () => {
    const events = (service.functions.gateway?.events ?? []) as { httpApi?: unknown }[];
    assert.ok(events.some((event) => event.httpApi === "*"));
  });

  it("ends every function before API Gateway's 30 s integration limit", () => {
    for (const [name, fn] of Object.entries<Record<string, unknown>>(service.functions)) {
      const timeout = Number(fn.timeout ?? service.provider.timeout ?? 6);
      assert.ok(timeout < 29, `${name} timeout ${timeout}s`);
    }
  });

  it("routes WebSocket messages on body.action: a route per protocol action, chat actions on wsChat", () => {
    assert.equal(service.provider.websocketsApiRouteSelectionExpression, "$request.body.action");
    const routes = Object.entries<{ events?: { websocket?: { route: string } }[] }>(service.functions)
      .flatMap(([name, fn]) =>
        (fn.events ?? []).flatMap((event) => (event.websocket ? [`${event.websocket.route} → ${name}`] : [])),
      )
      .sort();
    assert.deepEqual(
      routes,
      [
        "$connect → wsConnect",
        "$default → wsDefault",
        "$disconnect → wsDisconnect",
        "ping → wsPing",
        ...CHAT_ACTIONS.map((action) => `${action} → wsChat`),
      ].sort(),
    );
    assert.deepEqual([...ACTIONS].sort(), ["ping", ...CHAT_ACTIONS].sort());
  });

  it("gives every function its own least-privilege role, with table access only where it is used", () => {
    const resources = service.resources.Resources as Record<string, { Properties: Record<string, unknown> }>;
    const dynamoActions = (roleName: string) => {
      const role = resources[roleName];
      assert.ok(role, `${roleName} is declared`);
      const policies = role.Properties.Policies as {
        PolicyDocument: { Statement: { Action: string[] }[] };
      }[];
      return policies
        .flatMap((policy) => policy.PolicyDocument.Statement)
        .flatMap((statement) => statement.Action)
        .filter((action) => action.startsWith("dynamodb:"));
    };
    // The framework's own functions keep their roles; a function a team adds (a Lambda upstream's
    // service, a system endpoint) needs a role of its own declared in resources, and no edit here.
    const FRAMEWORK_ROLES: Record<string, string> = {
      adminKeys: "AdminKeysRole",
      adminCache: "AdminCacheRole",
      catalog: "HttpSystemRole",
      gateway: "GatewayRole",
      health: "HttpSystemRole",
      openapi: "HttpSystemRole",
      usage: "UsageRole",
      httpAuthorizer: "AuthorizerRole",
      whoami: "HttpSystemRole",
      wsAuthorizer: "AuthorizerRole",
      wsConnect: "WsConnectRole",
      wsDisconnect: "WsDisconnectRole",
      wsDefault: "WsMessageRole",
      wsPing: "WsMessageRole",
      wsChat: "WsChatRole",
      rooms: "RoomsRole",
    };
    for (const [name, fn] of Object.entries<{ role?: string }>(service.functions)) {
      assert.ok(fn.role && resources[fn.role], `${name} names a role declared in resources: ${fn.role}`);
      if (name in FRAMEWORK_ROLES) assert.equal(fn.role, FRAMEWORK_ROLES[name], name);
    }
    for (const name of Object.keys(FRAMEWORK_ROLES))
      assert.ok(service.functions[name], `${name} is declared`);
    assert.deepEqual(dynamoActions("HttpSystemRole"), []);
    // The cached demo routes give the gateway the cache table (and the purge, for write routes
    // that invalidate); tests/unit/gateway-wiring.test.ts checks when each grant appears.
    assert.deepEqual(grants(resources, "GatewayRole"), {
      CacheTable: [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:UpdateItem",
      ],
      "CacheTable/index/byRoute": ["dynamodb:Query"],
      CatalogLambdaFunction: ["lambda:InvokeFunction"],
      UsageTable: ["dynamodb:UpdateItem", "dynamodb:GetItem"],
    });
    assert.deepEqual(dynamoActions("UsageRole"), [
      "dynamodb:GetItem",
      "dynamodb:Query",
      "dynamodb:BatchGetItem",
    ]);
    assert.deepEqual(dynamoActions("AuthorizerRole"), ["dynamodb:GetItem"]);
    assert.deepEqual(dynamoActions("AdminKeysRole"), [
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:Scan",
      "dynamodb:Query",
    ]);
    // The cache purge: the entries of a route from the byRoute index, deleted in batches; nothing else.
    assert.deepEqual(grants(resources, "AdminCacheRole"), {
      "CacheTable/index/byRoute": ["dynamodb:Query"],
      CacheTable: ["dynamodb:BatchWriteItem", "dynamodb:UpdateItem"],
    });
    assert.equal(
      (service.functions.adminCache as { environment?: Record<string, unknown> }).environment?.CACHE_TABLE,
      "gatehouse-prod-cache",
    );
    assert.deepEqual(grants(resources, "WsConnectRole"), {
      ConnectionsTable: ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem"],
      UsageTable: ["dynamodb:UpdateItem", "dynamodb:GetItem"],
    });
    assert.deepEqual(grants(resources, "WsDisconnectRole"), {
      ConnectionsTable: ["dynamodb:DeleteItem"],
      RoomMembersTable: ["dynamodb:BatchWriteItem"],
      UsageTable: ["dynamodb:UpdateItem"],
    });
    assert.deepEqual(dynamoActions("WsMessageRole"), []);
    // The chat and the bridge, table by table: no Scan, and no write to a table they only read.
    assert.deepEqual(grants(resources, "WsChatRole"), {
      ConnectionsTable: ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
      "ConnectionsTable/index/byPrincipal": ["dynamodb:Query"],
      RoomMembersTable: [
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
      ],
      MessagesTable: ["dynamodb:PutItem", "dynamodb:Query"],
      UsageTable: ["dynamodb:UpdateItem", "dynamodb:GetItem"],
      "@connections": ["execute-api:ManageConnections"],
    });
    assert.deepEqual(grants(resources, "RoomsRole"), {
      ConnectionsTable: ["dynamodb:DeleteItem"],
      RoomMembersTable: ["dynamodb:Query", "dynamodb:BatchWriteItem"],
      MessagesTable: ["dynamodb:PutItem", "dynamodb:Query"],
      UsageTable: ["dynamodb:UpdateItem", "dynamodb:GetItem"],
      "@connections": ["execute-api:ManageConnections"],
    });
  });

  it("gives every function that serves a limited route the usage table and the counting grants", () => {
    const gateway = loadGateway(definition, "prod");
    const resources = service.resources.Resources as Resources;
    const limitedRoutes = Object.entries(gateway.routes).filter(([, route]) => route.limit);
    assert.ok(limitedRoutes.length > 0);
    for (const [key] of limitedRoutes) {
      const [method, path] = key.split(" ");
      const [name, fn] = Object.entries<{
        role: string;
        environment?: Record<string, unknown>;
        events?: { httpApi?: { method: string; path: string } }[];
      }>(service.functions).find(([, f]) =>
        (f.events ?? []).some(
          (event) =>
            typeof event.httpApi === "object" &&
            (event.httpApi.method === "*" ? "ANY" : event.httpApi.method.toUpperCase()) === method &&
            event.httpApi.path === path,
        ),
      ) ?? [key, undefined];
      assert.ok(fn, `${key} is served by a function`);
      assert.ok(fn.environment?.USAGE_TABLE, `${name} (serving the limited ${key}) has USAGE_TABLE`);
      const usage = grants(resources, fn.role).UsageTable ?? [];
      assert.ok(
        usage.includes("dynamodb:UpdateItem") && usage.includes("dynamodb:GetItem"),
        `${name} (serving the limited ${key}) may count in the usage table: ${usage}`,
      );
    }
  });

  it("gives the gateway function the cache table and Get/Put/DeleteItem on it exactly when a route caches", () => {
    const gateway = loadGateway(definition, "prod");
    const resources = service.resources.Resources as Resources;
    const caches = gateway.cache.enabled && Object.values(gateway.routes).some((route) => route.cache);
    const fn = (service.functions as Record<string, { role: string; environment?: Record<string, unknown> }>)
      .gateway;
    assert.ok(fn);
    const roleGrants = grants(resources, fn.role);
    const cacheGrant = roleGrants.CacheTable;
    const purges = Object.values(gateway.routes).some(
      (route) => route.cache && "invalidates" in route.cache && (route.cache.invalidates?.length ?? 0) > 0,
    );
    if (caches) {
      assert.equal(fn.environment?.CACHE_TABLE, "gatehouse-prod-cache");
      assert.deepEqual(cacheGrant, [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
        ...(purges ? ["dynamodb:BatchWriteItem", "dynamodb:UpdateItem"] : []),
      ]);
      assert.deepEqual(roleGrants["CacheTable/index/byRoute"], purges ? ["dynamodb:Query"] : undefined);
    } else {
      assert.equal(fn.environment?.CACHE_TABLE, undefined, "no cached route: no cache table");
      assert.equal(cacheGrant, undefined, "no cached route: no grant on the cache table");
    }
  });

  it("writes HTTP API access logs as JSON with the authorizer's and the integration's errors and latencies", () => {
    const format = String(service.provider.logs.httpApi.format);
    const fields = JSON.parse(format.replace(/\$context\.[\w.]+/g, "0")) as Record<string, unknown>;
    assert.ok(Object.keys(fields).length > 10, format);
    for (const variable of [
      "$context.requestId",
      "$context.routeKey",
      "$context.status",
      "$context.responseLatency",
      "$context.authorizer.error",
      "$context.authorizer.plan",
      "$context.integration.error",
      "$context.integration.latency",
      "$context.integrationErrorMessage",
      "$context.identity.sourceIp",
    ]) {
      assert.ok(format.includes(`${variable}"`) || format.includes(`${variable},`), variable);
    }
  });

  it("keeps WebSocket access logs off unless the stage's param turns them on, and the account role is never changed", () => {
    assert.equal(service.params.prod.websocketAccessLogs, false);
    assert.equal(service.provider.logs.websocket, false);
    // No custom resource setting the account-wide API Gateway CloudWatch role (docs/deploying.md).
    assert.equal(service.provider.logs.restApi.roleManagedExternally, true);
    const on = service.custom.accessLogs.websocket.true as Record<string, unknown>;
    assert.equal(on.accessLogging, true);
    assert.equal(on.executionLogging, false);
    const format = String(on.format);
    JSON.parse(format.replace(/\$context\.[\w.]+/g, "0"));
    for (const variable of [
      "$context.connectionId",
      "$context.authorizer.error",
      "$context.integration.error",
    ])
      assert.ok(format.includes(variable), variable);
  });

  it("carries the stage's dashboard and alarms: a 5XX alarm per gateway route, actions only with a topic", () => {
    const resources = service.resources.Resources as ResolvedService;
    const dashboard = resources.GatehouseDashboard;
    assert.equal(dashboard?.Type, "AWS::CloudWatch::Dashboard");
    assert.equal(dashboard?.Properties.DashboardName, "gatehouse-prod");
    const body = JSON.parse(String(dashboard?.Properties.DashboardBody["Fn::Sub"])) as {
      widgets: { properties: { title?: string } }[];
    };
    const titles = body.widgets.map((widget) => widget.properties.title);
    const gateway = loadGateway(definition, "prod");
    const gatewayRoutes = Object.entries(gateway.routes)
      .filter(([, route]) => route.kind === "proxy" || route.kind === "aggregate")
      .map(([key]) => key);
    for (const key of gatewayRoutes) assert.ok(titles.includes(key), key);

    const alarms = Object.values(resources).filter((resource) => resource.Type === "AWS::CloudWatch::Alarm");
    const names = alarms.map((alarm) => String(alarm.Properties.AlarmName));
    for (const key of gatewayRoutes) assert.ok(names.includes(`gatehouse-prod-5xx-rate ${key}`), key);
    for (const name of [
      "gatehouse-prod-http-5xx-rate",
      "gatehouse-prod-limiter-degraded-admission",
      "gatehouse-prod-fanout-failed",
      ...Object.keys(gateway.upstreams).map((upstream) => `gatehouse-prod-circuit-opened ${upstream}`),
    ]) {
      assert.ok(names.includes(name), name);
    }
    // No topic on prod by default: the parameter says none, and the condition keeps the actions off.
    assert.equal(service.params.prod.alarmTopicArn, "none");
    assert.equal(service.resources.Parameters.GatehouseAlarmTopicArn.Default, "none");
    assert.ok(service.resources.Conditions.GatehouseAlarmTopicGiven);
    for (const alarm of alarms)
      assert.equal(alarm.Properties.AlarmActions["Fn::If"][0], "GatehouseAlarmTopicGiven");
  });

  it("keeps prod tables on stack deletion and encrypts them", () => {
    const tables = Object.values<{
      Type: string;
      DeletionPolicy: string;
      Properties: Record<string, unknown>;
    }>(service.resources.Resources).filter((resource) => resource.Type === "AWS::DynamoDB::Table");
    assert.equal(tables.length, 6);
    for (const table of tables) {
      assert.equal(table.DeletionPolicy, "Retain");
      assert.deepEqual(table.Properties.SSESpecification, { SSEEnabled: true });
      assert.deepEqual(table.Properties.TimeToLiveSpecification, {
        AttributeName: "expiresAt",
        Enabled: true,
      });
    }
  });

  it("has exactly one event per config route (and a HEAD per cached GET), on the function that answers it, behind its authorizer", () => {
    const gateway = loadGateway(definition, "prod");
    // Every httpApi event of the resolved service (plugin-generated ones included), the catch-all too.
    const declared = Object.entries<{
      events?: { httpApi?: "*" | { method: string; path: string; authorizer?: { name: string } } }[];
    }>(service.functions)
      .flatMap(([name, fn]) => (fn.events ?? []).map((event) => [name, event.httpApi] as const))
      .flatMap(([name, route]) => {
        if (route === undefined) return [];
        if (route === "*") return [`* → ${name} (none)`];
        const method = route.method === "*" ? "ANY" : route.method.toUpperCase();
        return [`${method} ${route.path} → ${name} (${route.authorizer?.name ?? "none"})`];
      })
      .sort();
    const expected = Object.entries(gateway.routes)
      .flatMap(([key, route]) => {
        const authorizer =
          route.auth === "public" ? "none" : "jwt" in route.auth ? "jwtAuthorizer" : "apiKeyAuthorizer";
        const event = `→ ${route.handler ?? "gateway"} (${authorizer})`;
        return key.startsWith("GET ") && route.cache
          ? [`${key} ${event}`, `HEAD ${key.slice(4)} ${event}`]
          : [`${key} ${event}`];
      })
      .concat("* → gateway (none)")
      .sort();
    // Lists, not sets: a route declared twice would show here.
    assert.deepEqual(declared, expected);
  });

  it("lets the gateway invoke exactly the functions its lambda upstreams name", () => {
    const gateway = loadGateway(definition, "prod");
    const resources = service.resources.Resources as Record<string, { Properties: Record<string, unknown> }>;
    const gatewayRole = resources.GatewayRole;
    assert.ok(gatewayRole, "GatewayRole is declared");
    const statements = (
      gatewayRole.Properties.Policies as {
        PolicyDocument: { Statement: { Action: string[]; Resource: unknown }[] };
      }[]
    ).flatMap((policy) => policy.PolicyDocument.Statement);
    const invocable = statements
      .filter((statement) => statement.Action.some((action) => action.startsWith("lambda:")))
      .flatMap((statement) => {
        assert.deepEqual(statement.Action, ["lambda:InvokeFunction"]);
        return statement.Resource as { "Fn::GetAtt": [string, string] }[];
      })
      .map((resource) => resource["Fn::GetAtt"][0]);
    const named = Object.values(gateway.upstreams).flatMap((upstream) =>
      upstream.kind === "lambda" ? [upstream.function] : [],
    );
    assert.ok(named.length > 0, "the example config has a lambda upstream");
    for (const fn of named)
      assert.ok(service.functions[fn], `lambda upstream ${fn} is a function of serverless.yml`);
    // serverless names a function's resource <Key>LambdaFunction, key capitalised.
    const expected = named.map((fn) => `${fn[0]?.toUpperCase()}${fn.slice(1)}LambdaFunction`);
    assert.deepEqual(new Set(invocable), new Set(expected));
  });

  it("keys the authorizer cache on the credential, the route and the source IP", () => {
    for (const [name, authorizer] of Object.entries<{ identitySource: string[] }>(
      service.provider.httpApi.authorizers,
    )) {
      assert.ok(authorizer.identitySource.includes("$context.routeKey"), name);
      assert.ok(authorizer.identitySource.includes("$context.identity.sourceIp"), name);
    }
  });

  it("has a sample event for every function, and every sample event names a function", () => {
    const functions = Object.keys(service.functions).sort();
    const covered = [...new Set(eventFiles().map((event) => event.functionName))].sort();
    assert.deepEqual(covered, functions);
  });
});
