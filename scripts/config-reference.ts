import { type ConversionConfig, type JsonSchema, toJsonSchema } from "@valibot/to-json-schema";
import { CONFIG_CHECKS, GatewayConfigSchema } from "#shared/config/gateway.ts";
import { ROUTE_INPUT_SCHEMAS, RouteShape } from "#shared/config/routes.ts";

/**
 * The gateway config's reference, generated from its valibot schema: a JSON Schema
 * (docs/gateway.schema.json) and a Markdown page (docs/configuration.md). `npm run config:docs`
 * writes both; tests/unit/config-reference.test.ts fails when the committed files differ.
 */

export const SCHEMA_FILE = "docs/gateway.schema.json";
export const DOCS_FILE = "docs/configuration.md";

/** Actions JSON Schema has no word for; their messages become a `$comment` so readers still learn them. */
const CHECK_ACTIONS = new Set(["check", "raw_check"]);

const conversion: ConversionConfig = {
  // The input type: what a team writes (parsing adds `kind` to routes and fills in defaults).
  typeMode: "input",
  // Anything the converter cannot express fails the generation, except what is handled below.
  errorMode: "throw",
  definitions: ROUTE_INPUT_SCHEMAS,
  overrideSchema({ valibotSchema }) {
    // A route is dispatched on the one member it has (proxy, aggregate or handler).
    if (valibotSchema === RouteShape) {
      return { oneOf: Object.keys(ROUTE_INPUT_SCHEMAS).map((name) => ({ $ref: `#/$defs/${name}` })) };
    }
    // A member this kind of route may not have: say why, as the error does.
    if (
      valibotSchema.type === "never" &&
      "message" in valibotSchema &&
      typeof valibotSchema.message === "string"
    ) {
      return { not: {}, description: `${valibotSchema.message}.` };
    }
    return undefined;
  },
  overrideAction({ valibotAction, jsonSchema }) {
    if (!CHECK_ACTIONS.has(valibotAction.type)) return undefined;
    const message =
      "message" in valibotAction && typeof valibotAction.message === "string"
        ? valibotAction.message
        : undefined;
    if (!message) return { ...jsonSchema, $comment: jsonSchema.$comment ?? "checked when loaded" };
    return {
      ...jsonSchema,
      $comment: jsonSchema.$comment
        ? `${jsonSchema.$comment}; ${message}`
        : `checked when loaded: ${message}`,
    };
  },
};

function configJsonSchema(): JsonSchema {
  const schema = toJsonSchema(GatewayConfigSchema, conversion);
  return {
    $schema: schema.$schema,
    title: "Gatehouse gateway config",
    description:
      "The object gateway.config.ts's defineGateway(({ stage }) => ({ ... })) returns for a stage. Generated from shared/config by npm run config:docs; do not edit.",
    ...schema,
  };
}

type Schema = JsonSchema & Record<string, unknown>;
interface Row {
  field: string;
  type: string;
  required: boolean;
  default: string;
  description: string;
}

/** Placeholders for the keys of a map, by the map's field name. */
const KEY_NAMES: Record<string, string> = {
  upstreams: "<name>",
  routes: '<"METHOD /path">',
  plans: "<plan>",
  versions: "<version>",
  calls: "<call>",
  status: "<status>",
  rename: "<from>",
  set: "<name>",
  schema: "<keyword>",
};

const code = (text: string) => (text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``);
const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");
const refName = (ref: string) => ref.replace(/^#\/\$defs\//, "");
const anchor = (title: string) =>
  title
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replaceAll(" ", "-");
const defTitle = (name: string) =>
  name.replace(/([a-z])([A-Z])/g, "$1 $2").replace(/^./, (c) => c.toUpperCase());

/** The `kind` a variant's option is told apart by, if it has one. */
const kindOf = (schema: Schema): string | undefined => {
  const kind = (schema.properties as Record<string, Schema> | undefined)?.kind?.const;
  return typeof kind === "string" ? code(kind) : undefined;
};

function range(schema: Schema, what: string): string {
  const min = schema.minimum ?? schema.minItems ?? schema.minLength;
  const max = schema.maximum ?? schema.maxItems ?? schema.maxLength;
  if (min !== undefined && max !== undefined) return ` (${min} to ${max}${what})`;
  if (min !== undefined) return ` (at least ${min}${what})`;
  if (max !== undefined) return ` (at most ${max}${what})`;
  return "";
}

function typeOf(schema: Schema): string {
  if (typeof schema.$ref === "string") {
    const name = refName(schema.$ref);
    return `[${defTitle(name)}](#${anchor(defTitle(name))})`;
  }
  if ("const" in schema) return code(JSON.stringify(schema.const));
  if (Array.isArray(schema.enum)) return schema.enum.map((value) => code(JSON.stringify(value))).join(" | ");
  const options = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (options)
    return options
      .map((option) => (kindOf(option) ? `object (kind ${kindOf(option)})` : typeOf(option)))
      .join(" or ");
  if (schema.not && Object.keys(schema.not).length === 0) return "not allowed";
  switch (schema.type) {
    case "array": {
      const items = schema.items as Schema;
      const itemType = items.type === "object" || items.oneOf ? "object" : typeOf(items);
      return `array of ${itemType}${range(schema, "")}`;
    }
    case "object":
      return schema.additionalProperties && typeof schema.additionalProperties === "object"
        ? "map"
        : "object";
    case "integer":
    case "number":
      return `${schema.type}${range(schema, "")}`;
    case "string":
      return `string${range(schema, " characters")}`;
    default:
      return String(schema.type ?? "any");
  }
}

function describeField(schema: Schema): string {
  const parts: string[] = [];
  if (typeof schema.description === "string") parts.push(schema.description);
  for (const option of ((schema.oneOf ?? schema.anyOf) as Schema[] | undefined) ?? []) {
    if (kindOf(option) && typeof option.description === "string")
      parts.push(`${kindOf(option)}: ${option.description}`);
  }
  if (typeof schema.pattern === "string") parts.push(`Pattern ${code(schema.pattern)}.`);
  const keys = schema.propertyNames as Schema | undefined;
  if (typeof keys?.pattern === "string") parts.push(`Keys match ${code(keys.pattern)}.`);
  if (schema.format) parts.push(`Format: ${schema.format}.`);
  if (typeof schema.$comment === "string") parts.push(`${schema.$comment.replace(/^checked/, "Checked")}.`);
  return parts.join(" ");
}

/** Rows for a field and everything under it; `$ref`s to route kinds are linked, not expanded. */
function rows(schema: Schema, field: string, required: boolean, out: Row[], withOwnRow = true): Row[] {
  if (withOwnRow) {
    out.push({
      field,
      type: typeOf(schema),
      required,
      default: schema.default === undefined ? "" : code(JSON.stringify(schema.default)),
      description: describeField(schema),
    });
  }
  if (typeof schema.$ref === "string") return out;
  const options = ((schema.oneOf ?? schema.anyOf) as Schema[] | undefined) ?? [];
  const objectOptions = options.filter((option) => option.type === "object");
  for (const option of objectOptions) {
    const kind = (option.properties as Record<string, Schema> | undefined)?.kind?.const;
    const label = objectOptions.length > 1 && kind !== undefined ? `{kind: ${String(kind)}}` : "";
    rows(option, field + label, required, out, false);
  }
  const properties = schema.properties as Record<string, Schema> | undefined;
  if (properties) {
    const requiredNames = new Set((schema.required as string[] | undefined) ?? []);
    for (const [name, property] of Object.entries(properties)) {
      // A member another kind has: said once, in the kind's table, as "not allowed".
      rows(property, field === "" ? name : `${field}.${name}`, requiredNames.has(name), out);
    }
  }
  const items = schema.items as Schema | undefined;
  if (schema.type === "array" && items && (items.type === "object" || items.oneOf)) {
    rows(items, `${field}[]`, true, out, false);
  }
  const values = schema.additionalProperties as Schema | undefined;
  if (values && typeof values === "object" && Object.keys(values).length > 0) {
    const last = field.split(".").pop() ?? "";
    rows(values, `${field}.${KEY_NAMES[last] ?? "<key>"}`, true, out);
  }
  return out;
}

function table(list: Row[]): string {
  const lines = [
    "| Field | Type | Required | Default | Description |",
    "| --- | --- | --- | --- | --- |",
    ...list.map(
      (row) =>
        `| ${code(row.field)} | ${cell(row.type)} | ${row.required ? "yes" : ""} | ${cell(row.default)} | ${cell(row.description)} |`,
    ),
  ];
  return lines.join("\n");
}

const INTRO = `# Gateway configuration reference

<!-- Generated by \`npm run config:docs\` from shared/config/*.ts; edit the schemas' descriptions, not this file. -->

\`gateway.config.ts\` exports \`defineGateway(({ stage }) => ({ ... }))\`: a function of the stage. This
reference, and the JSON Schema beside it (${code(SCHEMA_FILE)}), describe the **object that function
returns** for one stage. The config is checked when the project builds (tests, \`npm run package\`,
\`npm start\`); every error names the field's path and what would fix it. Each function's bundle holds
the checked config of the stage it was packaged for, evaluated with that function's environment from
serverless.yml: a cold start parses nothing, and a bundle started as another stage refuses to start.
A value the config reads from the environment is therefore the one serverless.yml gives when packaging.

In TypeScript, \`defineGateway\` already types the object (completion and checks in any editor). The
JSON Schema serves tools that read JSON or YAML: point their \`$schema\` (or VS Code's
\`json.schemas\`) at ${code(SCHEMA_FILE)}.

A field with a default may be left out; the default is filled in when the config is loaded.

## What the schema cannot say

JSON Schema describes each field on its own. What Gatehouse checks beyond that:

- **Checks on a field's value** that have no JSON Schema keyword (an https:// issuer, a parseable
  CIDR block or JMESPath expression, a header the gateway reserves, an upstream that is no metadata
  address). They are in the schema as \`$comment\` and below as "Checked when loaded".
- **A route's kind.** A route is a proxy, aggregate or handler route by the one member it has
  (\`proxy\`, \`aggregate\` or \`handler\`); loading adds \`kind\` to the parsed route. The schema says
  it as a \`oneOf\` of the three; members another kind has are "not allowed".
- **Checks across fields**, one set per concern:
`;

/** docs/configuration.md: one section per top-level member, one per route kind. */
function configMarkdown(schema: JsonSchema = configJsonSchema()): string {
  const root = schema as Schema;
  const properties = root.properties as Record<string, Schema>;
  const requiredNames = new Set((root.required as string[] | undefined) ?? []);
  const sections = [INTRO + CONFIG_CHECKS.map(({ concern, says }) => `  - ${concern}: ${says}.`).join("\n")];
  for (const [name, property] of Object.entries(properties)) {
    const intro = typeof property.description === "string" ? `${property.description}\n\n` : "";
    sections.push(`## ${name}\n\n${intro}${table(rows(property, name, requiredNames.has(name), []))}`);
  }
  for (const [name, definition] of Object.entries((root.$defs ?? {}) as Record<string, Schema>)) {
    const title = defTitle(name);
    const intro = typeof definition.description === "string" ? `${definition.description}\n\n` : "";
    sections.push(
      `## ${title}\n\n${intro}${table(rows(definition, "", true, [], false).map((row) => ({ ...row, field: row.field.replace(/^\./, "") })))}`,
    );
  }
  return `${sections.join("\n\n")}\n`;
}

/** Both generated files, as they should be committed. */
export function configReference(): Record<string, string> {
  const schema = configJsonSchema();
  return {
    [SCHEMA_FILE]: `${JSON.stringify(schema, null, 2)}\n`,
    [DOCS_FILE]: configMarkdown(schema),
  };
}
