import { expressionProblems } from "./expressions.ts";
import { type GatewayConfig, type GatewayDefinition, parseGateway } from "./parse.ts";

/**
 * The gateway config as the build and the tools load it. The schema and the cross-field checks live
 * in ./parse.ts; this module adds the compile of every expression and body schema. Functions get the
 * result of this check, made when building, through ./checked.ts.
 */

export * from "./parse.ts";

/**
 * Validates a definition for a stage, all of it: the shapes, the cross-field checks, and a compile of
 * every JMESPath expression and body schema. Throws `GatewayConfigError` naming every bad field. The
 * tests, the CLIs and `npm run package` load the config with this; the functions get its result (./checked.ts).
 */
export function loadGateway(definition: GatewayDefinition, stage: string): GatewayConfig {
  return parseGateway(definition, stage, expressionProblems);
}
