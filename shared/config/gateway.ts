import { expressionProblems } from "./expressions.ts";
import { type GatewayConfig, type GatewayDefinition, parseGateway } from "./parse.ts";

/**
 * The gateway config as the build and the tools load it. The schema, the cross-field checks and the
 * cold-start loader (`loadGatewayAtStart`) live in ./parse.ts, which loads neither Powertools'
 * JMESPath nor ajv; this module adds the compile of every expression and body schema.
 */

export * from "./parse.ts";

/**
 * Validates a definition for a stage, all of it: the shapes, the cross-field checks, and a compile of
 * every JMESPath expression and body schema. Throws `GatewayConfigError` naming every bad field. The
 * tests, the CLIs and `npm run package` load the config with this; the functions with `loadGatewayAtStart`.
 */
export function loadGateway(definition: GatewayDefinition, stage: string): GatewayConfig {
  return parseGateway(definition, stage, expressionProblems);
}
