// @ts-check
// API Gateway's own throttling, written into the stages the framework compiles: the stage-wide rate
// and burst of the HTTP API and of the WebSocket API (per-stage params, `custom.throttling`), and
// per-route limits for the HTTP routes whose gateway config says `throttle`. API Gateway refuses
// past them with its own 429 before any function runs, so a flood costs no invocations; the exact
// per-caller limits are the usage plans (`limit`), counted by the functions. plugins/gateway-wiring.mjs
// applies it.

/**
 * Route settings for a stage: `{ ThrottlingRateLimit, ThrottlingBurstLimit }` per route key.
 * @param {{ routes: Record<string, { throttle?: { rateLimit: number, burstLimit: number } }> }} gateway
 * @returns {Record<string, { ThrottlingRateLimit: number, ThrottlingBurstLimit: number }>}
 */
export function routeThrottling(gateway) {
  /** @type {Record<string, { ThrottlingRateLimit: number, ThrottlingBurstLimit: number }>} */
  const settings = {};
  for (const [key, route] of Object.entries(gateway.routes)) {
    if (!route.throttle) continue;
    settings[key] = {
      ThrottlingRateLimit: route.throttle.rateLimit,
      ThrottlingBurstLimit: route.throttle.burstLimit,
    };
  }
  return settings;
}

/**
 * A stage's default throttling from `{ rate, burst }` (numbers, or numeric strings as params give).
 * @param {{ rate?: unknown, burst?: unknown } | undefined} limits
 * @param {string} where for the error message
 */
export function stageThrottling(limits, where) {
  const rate = Number(limits?.rate);
  const burst = Number(limits?.burst);
  if (!Number.isFinite(rate) || rate < 0 || !Number.isInteger(burst) || burst < 0) {
    throw new Error(`${where}: rate (requests per second) and burst (a whole number) are required`);
  }
  return { ThrottlingRateLimit: rate, ThrottlingBurstLimit: burst };
}

/**
 * Writes the throttling into the stages the framework compiled (after `package:compileEvents`).
 * plugins/gateway-wiring.mjs calls it with the gateway config it loaded.
 * @param {any} serverless
 * @param {{ routes: Record<string, { throttle?: { rateLimit: number, burstLimit: number } }> }} gateway
 */
export function applyThrottling(serverless, gateway) {
  const service = serverless.service;
  const resources = service.provider.compiledCloudFormationTemplate.Resources;
  const throttling = service.custom?.throttling ?? {};

  const http = resources.HttpApiStage?.Properties;
  if (http) {
    http.DefaultRouteSettings = {
      ...http.DefaultRouteSettings,
      ...stageThrottling(throttling.http, "custom.throttling.http"),
    };
    const routes = routeThrottling(gateway);
    if (Object.keys(routes).length > 0) {
      http.RouteSettings = { ...http.RouteSettings, ...routes };
      // A stage's route settings name routes that must exist first, or CloudFormation refuses them.
      const naming = serverless.getProvider("aws").naming;
      const stage = resources.HttpApiStage;
      stage.DependsOn = [
        ...new Set([
          ...[stage.DependsOn ?? []].flat(),
          ...Object.keys(routes).map((key) => naming.getHttpApiRouteLogicalId(key)),
        ]),
      ];
    }
  }
  const websocket = resources.WebsocketsDeploymentStage?.Properties;
  if (websocket) {
    websocket.DefaultRouteSettings = {
      ...websocket.DefaultRouteSettings,
      ...stageThrottling(throttling.websocket, "custom.throttling.websocket"),
    };
  }
}
