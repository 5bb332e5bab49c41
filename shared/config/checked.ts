import definition from "../../gateway.config.ts";
import { type GatewayConfig, loadGateway } from "./gateway.ts";

/**
 * The stage's gateway config, as every function gets it at cold start.
 *
 * In a bundle, this module is replaced by the config as the build checked it: the build
 * (`checkedGatewayConfig` in esbuild.config.cjs, which serverless-esbuild, the bench and the bundle
 * tests all use) runs `loadGateway` for the stage it packages, with each function's environment from
 * serverless.yml, and writes the result into the bundle as JSON. A cold start then parses no schema
 * and loads no validation library, and a bundle asked for another stage than the one it was built
 * for refuses to start. Run from source (the tests, the CLIs), the config is loaded and checked here.
 *
 * Example: `const gateway = gatewayAtStart(env.stage);` at a handler's module scope.
 */
export function gatewayAtStart(stage: string): GatewayConfig {
  return loadGateway(definition, stage);
}
