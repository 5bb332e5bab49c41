import { Ajv } from "ajv";
import { BODY_SCHEMA_OPTIONS } from "../middleware/request-body.ts";
import { jmespathProblem } from "../upstream/transform.ts";
import type { ConfigProblem } from "./fields.ts";

/**
 * The config check's compile of what the gateway compiles only on a route's first use: every JMESPath
 * expression (`request.body`, `response.body`, `aggregate.merge`) and every `body.schema`. It runs in
 * `loadGateway` (the tests, the CLIs and `npm run package`), so a typo fails the build, not a request;
 * the functions get the checked config from the build (./checked.ts), and so never load Powertools'
 * JMESPath parser or ajv at cold start. It reads the definition as written, so its
 * problems come out with the shape problems, whatever else is wrong.
 */
export function expressionProblems(input: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const routes = objectAt(input, "routes");
  if (!routes) return problems;
  const ajv = new Ajv(BODY_SCHEMA_OPTIONS);
  const expression = (where: string, what: string, value: unknown) => {
    if (typeof value !== "string" || value === "") return; // the shape check names these
    const problem = jmespathProblem(value);
    if (problem) problems.push(`${where}: ${what} is not valid JMESPath: ${problem}; fix the expression`);
  };
  const target = (where: string, value: unknown) => {
    expression(`${where}.request.body`, "request.body", objectAt(value, "request")?.body);
    expression(`${where}.response.body`, "response.body", objectAt(value, "response")?.body);
  };
  for (const [key, route] of Object.entries(routes)) {
    const proxy = objectAt(route, "proxy");
    if (proxy) {
      target(`routes.${key}.proxy`, proxy);
      for (const [version, versionTarget] of Object.entries(objectAt(proxy, "versions") ?? {}))
        target(`routes.${key}.proxy.versions.${version}`, versionTarget);
      target(`routes.${key}.proxy.canary`, proxy.canary);
    }
    expression(`routes.${key}.aggregate.merge`, "aggregate.merge", objectAt(route, "aggregate")?.merge);
    const schema = objectAt(objectAt(route, "body"), "schema");
    if (schema) {
      try {
        ajv.compile(schema);
      } catch (error) {
        problems.push(
          `routes.${key}.body.schema: not a valid JSON Schema (${(error as Error).message}); fix the schema`,
        );
      }
    }
  }
  return problems;
}

const objectAt = (value: unknown, member: string): Record<string, unknown> | undefined => {
  const found =
    typeof value === "object" && value !== null ? (value as Record<string, unknown>)[member] : undefined;
  return typeof found === "object" && found !== null && !Array.isArray(found)
    ? (found as Record<string, unknown>)
    : undefined;
};
