// @ts-check
// The API Gateway wiring of serverless.yml, generated from gateway.config.ts so a route is said once:
//   - an `httpApi` event per config route (preflights included) on the function that answers it
//     (`handler: "<function key>"`, else the `gateway` function), behind the authorizer its auth
//     needs, plus the gateway's catch-all `httpApi: "*"`;
//   - the WebSocket routes: $connect (behind wsAuthorizer unless `websocket.connect.auth` is public),
//     $disconnect, $default and one route per action of shared/ws/protocol.ts;
//   - the gateway role's lambda:InvokeFunction grants, one per `kind: "lambda"` upstream, and the
//     function itself when the upstream gives its `code` (with the logs-and-tracing role only);
//   - what a function serving a limited route needs: USAGE_TABLE and the counting grant on its role;
//   - when a route caches: CACHE_TABLE and Get/Put/DeleteItem on CacheTable for the gateway function,
//     and when a write route invalidates, the purge's Query on index byRoute and BatchWriteItem;
//   - when a route names the cache admin function (DELETE /admin/cache): CACHE_TABLE and the purge's
//     Query and BatchWriteItem for that function, and nothing else on the table;
//   - the stage's CloudWatch dashboard and alarms (plugins/observability.mjs);
//   - API Gateway's throttling (plugins/api-throttling.mjs) once the events are compiled.
// It runs at `initialize`, before any command's lifecycle, so `serverless print`, `package`, `deploy`,
// `invoke local` and serverless-offline all see the same events. A hand-written httpApi or websocket
// event is refused: the config is the only place a route is declared.

import { pathToFileURL } from "node:url";
import { applyThrottling } from "./api-throttling.mjs";
import { observability } from "./observability.mjs";

/** The function answering every proxy and aggregate route, and everything no route matches. */
export const GATEWAY_FUNCTION = "gateway";

/**
 * The function answering the cache purge (handlers/http/admin-cache.ts): the routes naming it get
 * it CACHE_TABLE and the purge's grants, whatever the stage's `cache.enabled` (entries stored before
 * caching was turned off can still be purged).
 */
export const CACHE_ADMIN_FUNCTION = "adminCache";

/** The authorizer (provider.httpApi.authorizers) each kind of route auth needs. */
export const HTTP_AUTHORIZERS = { jwt: "jwtAuthorizer", apiKey: "apiKeyAuthorizer" };

/**
 * Which function answers which WebSocket route: said here once. Every chat action of
 * shared/ws/protocol.ts (CHAT_ACTIONS) goes to `chat`, so a new action needs no edit here.
 */
export const WEBSOCKET_FUNCTIONS = {
  connect: "wsConnect",
  disconnect: "wsDisconnect",
  default: "wsDefault",
  ping: "wsPing",
  chat: "wsChat",
  authorizer: "wsAuthorizer",
};

/**
 * @typedef {{ auth: "public" | { jwt: object } | { apiKey: object }, handler?: string, limit?: unknown, cache?: unknown }} Route
 * @typedef {{ kind?: string, function?: string, code?: string }} Upstream
 * @typedef {{
 *   routes: Record<string, Route>,
 *   upstreams: Record<string, Upstream>,
 *   websocket: { connect: { auth: Route["auth"] } },
 *   cache?: { enabled?: boolean },
 * }} Gateway
 * @typedef {{ events?: unknown[], role?: string, environment?: Record<string, unknown> }} FunctionConfig
 * @typedef {{ key: string, functionKey: string, event: Record<string, unknown> }} GeneratedEvent
 */

/**
 * The role of a function the build declares for a Lambda upstream's `code`: logs and traces only. A
 * service that needs more (a table, a secret) is declared in serverless.yml with its own role.
 */
export const SERVICE_ROLE = "HttpSystemRole";

/**
 * The functions the config declares: one per Lambda upstream that gives its `code`.
 * Example: `catalog: { kind: "lambda", function: "catalog", code: "handlers/services/catalog.handler" }` →
 * `{ catalog: { handler: "handlers/services/catalog.handler", role: "HttpSystemRole", ... } }`.
 * @param {Gateway} gateway
 * @returns {Record<string, FunctionConfig & { handler: string, description: string }>}
 */
export function serviceFunctions(gateway) {
  return Object.fromEntries(
    Object.entries(gateway.upstreams).flatMap(([name, upstream]) =>
      upstream.kind === "lambda" && upstream.function && upstream.code
        ? [
            [
              upstream.function,
              {
                handler: upstream.code,
                description: `The ${name} upstream, invoked by the gateway (declared by gateway.config.ts)`,
                role: SERVICE_ROLE,
                events: [],
              },
            ],
          ]
        : [],
    ),
  );
}

/** The authorizer a route's auth needs, or undefined for a public route. */
export function httpAuthorizer(/** @type {Route["auth"]} */ auth) {
  if (auth === "public") return undefined;
  return "jwt" in auth ? HTTP_AUTHORIZERS.jwt : HTTP_AUTHORIZERS.apiKey;
}

/**
 * One `httpApi` event per config route, on the function that answers it (and a HEAD beside each
 * cached GET route), then the catch-all.
 * Example: `"GET /usage": { auth: { apiKey: {} }, handler: "usage" }` →
 * `{ functionKey: "usage", event: { httpApi: { method: "GET", path: "/usage", authorizer: { name: "apiKeyAuthorizer" } } } }`.
 * @param {Gateway} gateway
 * @returns {GeneratedEvent[]}
 */
export function httpEvents(gateway) {
  /** @type {GeneratedEvent[]} */
  const events = Object.entries(gateway.routes).flatMap(([key, route]) => {
    const [method = "", path = ""] = key.split(" ");
    const name = httpAuthorizer(route.auth);
    /** @param {string} on @returns {GeneratedEvent} */
    const event = (on) => ({
      key: `${on} ${path}`,
      functionKey: route.handler ?? GATEWAY_FUNCTION,
      event: {
        httpApi: { method: on === "ANY" ? "*" : on, path, ...(name ? { authorizer: { name } } : {}) },
      },
    });
    // API Gateway matches methods exactly: a cached GET route gets a HEAD route beside it (same
    // function and authorizer), answered from the GET entry without its body (docs/caching.md).
    const head = method === "GET" && route.cache !== undefined && !(`HEAD ${path}` in gateway.routes);
    return head ? [event(method), event("HEAD")] : [event(method)];
  });
  // Everything no route matches: the gateway answers 404 or 405 as problem+json, not API Gateway.
  events.push({ key: "$default", functionKey: GATEWAY_FUNCTION, event: { httpApi: "*" } });
  return events;
}

/**
 * The WebSocket API's routes. Message routes answer the client ($default response selection).
 * @param {Gateway} gateway
 * @param {readonly string[]} chatActions CHAT_ACTIONS of shared/ws/protocol.ts
 * @returns {GeneratedEvent[]}
 */
export function websocketEvents(gateway, chatActions) {
  const connectAuthorized = gateway.websocket.connect.auth !== "public";
  /** @param {string} route @param {string} functionKey @param {Record<string, unknown>} [extra] */
  const ws = (route, functionKey, extra = { routeResponseSelectionExpression: "$default" }) => ({
    key: route,
    functionKey,
    event: { websocket: { route, ...extra } },
  });
  return [
    ws(
      "$connect",
      WEBSOCKET_FUNCTIONS.connect,
      connectAuthorized
        ? {
            authorizer: {
              name: WEBSOCKET_FUNCTIONS.authorizer,
              // Always present and unique per connection: API Gateway never refuses a handshake by
              // itself (the token may be in the query or the subprotocol list) and never reuses a decision.
              identitySource: ["context.connectionId"],
            },
          }
        : {},
    ),
    ws("$disconnect", WEBSOCKET_FUNCTIONS.disconnect, {}),
    ws("$default", WEBSOCKET_FUNCTIONS.default),
    ws("ping", WEBSOCKET_FUNCTIONS.ping),
    ...chatActions.map((action) => ws(action, WEBSOCKET_FUNCTIONS.chat)),
  ];
}

/**
 * The gateway's lambda:InvokeFunction resources: a function key becomes its `Fn::GetAtt`, an ARN stays.
 * @param {Gateway} gateway
 * @param {(functionKey: string) => string} logicalId the provider's naming (getLambdaLogicalId)
 * @returns {(string | { "Fn::GetAtt": [string, string] })[]}
 */
export function invokeResources(gateway, logicalId) {
  const resources = Object.values(gateway.upstreams).flatMap((upstream) => {
    /** @type {(string | { "Fn::GetAtt": [string, string] })[]} */
    const grant = [];
    if (upstream.kind !== "lambda" || !upstream.function) return grant;
    grant.push(
      upstream.function.startsWith("arn:")
        ? upstream.function
        : { "Fn::GetAtt": [logicalId(upstream.function), "Arn"] },
    );
    return grant;
  });
  // Two upstreams may name one function (a second payload kind, say): one grant each function.
  return [...new Map(resources.map((resource) => [JSON.stringify(resource), resource])).values()];
}

/**
 * Everything the config generates, and every reason it cannot: a function the config names that
 * serverless.yml lacks, or an event written by hand beside the config.
 * @param {{
 *   gateway: Gateway,
 *   chatActions: readonly string[],
 *   functions: Record<string, FunctionConfig>,
 *   logicalId: (functionKey: string) => string,
 * }} input
 */
export function gatewayWiring({ gateway, chatActions, functions: declared, logicalId }) {
  /** @type {string[]} */
  const problems = [];
  const declares = serviceFunctions(gateway);
  for (const key of Object.keys(declares)) {
    if (!declared[key]) continue;
    const upstream = Object.entries(gateway.upstreams).find(([, u]) => u.function === key)?.[0];
    problems.push(
      `upstreams.${upstream}.code: function "${key}" is also declared in serverless.yml; remove code from the upstream, or the function from serverless.yml`,
    );
  }
  /** @type {Record<string, FunctionConfig>} */
  const functions = { ...declares, ...declared };
  const known = Object.keys(functions);
  const missing = (/** @type {string} */ field, /** @type {string} */ key) =>
    `${field}: "${key}" is not a function of serverless.yml (it has ${known.join(", ")}); add it under functions: or name one of those`;

  for (const [name, fn] of Object.entries(functions)) {
    for (const event of fn.events ?? []) {
      if (event && typeof event === "object" && ("httpApi" in event || "websocket" in event)) {
        const kind = "httpApi" in event ? "httpApi" : "websocket";
        problems.push(
          `functions.${name}.events: a hand-written ${kind} event; routes are generated from gateway.config.ts (plugins/gateway-wiring.mjs), so declare the route there and remove the event`,
        );
      }
    }
  }

  const http = httpEvents(gateway);
  const websocket = websocketEvents(gateway, chatActions);
  for (const { key, functionKey } of http) {
    if (functions[functionKey]) continue;
    problems.push(
      key === "$default" || !gateway.routes[key]?.handler
        ? missing(
            `the gateway function (answering ${key === "$default" ? "the catch-all" : key})`,
            functionKey,
          )
        : missing(`routes["${key}"].handler`, functionKey),
    );
  }
  for (const { key, functionKey } of websocket) {
    if (!functions[functionKey]) problems.push(missing(`the WebSocket route ${key}`, functionKey));
  }
  for (const [name, upstream] of Object.entries(gateway.upstreams)) {
    const fn = upstream.kind === "lambda" ? upstream.function : undefined;
    if (fn && !fn.startsWith("arn:") && !functions[fn])
      problems.push(missing(`upstreams.${name}.function`, fn));
  }

  /** @type {Record<string, Record<string, unknown>[]>} */
  const events = {};
  for (const { functionKey, event } of [...http, ...websocket]) {
    events[functionKey] = [...(events[functionKey] ?? []), event];
  }
  const limited = [
    ...new Set(
      Object.values(gateway.routes).flatMap((route) =>
        route.limit ? [route.handler ?? GATEWAY_FUNCTION] : [],
      ),
    ),
  ];
  // Cached routes (and write routes that invalidate them) are the gateway function's: it reads and
  // writes the shared tier. A stage with caching off needs neither the table nor the grant.
  const caches =
    gateway.cache?.enabled !== false &&
    Object.values(gateway.routes).some((route) => route.cache !== undefined);
  // A write route's purge finds a route's entries on the byRoute index and deletes them in batches.
  const purges =
    caches &&
    Object.values(gateway.routes).some(
      (route) =>
        typeof route.cache === "object" &&
        route.cache !== null &&
        "invalidates" in route.cache &&
        Array.isArray(route.cache.invalidates) &&
        route.cache.invalidates.length > 0,
    );
  // The cache admin function purges the table: it finds entries on the byRoute index and deletes them.
  const cacheAdmin = Object.values(gateway.routes).some((route) => route.handler === CACHE_ADMIN_FUNCTION);
  return {
    problems,
    declares,
    events,
    invoke: invokeResources(gateway, logicalId),
    limited,
    caches,
    purges,
    cacheAdmin,
  };
}

/** The statements a purge needs: the route's entries from the byRoute index, deleted 25 at a time, and the purge recorded. */
export const CACHE_PURGE = [
  {
    Effect: "Allow",
    Action: ["dynamodb:Query"],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation's Fn::Sub, not a JS template
    Resource: { "Fn::Sub": "${CacheTable.Arn}/index/byRoute" },
  },
  // BatchWriteItem deletes the entries; UpdateItem records the purge for other containers' memory.
  {
    Effect: "Allow",
    Action: ["dynamodb:BatchWriteItem", "dynamodb:UpdateItem"],
    Resource: { "Fn::GetAtt": ["CacheTable", "Arn"] },
  },
];

/** The statement that lets the gateway function use the shared cache tier: one item at a time. */
export const CACHE_ACCESS = {
  Effect: "Allow",
  Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem"],
  Resource: { "Fn::GetAtt": ["CacheTable", "Arn"] },
};

/** The statement that lets a function count: one conditional UpdateItem, a GetItem when refused. */
const USAGE_COUNT = {
  Effect: "Allow",
  Action: ["dynamodb:UpdateItem", "dynamodb:GetItem"],
  Resource: { "Fn::GetAtt": ["UsageTable", "Arn"] },
};

/** Whether a role's policies already let it count in the usage table (hand-written for other reasons). */
function grantsUsageCount(/** @type {any} */ role) {
  const statements = (role?.Properties?.Policies ?? []).flatMap(
    (/** @type {any} */ policy) => policy.PolicyDocument?.Statement ?? [],
  );
  return statements.some(
    (/** @type {any} */ statement) =>
      JSON.stringify(statement.Resource) === JSON.stringify(USAGE_COUNT.Resource) &&
      USAGE_COUNT.Action.every((action) => [statement.Action].flat().includes(action)),
  );
}

export default class GatewayWiring {
  /** @param {any} serverless @param {Record<string, unknown>} options */
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    /** @type {Promise<any> | undefined} */
    this.loaded = undefined;
    this.hooks = {
      initialize: () => this.wire(),
      "after:package:compileEvents": async () =>
        applyThrottling(this.serverless, (await this.load()).gateway),
    };
  }

  /** The stage's gateway config (preflights included) and the chat actions, loaded once through tsx. */
  load() {
    this.loaded ??= (async () => {
      const { tsImport } = await import("tsx/esm/api");
      const root = pathToFileURL(`${this.serverless.serviceDir}/`).href;
      const { loadGateway, routeWorstCaseMs } = await tsImport("./shared/config/gateway.ts", root);
      const { CHAT_ACTIONS } = await tsImport("./shared/ws/protocol.ts", root);
      const { FANOUT_KINDS } = await tsImport("./shared/ws/fanout.ts", root);
      const { METRICS_NAMESPACE } = await tsImport("./shared/observability/metrics.ts", root);
      const { default: definition } = await tsImport("./gateway.config.ts", root);
      const gateway = loadGateway(definition, this.serverless.service.provider.stage);
      return {
        gateway,
        chatActions: CHAT_ACTIONS,
        fanoutKinds: FANOUT_KINDS,
        namespace: METRICS_NAMESPACE,
        worstCaseMs: (/** @type {any} */ route) => routeWorstCaseMs(gateway, route),
      };
    })();
    return this.loaded;
  }

  async wire() {
    const service = this.serverless.service;
    const naming = this.serverless.getProvider("aws").naming;
    const fail = (/** @type {string[]} */ problems) => {
      throw new this.serverless.classes.Error(
        `gateway.config.ts and serverless.yml disagree:\n  - ${problems.join("\n  - ")}`,
      );
    };
    const { gateway, chatActions, fanoutKinds, namespace, worstCaseMs } = await this.load();
    const functions = /** @type {Record<string, FunctionConfig>} */ (service.functions);
    const { problems, declares, events, invoke, limited, caches, purges, cacheAdmin } = gatewayWiring({
      gateway,
      chatActions,
      functions,
      logicalId: (key) => naming.getLambdaLogicalId(key),
    });
    if (problems.length === 0 && Object.keys(declares).length > 0) {
      Object.assign(functions, declares);
      service.setFunctionNames(this.options); // names `<service>-<stage>-<key>`, as for the others
    }
    const resources = service.resources?.Resources ?? {};
    const roleOf = (/** @type {string} */ key) => {
      const role = functions[key]?.role;
      if (role && resources[role]?.Type === "AWS::IAM::Role") return resources[role];
      problems.push(
        `functions.${key}.role: the config needs grants on this function's role, so it names an AWS::IAM::Role of resources.Resources (it is ${role ?? "unset"})`,
      );
      return undefined;
    };
    const usageTable = service.custom?.tables?.usage;
    if (limited.length > 0 && typeof usageTable !== "string") {
      problems.push(
        "custom.tables.usage: the usage table's name, needed by the functions serving limited routes",
      );
    }
    const cacheTable = service.custom?.tables?.cache;
    if ((caches || cacheAdmin) && typeof cacheTable !== "string") {
      problems.push(
        caches
          ? "custom.tables.cache: the cache table's name, needed by the gateway function for cached routes"
          : `custom.tables.cache: the cache table's name, needed by the ${CACHE_ADMIN_FUNCTION} function to purge it`,
      );
    }
    const gatewayRole = invoke.length > 0 || caches ? roleOf(GATEWAY_FUNCTION) : undefined;
    const cacheAdminRole =
      cacheAdmin && functions[CACHE_ADMIN_FUNCTION] ? roleOf(CACHE_ADMIN_FUNCTION) : undefined;
    const countingRoles = limited.flatMap((key) => (functions[key] ? [[key, roleOf(key)]] : []));
    if (problems.length > 0) fail(problems);

    this.addObservability({ gateway, fanoutKinds, namespace, worstCaseMs });

    for (const [key, generated] of Object.entries(events)) {
      const fn = /** @type {FunctionConfig} */ (functions[key]);
      fn.events = [...(fn.events ?? []), ...generated];
    }
    if (gatewayRole && invoke.length > 0) {
      gatewayRole.Properties.Policies = [
        ...(gatewayRole.Properties.Policies ?? []),
        {
          PolicyName: "invoke-lambda-upstreams",
          PolicyDocument: {
            Version: "2012-10-17",
            Statement: [{ Effect: "Allow", Action: ["lambda:InvokeFunction"], Resource: invoke }],
          },
        },
      ];
    }
    if (gatewayRole && caches) {
      const fn = /** @type {FunctionConfig} */ (functions[GATEWAY_FUNCTION]);
      fn.environment = { CACHE_TABLE: cacheTable, ...fn.environment };
      gatewayRole.Properties.Policies = [
        ...(gatewayRole.Properties.Policies ?? []),
        {
          PolicyName: "response-cache",
          PolicyDocument: {
            Version: "2012-10-17",
            // Copies: a statement object shared by two roles prints as a `$ref` in `serverless print`.
            Statement: structuredClone([CACHE_ACCESS, ...(purges ? CACHE_PURGE : [])]),
          },
        },
      ];
    }
    if (cacheAdminRole) {
      const fn = /** @type {FunctionConfig} */ (functions[CACHE_ADMIN_FUNCTION]);
      fn.environment = { CACHE_TABLE: cacheTable, ...fn.environment };
      cacheAdminRole.Properties.Policies = [
        ...(cacheAdminRole.Properties.Policies ?? []),
        {
          PolicyName: "cache-purge",
          PolicyDocument: { Version: "2012-10-17", Statement: structuredClone(CACHE_PURGE) },
        },
      ];
    }
    for (const [key, role] of countingRoles) {
      const fn = /** @type {FunctionConfig} */ (functions[/** @type {string} */ (key)]);
      fn.environment = { USAGE_TABLE: usageTable, ...fn.environment };
      if (grantsUsageCount(role)) continue;
      role.Properties.Policies = [
        ...(role.Properties.Policies ?? []),
        { PolicyName: "usage-count", PolicyDocument: { Version: "2012-10-17", Statement: [USAGE_COUNT] } },
      ];
    }
  }

  /**
   * The stage's dashboard and alarms (plugins/observability.mjs), into resources; a logical id
   * serverless.yml already uses fails the build.
   * @param {{ gateway: any, fanoutKinds: readonly string[], namespace: string, worstCaseMs: (route: any) => number }} loaded
   */
  addObservability({ gateway, fanoutKinds, namespace, worstCaseMs }) {
    const service = this.serverless.service;
    const stage = service.provider.stage;
    const serviceName = String(
      service.provider.environment?.POWERTOOLS_SERVICE_NAME ?? `${service.service}-${stage}`,
    );
    const { Parameters, Conditions, Resources } = observability({
      gateway,
      serviceName,
      stage,
      namespace,
      fanoutKinds,
      worstCaseMs,
      alarmTopicArn: String(service.custom?.alarmTopicArn ?? "none"),
      functionName: (key) => service.functions?.[key]?.name ?? `${service.service}-${stage}-${key}`,
    });
    service.resources ??= {};
    service.resources.Resources ??= {};
    service.resources.Conditions ??= {};
    service.resources.Parameters ??= {};
    const taken = [...Object.keys(Resources), ...Object.keys(Conditions), ...Object.keys(Parameters)].filter(
      (id) =>
        id in service.resources.Resources ||
        id in service.resources.Conditions ||
        id in service.resources.Parameters,
    );
    if (taken.length > 0) {
      throw new this.serverless.classes.Error(
        `resources: ${taken.join(", ")} is generated by plugins/observability.mjs (the dashboard and alarms); rename yours`,
      );
    }
    Object.assign(service.resources.Resources, Resources);
    Object.assign(service.resources.Conditions, Conditions);
    Object.assign(service.resources.Parameters, Parameters);
  }
}
