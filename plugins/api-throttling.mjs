// @ts-check
// API Gateway's own throttling, written into the stages the framework compiles: the stage-wide rate
// and burst of the HTTP API and of the WebSocket API (per-stage params, `custom.throttling`), and
// per-route limits for the HTTP routes whose gateway config says `throttle`. API Gateway refuses
// past them with its own 429 before any function runs, so a flood costs no invocations; the exact
// per-caller limits are the usage plans (`limit`), counted by the functions.

import { pathToFileURL } from "node:url";

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

export default class ApiThrottling {
  /** @param {any} serverless @param {Record<string, unknown>} options */
  constructor(serverless, options) {
    this.serverless = serverless;
    this.options = options;
    this.hooks = { "after:package:compileEvents": () => this.apply() };
  }

  async apply() {
    const service = this.serverless.service;
    const resources = service.provider.compiledCloudFormationTemplate.Resources;
    const throttling = service.custom?.throttling ?? {};
    const stage = service.provider.stage;
    // The gateway config is TypeScript: loaded through tsx, as the tests and scripts load it.
    const { tsImport } = await import("tsx/esm/api");
    const root = pathToFileURL(`${this.serverless.serviceDir}/`).href;
    const { loadGateway } = await tsImport("./shared/config/gateway.ts", root);
    const { default: definition } = await tsImport("./gateway.config.ts", root);
    const gateway = loadGateway(definition, stage);

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
        const naming = this.serverless.getProvider("aws").naming;
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
}
