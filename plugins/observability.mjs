// @ts-check
// The stage's CloudWatch dashboard and alarms, generated from gateway.config.ts (called by
// plugins/gateway-wiring.mjs at `initialize`, so `serverless print` shows them):
//   - one dashboard: the HTTP API as a whole, each gateway route (requests, 4XX, 5XX, latency p50 and
//     p99 against its budget), each system function, 429s by plan, the limiter, circuits, the cache
//     hit ratio, authorizer denials, the WebSocket API and fan-out;
//   - alarms: a gateway route's 5XX rate, its p99 over its budget, the HTTP API's 5XX rate, any
//     degraded limiter admission, a circuit opening per upstream, fan-out failures.
// Metric names and dimensions are the ones the functions publish (shared/observability/metrics.ts,
// shared/middleware/request-metrics.ts, shared/quota/limit-policy.ts, shared/upstream/http-client.ts,
// shared/auth/*-authorizer.ts, shared/ws/fanout.ts); docs/dashboards-and-alarms.md lists them.

/**
 * The alarms' defaults, stated once (docs/dashboards-and-alarms.md repeats them). A route's latency
 * budget is its `alarms.latencyP99Ms`, else the longest its upstream calls may take (timeouts ×
 * attempts, `routeWorstCaseMs`).
 */
export const ALARM_DEFAULTS = {
  /** 5XX share of a route's (or the HTTP API's) requests over one period. */
  errorRate: 0.05,
  /** A period with fewer requests than this never raises the 5XX alarm (one failure of two is not a trend). */
  errorRateMinRequests: 10,
  /** Period of the 5XX and latency alarms, seconds. */
  periodSeconds: 300,
  /** The latency alarm fires when p99 is over budget in this many of the last `latencyEvaluationPeriods`. */
  latencyDatapoints: 2,
  latencyEvaluationPeriods: 3,
  /** Period of the "any" alarms (degraded admission, circuit opened, fan-out failed), seconds. */
  eventPeriodSeconds: 60,
  /** Failed fan-out sends (all kinds together) in one event period that raise the alarm. */
  fanoutFailures: 1,
};

/**
 * The stack parameter holding the alarms' SNS topic (its default is the stage's `alarmTopicArn`
 * param, so a deploy sets it; a stack update may change it), and the condition that gives the alarms
 * their actions: a topic other than `none`.
 */
export const ALARM_TOPIC_PARAMETER = "GatehouseAlarmTopicArn";
export const ALARM_TOPIC_CONDITION = "GatehouseAlarmTopicGiven";
/** The dashboard's logical id. */
export const DASHBOARD_ID = "GatehouseDashboard";

/**
 * @typedef {{ kind?: string, handler?: string, cache?: unknown, alarms?: { latencyP99Ms?: number, errorRate?: number } }} Route
 * @typedef {{ routes: Record<string, Route>, upstreams: Record<string, { kind?: string }>, cache?: { enabled?: boolean } }} Gateway
 * @typedef {{
 *   gateway: Gateway,
 *   serviceName: string,
 *   stage: string,
 *   namespace: string,
 *   functionName: (key: string) => string,
 *   worstCaseMs: (route: Route) => number,
 *   fanoutKinds: readonly string[],
 *   alarmTopicArn: string,
 *   gatewayFunction?: string,
 * }} ObservabilityInput
 * @typedef {{ key: string, id: string, budgetMs: number, errorRate: number, caches: boolean }} ObservedRoute
 */

/** `GET /v1/users/{id}` → `GetV1UsersId`: a logical id's part (letters and digits only). */
function pascal(/** @type {string} */ text) {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((word) => word[0]?.toUpperCase() + word.slice(1).toLowerCase())
    .join("");
}

/**
 * The routes the gateway function answers (it publishes their per-route metrics), each with its
 * logical-id part, latency budget and 5XX threshold. System-function routes and preflights are not
 * here: their functions' own metrics stand for them.
 * @param {ObservabilityInput} input
 * @returns {ObservedRoute[]}
 */
export function observedRoutes({ gateway, worstCaseMs }) {
  /** @type {Set<string>} */
  const ids = new Set();
  return Object.entries(gateway.routes)
    .filter(([, route]) => route.kind === "proxy" || route.kind === "aggregate")
    .map(([key, route]) => {
      const base = pascal(key);
      let id = base;
      for (let n = 2; ids.has(id); n += 1) id = `${base}${n}`;
      ids.add(id);
      const cache = /** @type {{ ttlSeconds?: number } | undefined} */ (route.cache);
      return {
        key,
        id,
        budgetMs: route.alarms?.latencyP99Ms ?? worstCaseMs(route),
        errorRate: route.alarms?.errorRate ?? ALARM_DEFAULTS.errorRate,
        caches: gateway.cache?.enabled !== false && typeof cache?.ttlSeconds === "number",
      };
    });
}

/** The system functions that answer routes (handler routes), in config order, once each. */
function systemFunctions(/** @type {Gateway} */ gateway) {
  return [
    ...new Set(Object.values(gateway.routes).flatMap((route) => (route.handler ? [route.handler] : []))),
  ];
}

// Placeholders for what only CloudFormation knows, swapped for Fn::Sub variables once the body is text.
const REGION = "@@region@@";
const HTTP_API = "@@httpApi@@";
const WEBSOCKET_API = "@@websocketApi@@";

/**
 * The dashboard's body (CloudWatch dashboard body structure) with placeholders for the region and the
 * APIs' ids.
 * @param {ObservabilityInput} input
 */
export function dashboardBody(input) {
  const { gateway, serviceName, stage, namespace, functionName, fanoutKinds } = input;
  const routes = observedRoutes(input);
  const service = ["service", serviceName];
  /** @type {Record<string, unknown>[]} */
  const widgets = [];
  /** @param {string} title @param {unknown[]} metrics @param {Record<string, unknown>} [extra] */
  const graph = (title, metrics, extra = {}) =>
    widgets.push({
      type: "metric",
      width: 12,
      height: 6,
      properties: {
        title,
        region: REGION,
        view: "timeSeries",
        stacked: false,
        period: 300,
        metrics,
        ...extra,
      },
    });
  /** @param {string} markdown */
  const text = (markdown) => widgets.push({ type: "text", width: 24, height: 1, properties: { markdown } });
  /** SEARCH over one of our metrics for this stage, one line per value of `by`. */
  const search = (/** @type {string} */ metric, /** @type {string[]} */ by, /** @type {string} */ id) => ({
    expression: `SEARCH('{${namespace},service,${by.join(",")}} MetricName="${metric}" service="${serviceName}"', 'Sum', 300)`,
    id,
  });

  text(`# Gatehouse ${stage}: HTTP API`);
  graph("HTTP API: requests, 4XX, 5XX", [
    ["AWS/ApiGateway", "Count", "ApiId", HTTP_API, { stat: "Sum", label: "requests" }],
    ["AWS/ApiGateway", "4xx", "ApiId", HTTP_API, { stat: "Sum", label: "4XX" }],
    ["AWS/ApiGateway", "5xx", "ApiId", HTTP_API, { stat: "Sum", label: "5XX" }],
  ]);
  graph("HTTP API: latency (ms)", [
    ["AWS/ApiGateway", "Latency", "ApiId", HTTP_API, { stat: "p50", label: "p50" }],
    ["AWS/ApiGateway", "Latency", "ApiId", HTTP_API, { stat: "p99", label: "p99" }],
    ["AWS/ApiGateway", "IntegrationLatency", "ApiId", HTTP_API, { stat: "p99", label: "integration p99" }],
  ]);
  text("## Gateway routes: requests, 4XX, 5XX (left); latency p50, p99 and the alarm's budget (right)");
  for (const route of routes) {
    const dims = [...service, "route", route.key];
    graph(
      route.key,
      [
        [namespace, "Requests", ...dims, { stat: "Sum", label: "requests" }],
        [namespace, "Status4XX", ...dims, { stat: "Sum", label: "4XX" }],
        [namespace, "Status5XX", ...dims, { stat: "Sum", label: "5XX" }],
        [namespace, "Latency", ...dims, { stat: "p50", label: "p50 ms", yAxis: "right" }],
        [namespace, "Latency", ...dims, { stat: "p99", label: "p99 ms", yAxis: "right" }],
      ],
      route.budgetMs > 0
        ? { annotations: { horizontal: [{ label: "p99 budget", value: route.budgetMs, yAxis: "right" }] } }
        : {},
    );
  }
  text("## System functions: invocations, errors, throttles (left); duration p50, p99 (right)");
  for (const key of systemFunctions(gateway)) {
    const dims = ["FunctionName", functionName(key)];
    graph(key, [
      ["AWS/Lambda", "Invocations", ...dims, { stat: "Sum" }],
      ["AWS/Lambda", "Errors", ...dims, { stat: "Sum" }],
      ["AWS/Lambda", "Throttles", ...dims, { stat: "Sum" }],
      ["AWS/Lambda", "Duration", ...dims, { stat: "p50", label: "p50 ms", yAxis: "right" }],
      ["AWS/Lambda", "Duration", ...dims, { stat: "p99", label: "p99 ms", yAxis: "right" }],
    ]);
  }
  text("## Limits, circuits, cache, authorizers");
  graph("429s by plan (LimitRefused)", [search("LimitRefused", ["plan"], "plans")]);
  graph(
    "Usage table: degraded admissions and refusals, timeouts, unavailable, throttled",
    [
      "LimiterDegradedAdmission",
      "LimiterDegradedRefusal",
      "LimiterTimeout",
      "LimiterUnavailable",
      "LimiterThrottled",
    ].map((name) => [namespace, name, ...service, { stat: "Sum" }]),
  );
  graph("Circuits opened, by upstream and target", [
    search("CircuitOpened", ["upstream", "target"], "circuits"),
  ]);
  const cached = routes.filter((route) => route.caches);
  if (cached.length > 0) {
    graph(
      "Cache hit ratio (%), by route",
      cached.flatMap((route, index) => {
        const dims = [...service, "route", route.key];
        return [
          [namespace, "CacheHit", ...dims, { stat: "Sum", id: `hit${index}`, visible: false }],
          [namespace, "CacheMiss", ...dims, { stat: "Sum", id: `miss${index}`, visible: false }],
          [namespace, "CacheStale", ...dims, { stat: "Sum", id: `stale${index}`, visible: false }],
          {
            expression: `100 * (hit${index} + stale${index}) / (hit${index} + stale${index} + miss${index})`,
            label: route.key,
            id: `ratio${index}`,
          },
        ];
      }),
      { yAxis: { left: { min: 0, max: 100 } } },
    );
  }
  graph("Authorizer denials, by authorizer and reason", [
    search("AuthorizerDenied", ["authorizer", "reason"], "denials"),
  ]);
  text(`# Gatehouse ${stage}: WebSocket API`);
  const ws = ["ApiId", WEBSOCKET_API, "Stage", stage];
  graph("WebSocket: connections, messages, errors", [
    ["AWS/ApiGateway", "ConnectCount", ...ws, { stat: "Sum", label: "connects" }],
    ["AWS/ApiGateway", "MessageCount", ...ws, { stat: "Sum", label: "messages" }],
    ["AWS/ApiGateway", "ClientError", ...ws, { stat: "Sum", label: "client errors" }],
    ["AWS/ApiGateway", "IntegrationError", ...ws, { stat: "Sum", label: "integration errors" }],
    ["AWS/ApiGateway", "ExecutionError", ...ws, { stat: "Sum", label: "execution errors" }],
    [namespace, "ConnectionsRefused", ...service, { stat: "Sum", label: "refused (too many per principal)" }],
  ]);
  graph(
    "Fan-out: delivered, gone, failed, skipped, by kind",
    fanoutKinds.flatMap((kind) =>
      ["FanoutDelivered", "FanoutGone", "FanoutFailed", "FanoutSkipped"].map((name) => [
        namespace,
        name,
        ...service,
        "kind",
        kind,
        { stat: "Sum", label: `${kind} ${name.slice("Fanout".length).toLowerCase()}` },
      ]),
    ),
  );

  // Left to right on a 24-wide grid: two graphs a row; a text widget takes a row of its own.
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  for (const widget of widgets) {
    const width = /** @type {number} */ (widget.width);
    if (x + width > 24) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    Object.assign(widget, { x, y });
    x += width;
    rowHeight = Math.max(rowHeight, /** @type {number} */ (widget.height));
  }
  return { start: "-PT3H", periodOverride: "inherit", widgets };
}

/**
 * The dashboard body as CloudFormation text: `${` in any name escaped for Fn::Sub, then the region
 * and the APIs' ids as Fn::Sub variables.
 * @param {ObservabilityInput} input
 */
export function dashboardBodySub(input) {
  /** CloudFormation's Fn::Sub variable (not a JS template). */
  const sub = (/** @type {string} */ name) => ["$", "{", name, "}"].join("");
  const text = JSON.stringify(dashboardBody(input))
    .replaceAll("$" + "{", "$" + "{!") // a name holding "$" + "{" stays literal
    .replaceAll(REGION, sub("AWS::Region"))
    .replaceAll(HTTP_API, sub("HttpApi"))
    .replaceAll(WEBSOCKET_API, sub("WebsocketsApi"));
  return { "Fn::Sub": text };
}

/**
 * The alarms, by logical id. Each notifies the SNS topic (alarm and OK) when the stage gives one.
 * @param {ObservabilityInput} input
 * @returns {Record<string, { Type: "AWS::CloudWatch::Alarm", Properties: Record<string, unknown> }>}
 */
export function alarms(input) {
  const { serviceName, namespace, fanoutKinds, gateway } = input;
  const actions = {
    "Fn::If": [ALARM_TOPIC_CONDITION, [{ Ref: ALARM_TOPIC_PARAMETER }], { Ref: "AWS::NoValue" }],
  };
  const service = { Name: "service", Value: serviceName };
  /** @type {Record<string, { Type: "AWS::CloudWatch::Alarm", Properties: Record<string, unknown> }>} */
  const out = {};
  /** @param {string} id @param {string} name @param {string} description @param {Record<string, unknown>} properties */
  const alarm = (id, name, description, properties) => {
    out[id] = {
      Type: "AWS::CloudWatch::Alarm",
      Properties: {
        AlarmName: `${serviceName}-${name}`,
        AlarmDescription: description,
        ActionsEnabled: true,
        AlarmActions: actions,
        OKActions: actions,
        TreatMissingData: "notBreaching",
        ...properties,
      },
    };
  };
  /** A metric of ours (or AWS's) for a metric-math query. */
  const stat = (
    /** @type {string} */ id,
    /** @type {string} */ ns,
    /** @type {string} */ metric,
    /** @type {{ Name: string, Value: unknown }[]} */ dimensions,
    /** @type {string} */ statistic,
    /** @type {number} */ period,
  ) => ({
    Id: id,
    ReturnData: false,
    MetricStat: {
      Metric: { Namespace: ns, MetricName: metric, Dimensions: dimensions },
      Period: period,
      Stat: statistic,
    },
  });
  const period = ALARM_DEFAULTS.periodSeconds;
  const minimum = ALARM_DEFAULTS.errorRateMinRequests;
  /** A 5XX rate, 0 in a period with fewer than `minimum` requests. */
  const rate = (/** @type {string} */ label) => ({
    Id: "rate",
    Label: label,
    Expression: `IF(requests >= ${minimum}, errors / requests, 0)`,
    ReturnData: true,
  });

  const httpApi = [{ Name: "ApiId", Value: { Ref: "HttpApi" } }];
  alarm(
    "GatehouseAlarmHttpApi5xxRate",
    "http-5xx-rate",
    `Over ${ALARM_DEFAULTS.errorRate * 100}% of the HTTP API's requests answered 5XX in ${period / 60} min (at least ${minimum} requests): every route, system functions included.`,
    {
      ComparisonOperator: "GreaterThanThreshold",
      Threshold: ALARM_DEFAULTS.errorRate,
      EvaluationPeriods: 1,
      Metrics: [
        stat("requests", "AWS/ApiGateway", "Count", httpApi, "Sum", period),
        stat("errors", "AWS/ApiGateway", "5xx", httpApi, "Sum", period),
        rate("HTTP API 5XX rate"),
      ],
    },
  );
  for (const route of observedRoutes(input)) {
    const dims = [service, { Name: "route", Value: route.key }];
    alarm(
      `GatehouseAlarm${route.id}5xxRate`,
      `5xx-rate ${route.key}`,
      `Over ${route.errorRate * 100}% of ${route.key}'s requests answered 5XX in ${period / 60} min (at least ${minimum} requests).`,
      {
        ComparisonOperator: "GreaterThanThreshold",
        Threshold: route.errorRate,
        EvaluationPeriods: 1,
        Metrics: [
          stat("requests", namespace, "Requests", dims, "Sum", period),
          stat("errors", namespace, "Status5XX", dims, "Sum", period),
          rate(`${route.key} 5XX rate`),
        ],
      },
    );
    if (route.budgetMs <= 0) continue; // no upstream call and no budget given: nothing to hold it to
    alarm(
      `GatehouseAlarm${route.id}LatencyP99`,
      `latency-p99 ${route.key}`,
      `${route.key}'s p99 latency was over its ${route.budgetMs} ms budget in ${ALARM_DEFAULTS.latencyDatapoints} of ${ALARM_DEFAULTS.latencyEvaluationPeriods} periods of ${period / 60} min.`,
      {
        Namespace: namespace,
        MetricName: "Latency",
        Dimensions: dims,
        ExtendedStatistic: "p99",
        Period: period,
        Unit: "Milliseconds",
        ComparisonOperator: "GreaterThanThreshold",
        Threshold: route.budgetMs,
        EvaluationPeriods: ALARM_DEFAULTS.latencyEvaluationPeriods,
        DatapointsToAlarm: ALARM_DEFAULTS.latencyDatapoints,
      },
    );
  }
  const event = ALARM_DEFAULTS.eventPeriodSeconds;
  /** @param {string} metric @param {{ Name: string, Value: string }[]} dimensions */
  const any = (metric, dimensions) => ({
    Namespace: namespace,
    MetricName: metric,
    Dimensions: dimensions,
    Statistic: "Sum",
    Period: event,
    ComparisonOperator: "GreaterThanOrEqualToThreshold",
    Threshold: 1,
    EvaluationPeriods: 1,
  });
  alarm(
    "GatehouseAlarmLimiterDegradedAdmission",
    "limiter-degraded-admission",
    "A request was admitted by an in-memory limiter: the usage table was unreachable (limits.onStoreFailure: open), so limits held per container only.",
    any("LimiterDegradedAdmission", [service]),
  );
  for (const [name, upstream] of Object.entries(gateway.upstreams)) {
    if (upstream.kind !== "http" && upstream.kind !== "lambda") continue;
    alarm(
      `GatehouseAlarmCircuitOpened${pascal(name)}`,
      `circuit-opened ${name}`,
      `A circuit of upstream ${name} opened (consecutive failures of a target): its traffic is refused with 503 or sent to its other targets.`,
      any("CircuitOpened", [service, { Name: "upstream", Value: name }]),
    );
  }
  alarm(
    "GatehouseAlarmFanoutFailed",
    "fanout-failed",
    `At least ${ALARM_DEFAULTS.fanoutFailures} WebSocket send(s) failed in ${event / 60} min (not gone connections: those are cleaned up).`,
    {
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
      Threshold: ALARM_DEFAULTS.fanoutFailures,
      EvaluationPeriods: 1,
      Metrics: [
        ...fanoutKinds.map((kind, index) =>
          stat(
            `failed${index}`,
            namespace,
            "FanoutFailed",
            [service, { Name: "kind", Value: kind }],
            "Sum",
            event,
          ),
        ),
        {
          Id: "failed",
          Label: "failed sends, every kind",
          Expression: fanoutKinds.map((_, index) => `failed${index}`).join(" + "),
          ReturnData: true,
        },
      ],
    },
  );
  // Copies without shared objects: `serverless print` shows an object met twice as a `$ref`.
  return JSON.parse(JSON.stringify(out));
}

/**
 * Everything this module adds to the template: the dashboard, the alarms, and the parameter and
 * condition that give them actions.
 * @param {ObservabilityInput} input
 */
export function observability(input) {
  return {
    Parameters: {
      [ALARM_TOPIC_PARAMETER]: {
        Type: "String",
        Default: input.alarmTopicArn,
        AllowedPattern: "^(none|arn:[^:]+:sns:[^:]+:[0-9]{12}:.+)$",
        Description: "SNS topic ARN the Gatehouse alarms notify, or none (params.<stage>.alarmTopicArn)",
      },
    },
    Conditions: {
      [ALARM_TOPIC_CONDITION]: { "Fn::Not": [{ "Fn::Equals": [{ Ref: ALARM_TOPIC_PARAMETER }, "none"] }] },
    },
    Resources: {
      [DASHBOARD_ID]: {
        Type: "AWS::CloudWatch::Dashboard",
        Properties: { DashboardName: input.serviceName, DashboardBody: dashboardBodySub(input) },
      },
      ...alarms(input),
    },
  };
}
