import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadGateway, type RouteConfig, routeWorstCaseMs } from "#shared/config/gateway.ts";
import { METRICS_NAMESPACE } from "#shared/observability/metrics.ts";
import { FANOUT_KINDS } from "#shared/ws/fanout.ts";
import definition from "../../gateway.config.ts";
import {
  ALARM_DEFAULTS,
  ALARM_TOPIC_CONDITION,
  ALARM_TOPIC_PARAMETER,
  alarms,
  DASHBOARD_ID,
  dashboardBody,
  dashboardBodySub,
  observability,
  observedRoutes,
} from "../../plugins/observability.mjs";
import { ROOT } from "../support/serverless.ts";

const gateway = loadGateway(definition, "prod");
const input = {
  gateway,
  serviceName: "gatehouse-prod",
  stage: "prod",
  namespace: METRICS_NAMESPACE,
  functionName: (key: string) => `gatehouse-prod-${key}`,
  worstCaseMs: (route: unknown) => routeWorstCaseMs(gateway, route as RouteConfig),
  fanoutKinds: FANOUT_KINDS,
  alarmTopicArn: "none",
};
const gatewayRoutes = Object.entries(gateway.routes)
  .filter(([, route]) => route.kind === "proxy" || route.kind === "aggregate")
  .map(([key]) => key);

type Widget = { type: string; properties: { title?: string; metrics?: unknown[]; annotations?: unknown } };
const widgets = () => dashboardBody(input).widgets as Widget[];
const titled = (title: string) => widgets().find((widget) => widget.properties.title === title);
type Alarm = { Properties: Record<string, unknown> };
const byName = (name: string): Alarm | undefined =>
  Object.values(alarms(input)).find((alarm) => alarm.Properties.AlarmName === `gatehouse-prod-${name}`);

/** Every string a metric list names (metric names, expressions), flattened. */
const metricNames = (value: unknown): string[] =>
  Array.isArray(value)
    ? value.flatMap(metricNames)
    : value && typeof value === "object"
      ? Object.values(value).flatMap(metricNames)
      : typeof value === "string"
        ? [value]
        : [];

/** The source of the functions: every metric the dashboard and alarms read must be published there. */
function sources(): string {
  const read = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) =>
      entry.isDirectory()
        ? read(join(dir, entry.name))
        : entry.name.endsWith(".ts")
          ? [readFileSync(join(ROOT, dir, entry.name), "utf8")]
          : [],
    );
  return ["shared", "handlers", "authorizers"].flatMap(read).join("\n");
}

describe("the dashboard and alarms plugins/observability.mjs generates from gateway.config.ts", () => {
  it("watches the routes the gateway function answers, and no system or preflight route", () => {
    assert.deepEqual(
      observedRoutes(input).map((route: { key: string }) => route.key),
      gatewayRoutes,
    );
    assert.ok(gatewayRoutes.length > 10);
  });

  it("draws one widget per gateway route: requests, 4XX, 5XX, p50 and p99, with the budget line", () => {
    for (const key of gatewayRoutes) {
      const widget = titled(key);
      assert.ok(widget, key);
      const names = metricNames(widget.properties.metrics);
      for (const name of ["Requests", "Status4XX", "Status5XX", "Latency", "p50", "p99", key]) {
        assert.ok(names.includes(name), `${key}: ${name}`);
      }
      const budget = routeWorstCaseMs(gateway, gateway.routes[key] as RouteConfig);
      if (budget > 0) {
        assert.deepEqual(widget.properties.annotations, {
          horizontal: [{ label: "p99 budget", value: budget, yAxis: "right" }],
        });
      }
    }
  });

  it("draws each system function, 429s by plan, the limiter, circuits, cache ratio, denials, WebSocket and fan-out", () => {
    for (const key of new Set(Object.values(gateway.routes).flatMap((route) => route.handler ?? []))) {
      assert.ok(metricNames(titled(key)?.properties.metrics).includes(`gatehouse-prod-${key}`), key);
    }
    const expected: Record<string, string[]> = {
      "429s by plan (LimitRefused)": ["LimitRefused", "plan"],
      "Usage table: degraded admissions and refusals, timeouts, unavailable, throttled": [
        "LimiterDegradedAdmission",
        "LimiterDegradedRefusal",
      ],
      "Circuits opened, by upstream and target": ["CircuitOpened", "upstream,target"],
      "Cache hit ratio (%), by route": ["CacheHit", "CacheMiss", "GET /v1/prices"],
      "Authorizer denials, by authorizer and reason": ["AuthorizerDenied", "authorizer,reason"],
      "WebSocket: connections, messages, errors": ["ConnectCount", "ConnectionsRefused"],
      "Fan-out: delivered, gone, failed, skipped, by kind": [
        "FanoutDelivered",
        "FanoutGone",
        "FanoutFailed",
        "FanoutSkipped",
        ...FANOUT_KINDS,
      ],
    };
    for (const [title, words] of Object.entries(expected)) {
      const text = metricNames(titled(title)?.properties.metrics).join(" ");
      for (const word of words) assert.ok(text.includes(word), `${title}: ${word}`);
    }
  });

  it("reads only metrics the functions publish, in the namespace they publish them to", () => {
    const code = sources();
    const ours = new Set<string>();
    for (const widget of widgets()) {
      for (const line of (widget.properties.metrics ?? []) as unknown[]) {
        if (Array.isArray(line) && line[0] === METRICS_NAMESPACE) ours.add(String(line[1]));
        const search = (line as { expression?: string }).expression?.match(/MetricName="(\w+)"/);
        if (search?.[1]) ours.add(search[1]);
      }
    }
    for (const alarm of Object.values(alarms(input)) as Alarm[]) {
      const { Namespace, MetricName, Metrics } = alarm.Properties as {
        Namespace?: string;
        MetricName?: string;
        Metrics?: { MetricStat?: { Metric: { Namespace: string; MetricName: string } } }[];
      };
      if (Namespace === METRICS_NAMESPACE && MetricName) ours.add(MetricName);
      for (const query of Metrics ?? []) {
        if (query.MetricStat?.Metric.Namespace === METRICS_NAMESPACE)
          ours.add(query.MetricStat.Metric.MetricName);
      }
    }
    assert.ok(ours.size > 15, [...ours].join(" "));
    for (const name of ours) assert.ok(code.includes(`"${name}"`), `${name} is published nowhere`);
  });

  it("alarms on each gateway route's 5XX rate and p99 over its budget, and on the HTTP API's 5XX rate", () => {
    for (const key of gatewayRoutes) {
      const rate = byName(`5xx-rate ${key}`);
      assert.equal(rate?.Properties.Threshold, ALARM_DEFAULTS.errorRate, key);
      const budget = routeWorstCaseMs(gateway, gateway.routes[key] as RouteConfig);
      const latency = byName(`latency-p99 ${key}`);
      if (budget === 0) assert.equal(latency, undefined, key);
      else {
        assert.equal(latency?.Properties.Threshold, budget, key);
        assert.equal(latency?.Properties.ExtendedStatistic, "p99");
      }
    }
    const api = byName("http-5xx-rate");
    assert.match(JSON.stringify(api?.Properties.Metrics), /IF\(requests >= 10, errors \/ requests, 0\)/);
  });

  it("takes a route's own alarm thresholds from the config when it gives them", () => {
    const key = "GET /v1/users";
    const route = { ...gateway.routes[key], alarms: { latencyP99Ms: 250, errorRate: 0.01 } } as RouteConfig;
    const tuned = alarms({ ...input, gateway: { ...gateway, routes: { ...gateway.routes, [key]: route } } });
    const named = (name: string) =>
      (Object.values(tuned) as Alarm[]).find(
        (alarm) => alarm.Properties.AlarmName === `gatehouse-prod-${name}`,
      );
    assert.equal(named(`latency-p99 ${key}`)?.Properties.Threshold, 250);
    assert.equal(named(`5xx-rate ${key}`)?.Properties.Threshold, 0.01);
  });

  it("alarms on any degraded admission, a circuit opening per upstream, and failed sends of every fan-out kind", () => {
    assert.equal(byName("limiter-degraded-admission")?.Properties.Threshold, 1);
    for (const name of Object.keys(gateway.upstreams)) {
      const alarm = byName(`circuit-opened ${name}`);
      assert.deepEqual(alarm?.Properties.Dimensions, [
        { Name: "service", Value: "gatehouse-prod" },
        { Name: "upstream", Value: name },
      ]);
    }
    const fanout = JSON.stringify(byName("fanout-failed")?.Properties.Metrics);
    for (const kind of FANOUT_KINDS) assert.ok(fanout.includes(`"Value":"${kind}"`), kind);
  });

  it("notifies the stage's SNS topic only when one is given, through a stack parameter and a condition", () => {
    const generated = observability({ ...input, alarmTopicArn: "arn:aws:sns:eu-west-1:123456789012:ops" });
    assert.equal(
      generated.Parameters[ALARM_TOPIC_PARAMETER].Default,
      "arn:aws:sns:eu-west-1:123456789012:ops",
    );
    assert.deepEqual(generated.Conditions[ALARM_TOPIC_CONDITION], {
      "Fn::Not": [{ "Fn::Equals": [{ Ref: ALARM_TOPIC_PARAMETER }, "none"] }],
    });
    for (const alarm of Object.values(alarms(input)) as Alarm[]) {
      assert.deepEqual(alarm.Properties.AlarmActions, {
        "Fn::If": [ALARM_TOPIC_CONDITION, [{ Ref: ALARM_TOPIC_PARAMETER }], { Ref: "AWS::NoValue" }],
      });
    }
    assert.equal(generated.Resources[DASHBOARD_ID].Type, "AWS::CloudWatch::Dashboard");
  });

  it("gives the dashboard body to Fn::Sub with only the region and the APIs' ids as variables", () => {
    const odd = { ...gateway.routes["GET /v1/users"], kind: "proxy" } as RouteConfig;
    const body = dashboardBodySub({
      ...input,
      gateway: { ...gateway, routes: { [["GET /a/$", "{x}"].join("")]: odd } },
    })["Fn::Sub"];
    const variables = [...body.matchAll(/\$\{([^!][^}]*)\}/g)].map((match) => match[1]);
    assert.deepEqual([...new Set(variables)].sort(), ["AWS::Region", "HttpApi", "WebsocketsApi"]);
    assert.ok(body.includes(["GET /a/$", "{!x}"].join("")));
    assert.doesNotThrow(() => JSON.parse(body));
  });
});
