/**
 * OpenAPI in: an existing service's OpenAPI 3.0 or 3.1 document → gateway proxy routes, one per
 * operation, each `"METHOD /path"` proxied to the same path on one upstream. A pure function; the
 * CLI (scripts/openapi-import.ts) reads the spec and writes the routes into the config.
 *
 * Mapped: the path and its parameters, the JSON request body's schema (local `$ref`s inlined, 3.0's
 * `nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum` and `example` converted to the JSON
 * Schema the gateway's validator takes) and media types, and security: http bearer, oauth2 and
 * openIdConnect → `{ jwt: { scopes } }`, apiKey in a header → `{ apiKey: { scopes } }`, none →
 * `"public"`. Everything else is listed in `unmapped`, never dropped in silence: an operation whose
 * auth cannot be expressed (http basic, apiKey in query or cookie, mutualTLS, alternatives or
 * combinations of schemes) or whose path the route key syntax cannot express is left out whole;
 * smaller losses (a format the validator does not check, a non-JSON body's schema, parameters the
 * gateway passes through unchecked, callbacks, webhooks) keep the route and are listed.
 *
 * Example: `importOpenApi(yaml.parse(text), { upstream: "inventory", existing: new Set(["GET /health"]) })`.
 */

type Json = Record<string, unknown>;

interface ImportedRoute {
  auth: "public" | { jwt: { scopes: string[] } } | { apiKey: { scopes: string[] } };
  limit?: Record<string, never>;
  proxy: { upstream: string; path: string };
  body?: { maxBytes: number; contentTypes: string[]; schema?: Json };
}

export interface ImportResult {
  /** Route key → route, in the spec's order. */
  routes: Record<string, ImportedRoute>;
  /** What was not mapped, one line each: `<where>: <what> — <why or what was done>`. */
  unmapped: string[];
  /** Route keys the config already has: left out, never overwritten. */
  conflicts: string[];
  /** The spec's title and version, and its first server's URL when it is an absolute http(s) URL. */
  info: { title: string; version: string; server?: string };
}

export class OpenApiImportError extends Error {
  override readonly name = "OpenApiImportError";
}

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json$/i;
const MEDIA_TYPE = /^[\w.+*-]+\/[\w.+*-]+$/;
const PARAM_SEGMENT = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const LITERAL_SEGMENT = /^[A-Za-z0-9_.~-]*$/;
/** The default `body.maxBytes` of the config (1 MiB), written out so the import says it. */
const IMPORTED_MAX_BYTES = 1_048_576;
/** Keywords of OpenAPI's schema object that are not JSON Schema validation (dropped quietly: annotations). */
const ANNOTATIONS_30 = new Set(["xml", "externalDocs", "discriminator"]);

/** JSON Schema keywords whose value is a schema or a list of schemas. */
const SUBSCHEMAS = new Set([
  "items",
  "prefixItems",
  "additionalItems",
  "contains",
  "additionalProperties",
  "propertyNames",
  "unevaluatedItems",
  "unevaluatedProperties",
  "allOf",
  "anyOf",
  "oneOf",
  "not",
  "if",
  "then",
  "else",
]);
/** JSON Schema keywords whose value maps names to schemas. */
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "dependentSchemas", "$defs", "definitions"]);

const isObject = (value: unknown): value is Json =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export function importOpenApi(
  spec: unknown,
  { upstream, existing = new Set<string>() }: { upstream: string; existing?: ReadonlySet<string> },
): ImportResult {
  if (!isObject(spec) || typeof spec.openapi !== "string" || !/^3\.[01]\.\d+$/.test(spec.openapi)) {
    throw new OpenApiImportError(
      `not an OpenAPI 3.0 or 3.1 document (its "openapi" field is ${JSON.stringify(isObject(spec) ? spec.openapi : undefined)}); convert a Swagger 2.0 file first`,
    );
  }
  const v30 = spec.openapi.startsWith("3.0.");
  const unmapped: string[] = [];
  const conflicts: string[] = [];
  const routes: Record<string, ImportedRoute> = {};
  const resolve = refResolver(spec);
  const schemes =
    isObject(spec.components) && isObject(spec.components.securitySchemes)
      ? spec.components.securitySchemes
      : {};

  if (isObject(spec.webhooks) && Object.keys(spec.webhooks).length > 0) {
    unmapped.push(
      `webhooks (${Object.keys(spec.webhooks).join(", ")}): not mapped — requests the service sends, not routes it answers`,
    );
  }

  for (const [path, rawItem] of Object.entries(isObject(spec.paths) ? spec.paths : {})) {
    const item = resolve(rawItem, `paths.${path}`) as Json;
    const pathProblem = routePathProblem(path);
    for (const method of METHODS) {
      const rawOperation = item[method];
      if (rawOperation === undefined) continue;
      const key = `${method.toUpperCase()} ${path}`;
      const operation = resolve(rawOperation, key) as Json;
      if (method === "trace") {
        unmapped.push(`${key}: left out — API Gateway HTTP APIs have no TRACE routes`);
        continue;
      }
      if (pathProblem) {
        unmapped.push(`${key}: left out — ${pathProblem}`);
        continue;
      }
      if (existing.has(key)) {
        conflicts.push(key);
        continue;
      }
      const security = (operation.security ?? spec.security ?? []) as Json[];
      const auth = mapAuth(security, schemes, resolve);
      if (typeof auth === "string" && auth !== "public") {
        unmapped.push(`${key}: left out — ${auth}`);
        continue;
      }
      const route: ImportedRoute = {
        auth: auth as ImportedRoute["auth"],
        ...(auth === "public" ? {} : { limit: {} }),
        proxy: { upstream, path },
      };
      if (auth === "public") {
        unmapped.push(
          `${key}: public, so not limited — add \`limit: { plan }\` with a plan for anonymous callers to count it by IP`,
        );
      }
      for (const note of authNotes(security, schemes, resolve)) unmapped.push(`${key}: ${note}`);

      const parameters = [
        ...((item.parameters ?? []) as unknown[]),
        ...((operation.parameters ?? []) as unknown[]),
      ].map((parameter) => resolve(parameter, key) as Json);
      const checked = (parameter: Json) =>
        parameter.in === "path" &&
        isObject(parameter.schema) &&
        Object.keys(parameter.schema).every((keyword) => keyword === "type") &&
        parameter.schema.type === "string";
      const passed = parameters.filter((parameter) => !checked(parameter));
      if (passed.length > 0) {
        unmapped.push(
          `${key}: ${passed.map((p) => `${p.in} parameter ${p.name}`).join(", ")} — passed on unchecked (the gateway validates bodies, not parameters)`,
        );
      }

      if (operation.requestBody !== undefined) {
        const requestBody = resolve(operation.requestBody, key) as Json;
        const body = mapBody(requestBody, key, method.toUpperCase(), v30, resolve, unmapped);
        if (body) route.body = body;
      }
      if (isObject(operation.callbacks) && Object.keys(operation.callbacks).length > 0) {
        unmapped.push(
          `${key}: callbacks (${Object.keys(operation.callbacks).join(", ")}) not mapped — requests the service sends, not routes it answers`,
        );
      }
      if (operation.deprecated === true) {
        unmapped.push(
          `${key}: deprecated, not marked — the config's \`deprecated\` needs a \`since\` date; add it by hand`,
        );
      }
      routes[key] = route;
    }
  }
  const info = isObject(spec.info) ? spec.info : {};
  const servers = Array.isArray(spec.servers) ? (spec.servers as Json[]) : [];
  const server = typeof servers[0]?.url === "string" ? servers[0].url : undefined;
  return {
    routes,
    unmapped,
    conflicts,
    info: {
      title: String(info.title ?? "untitled"),
      version: String(info.version ?? ""),
      ...(server && /^https?:\/\//.test(server) && !server.includes("{") ? { server } : {}),
    },
  };
}

/** Why a spec path cannot be a route key (API Gateway's syntax: whole-segment `{params}` only), or undefined. */
function routePathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return `the path ${path} does not start with /`;
  for (const segment of path.split("/").slice(1)) {
    if (PARAM_SEGMENT.test(segment) || LITERAL_SEGMENT.test(segment)) continue;
    return `the path segment "${segment}" cannot be a route key segment (a parameter must be a whole segment, {name}, and literals are letters, digits and _.~-)`;
  }
  return undefined;
}

type Resolve = (value: unknown, where: string) => unknown;

/** A resolver of local `$ref`s (`#/components/...`); a remote one is an error naming it. */
function refResolver(spec: Json): Resolve {
  return function resolve(value, where) {
    let current = value;
    for (let depth = 0; isObject(current) && typeof current.$ref === "string"; depth++) {
      if (depth > 32) throw new OpenApiImportError(`${where}: $ref chain too long at ${current.$ref}`);
      current = pointer(spec, current.$ref, where);
    }
    return current;
  };
}

function pointer(spec: Json, ref: string, where: string): unknown {
  if (!ref.startsWith("#/")) {
    throw new OpenApiImportError(
      `${where}: $ref ${ref} points outside the file; bundle the spec into one file first (e.g. \`npx @redocly/cli bundle\`)`,
    );
  }
  let node: unknown = spec;
  for (const raw of ref.slice(2).split("/")) {
    const part = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (!isObject(node) && !Array.isArray(node)) node = undefined;
    node = (node as Record<string, unknown> | undefined)?.[part];
    if (node === undefined) throw new OpenApiImportError(`${where}: $ref ${ref} does not resolve`);
  }
  return node;
}

const schemeOf = (name: string, schemes: Json, resolve: Resolve): Json | undefined => {
  const scheme = schemes[name];
  return scheme === undefined ? undefined : (resolve(scheme, `securitySchemes.${name}`) as Json);
};

/** The route's auth, or a string saying why it cannot be mapped. */
function mapAuth(security: Json[], schemes: Json, resolve: Resolve): ImportedRoute["auth"] | string {
  const requirements = security.filter((requirement) => Object.keys(requirement).length > 0);
  // `{}` among the alternatives makes auth optional: the gateway has no optional auth, so public.
  if (requirements.length === 0 || requirements.length < security.length) return "public";
  if (requirements.length > 1) {
    const names = requirements.map((requirement) => Object.keys(requirement).join("+"));
    return `its security offers alternatives (${names.join(" or ")}); a route takes one kind of credential`;
  }
  const requirement = requirements[0] as Json;
  const names = Object.keys(requirement);
  if (names.length > 1) return `its security needs several schemes at once (${names.join(" and ")})`;
  const name = names[0] as string;
  const scopes = ((requirement[name] ?? []) as unknown[]).map(String);
  const scheme = schemeOf(name, schemes, resolve);
  if (!scheme) return `its security scheme ${name} is not in components.securitySchemes`;
  const kind = String(scheme.type);
  if (kind === "http" && String(scheme.scheme).toLowerCase() === "bearer") return { jwt: { scopes } };
  if (kind === "oauth2" || kind === "openIdConnect") return { jwt: { scopes } };
  if (kind === "apiKey" && scheme.in === "header") return { apiKey: { scopes } };
  if (kind === "apiKey")
    return `its security scheme ${name} is an API key in the ${scheme.in}; the gateway takes keys in the x-api-key header only`;
  if (kind === "http")
    return `its security scheme ${name} is http ${scheme.scheme}; the gateway takes bearer JWTs and API keys`;
  return `its security scheme ${name} is ${kind}; the gateway takes bearer JWTs and API keys`;
}

/** What a mapped scheme changes for clients, to say beside the route. */
function authNotes(security: Json[], schemes: Json, resolve: Resolve): string[] {
  const notes: string[] = [];
  for (const requirement of security) {
    for (const name of Object.keys(requirement)) {
      const scheme = schemeOf(name, schemes, resolve);
      if (
        scheme?.type === "apiKey" &&
        scheme.in === "header" &&
        String(scheme.name).toLowerCase() !== "x-api-key"
      ) {
        notes.push(
          `API key header ${scheme.name} becomes x-api-key — clients send their Gatehouse key there`,
        );
      }
      if (scheme?.type === "oauth2" || scheme?.type === "openIdConnect") {
        notes.push(`${scheme.type} scheme ${name} becomes a bearer JWT — list its issuer in auth.issuers`);
      }
    }
  }
  return notes;
}

function mapBody(
  requestBody: Json,
  key: string,
  method: string,
  v30: boolean,
  resolve: Resolve,
  unmapped: string[],
): ImportedRoute["body"] | undefined {
  if (!BODY_METHODS.has(method)) {
    unmapped.push(
      `${key}: request body not mapped — a ${method} request's body is not checked by the gateway`,
    );
    return undefined;
  }
  const content = isObject(requestBody.content) ? requestBody.content : {};
  const types = Object.keys(content).map((type) => type.toLowerCase());
  const jsonTypes = types.filter((type) => JSON_TYPE.test(type));
  const jsonWithSchema = jsonTypes.find((type) => isObject((content[type] as Json | undefined)?.schema));
  let schema: Json | undefined;
  if (jsonWithSchema) {
    const where = `${key} body ${jsonWithSchema}`;
    schema = toJsonSchema((content[jsonWithSchema] as Json).schema, {
      v30,
      resolve,
      where,
      unmapped,
      seen: [],
    }) as Json;
    for (const other of jsonTypes) {
      if (other !== jsonWithSchema && isObject((content[other] as Json | undefined)?.schema)) {
        unmapped.push(
          `${key}: the ${other} schema — one schema per route; ${jsonWithSchema}'s is used for every JSON type`,
        );
      }
    }
  }
  const accepted = types.filter((type) => {
    if (!MEDIA_TYPE.test(type)) {
      unmapped.push(`${key}: media type ${type} — not a plain type/subtype; left out`);
      return false;
    }
    if (JSON_TYPE.test(type)) return true;
    const hasSchema = isObject((content[type] as Json | undefined)?.schema);
    if (schema) {
      unmapped.push(`${key}: ${type} body left out — a route with a JSON Schema takes JSON bodies only`);
      return false;
    }
    if (hasSchema)
      unmapped.push(`${key}: ${type} body's schema not checked — the gateway validates JSON bodies only`);
    return true;
  });
  if (accepted.length === 0) return undefined;
  if (schema && requestBody.required !== true) {
    unmapped.push(
      `${key}: body optional in the spec, required by the gateway — a route with a schema needs its body`,
    );
  }
  return { maxBytes: IMPORTED_MAX_BYTES, contentTypes: accepted, ...(schema ? { schema } : {}) };
}

interface SchemaContext {
  v30: boolean;
  resolve: Resolve;
  where: string;
  unmapped: string[];
  /** The $refs being inlined above this point: a repeat is a recursive schema. */
  seen: string[];
}

/**
 * An OpenAPI schema object as plain JSON Schema for ajv: `$ref`s inlined (a recursive one is cut to
 * `{}` and listed), 3.0's dialect converted, `format` dropped (the validator checks no formats).
 */
function toJsonSchema(value: unknown, context: SchemaContext, at = ""): unknown {
  if (Array.isArray(value)) return value.map((item, index) => toJsonSchema(item, context, `${at}/${index}`));
  if (!isObject(value)) return value;
  if (typeof value.$ref === "string") {
    const ref = value.$ref;
    if (context.seen.includes(ref)) {
      context.unmapped.push(
        `${context.where}: recursive schema ${ref} at ${at || "/"} cut to {} (accepts anything there)`,
      );
      return {};
    }
    const target = context.resolve(value, context.where);
    return toJsonSchema(target, { ...context, seen: [...context.seen, ref] }, at);
  }
  const out: Json = {};
  for (const [keyword, child] of Object.entries(value)) {
    if (keyword === "format") {
      context.unmapped.push(
        `${context.where}: format "${String(child)}" at ${at || "/"} not checked (the gateway's validator has no formats); dropped`,
      );
      continue;
    }
    if (context.v30 && ANNOTATIONS_30.has(keyword)) continue;
    if (context.v30 && keyword === "nullable") continue;
    if (context.v30 && keyword === "example") {
      out.examples = [child];
      continue;
    }
    if (
      context.v30 &&
      (keyword === "exclusiveMinimum" || keyword === "exclusiveMaximum") &&
      typeof child === "boolean"
    ) {
      const bound = keyword === "exclusiveMinimum" ? "minimum" : "maximum";
      if (child && typeof value[bound] === "number") out[keyword] = value[bound];
      continue;
    }
    if (
      context.v30 &&
      (keyword === "minimum" || keyword === "maximum") &&
      value[keyword === "minimum" ? "exclusiveMinimum" : "exclusiveMaximum"] === true
    ) {
      continue;
    }
    // Maps of schemas: their keys are names, not keywords.
    if (SCHEMA_MAPS.has(keyword) && isObject(child)) {
      out[keyword] = Object.fromEntries(
        Object.entries(child).map(([name, schema]) => [name, toJsonSchema(schema, context, `${at}/${name}`)]),
      );
      continue;
    }
    // Subschemas are converted; any other value (enum, const, default, examples) is data, kept as it is.
    out[keyword] = SUBSCHEMAS.has(keyword) ? toJsonSchema(child, context, `${at}/${keyword}`) : child;
  }
  // A required readOnly property is required in responses only (OpenAPI): never of a request body.
  if (Array.isArray(out.required) && isObject(out.properties)) {
    const properties = out.properties;
    out.required = out.required.filter(
      (name) => !(isObject(properties[name]) && properties[name].readOnly === true),
    );
  }
  if (context.v30 && value.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    else if (Array.isArray(out.type) && !out.type.includes("null")) out.type = [...out.type, "null"];
    else if (out.type === undefined) return { anyOf: [out, { type: "null" }] };
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  }
  return out;
}
