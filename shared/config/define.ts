import type { GatewayConfigInput } from "./parse.ts";

/**
 * `defineGateway`, in a module of its own that loads nothing: gateway.config.ts imports it, so a
 * function that needs no more than the config as written (whoami's route check) does not load the
 * schema (valibot, ipaddr.js and every concern's checks).
 */

/**
 * What a config module receives: the stage it is loaded for. Part of `defineGateway`'s signature,
 * for a gateway.config.ts that names it; nothing in the project does.
 * @public
 */
export interface GatewayContext {
  stage: string;
}
export type GatewayDefinition = (context: GatewayContext) => GatewayConfigInput;

/**
 * Declares the gateway. Example:
 * `export default defineGateway(({ stage }) => ({ auth: { issuers: [...] }, routes: { "GET /health": { auth: "public", handler: "health" } } }))`
 */
export function defineGateway(definition: GatewayDefinition): GatewayDefinition {
  return definition;
}
