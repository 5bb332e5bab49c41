import { BadRequestError, MethodNotAllowedError, NotFoundError } from "../errors.ts";

/**
 * Route matching for the gateway function, with API Gateway's template syntax: `/users/{id}` binds
 * one segment, a last `{path+}` binds the rest (one or more segments). The most specific route wins,
 * segment by segment: a literal beats `{param}`, which beats `{greedy+}`. `ANY` matches every method.
 *
 * Example: `const match = compileRouter([{ method: "GET", path: "/v1/users/{id}", value: usersRoute }])`,
 * then `match("GET", "/v1/users/42")` → `{ value: usersRoute, params: { id: "42" } }`.
 */

export const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;
export type Method = (typeof METHODS)[number];

export interface RouteDefinition<T> {
  method: Method | "ANY";
  path: string;
  value: T;
}

export interface RouteMatch<T> {
  value: T;
  /** Decoded path parameters; a greedy one keeps its slashes. */
  params: Record<string, string>;
}

interface Node<T> {
  literals: Map<string, Node<T>>;
  param?: { name: string; node: Node<T> };
  greedy?: { name: string; handlers: Map<string, T> };
  handlers: Map<string, T>;
}

const newNode = <T>(): Node<T> => ({ literals: new Map(), handlers: new Map() });
const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;
const GREEDY = /^\{([A-Za-z_][A-Za-z0-9_]*)\+\}$/;

/**
 * The route keys a request's `routeKey` may be declared under, most specific first: as given (with
 * serverless-offline's `{name*}` spelled `{name+}` as API Gateway does), then as the `ANY` route of
 * the same path (offline reports the request's method where API Gateway says `ANY`). A `HEAD` is
 * also the `GET` route of its path: the wiring gives a cached GET route a HEAD route beside it.
 */
export function routeKeyCandidates(routeKey: string): string[] {
  const normalised = routeKey.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\*\}/g, "{$1+}");
  const space = normalised.indexOf(" ");
  if (space === -1) return [normalised];
  const path = normalised.slice(space + 1);
  return normalised.startsWith("HEAD ")
    ? [normalised, `GET ${path}`, `ANY ${path}`]
    : [normalised, `ANY ${path}`];
}

/** Splits a template into segments, checking the syntax (a greedy parameter must come last). */
export function parseTemplate(path: string): string[] {
  if (!path.startsWith("/")) throw new Error(`route path ${JSON.stringify(path)} must start with /`);
  const segments = path === "/" ? [] : path.slice(1).split("/");
  const names = new Set<string>();
  for (const [index, segment] of segments.entries()) {
    if (segment === "") throw new Error(`route path ${path} has an empty segment`);
    const name = segment.match(PARAM)?.[1] ?? segment.match(GREEDY)?.[1];
    if (name) {
      if (names.has(name)) throw new Error(`route path ${path} uses {${name}} twice`);
      names.add(name);
      if (GREEDY.test(segment) && index !== segments.length - 1) {
        throw new Error(`route path ${path}: a greedy {${name}+} must be the last segment`);
      }
    } else if (/[{}]/.test(segment)) {
      throw new Error(`route path ${path}: segment ${segment} is neither a literal nor a {parameter}`);
    }
  }
  return segments;
}

export function compileRouter<T>(routes: readonly RouteDefinition<T>[]) {
  const root = newNode<T>();
  for (const route of routes) {
    const segments = parseTemplate(route.path);
    let node = root;
    let handlers = root.handlers;
    for (const segment of segments) {
      const greedy = segment.match(GREEDY)?.[1];
      const param = segment.match(PARAM)?.[1];
      if (greedy) {
        node.greedy ??= { name: greedy, handlers: new Map() };
        if (node.greedy.name !== greedy)
          throw new Error(`route ${route.path} conflicts with {${node.greedy.name}+}`);
        handlers = node.greedy.handlers;
      } else if (param) {
        node.param ??= { name: param, node: newNode() };
        if (node.param.name !== param)
          throw new Error(`route ${route.path} conflicts with {${node.param.name}} at the same place`);
        node = node.param.node;
        handlers = node.handlers;
      } else {
        let next = node.literals.get(segment);
        if (!next) {
          next = newNode<T>();
          node.literals.set(segment, next);
        }
        node = next;
        handlers = node.handlers;
      }
    }
    if (handlers.has(route.method)) throw new Error(`route ${route.method} ${route.path} is declared twice`);
    handlers.set(route.method, route.value);
  }

  /** Every method-table that matches the path, most specific first, with its parameters. */
  function* candidates(
    node: Node<T>,
    segments: string[],
    at: number,
    params: Record<string, string>,
  ): Generator<[Map<string, T>, Record<string, string>]> {
    if (at === segments.length) {
      yield [node.handlers, params];
      return;
    }
    const segment = segments[at] as string;
    const literal = node.literals.get(segment);
    if (literal) yield* candidates(literal, segments, at + 1, params);
    // A parameter never binds an empty segment (`/users//`); a greedy one needs a non-empty rest.
    if (node.param && segment !== "") {
      yield* candidates(node.param.node, segments, at + 1, { ...params, [node.param.name]: segment });
    }
    const rest = segments.slice(at).join("/");
    if (node.greedy && rest.replaceAll("/", "") !== "")
      yield [node.greedy.handlers, { ...params, [node.greedy.name]: rest }];
  }

  /**
   * The route for a request: 404 when no path matches, 405 (with `Allow`) when the path exists but
   * not for this method, 400 for a path that cannot be decoded. `HEAD` falls back to `GET`.
   */
  return function matchRoute(method: string, rawPath: string): RouteMatch<T> {
    const segments = decodePath(rawPath);
    const allowed = new Set<string>();
    for (const [handlers, params] of candidates(root, segments, 0, {})) {
      if (handlers.size === 0) continue;
      const value =
        handlers.get(method) ?? (method === "HEAD" ? handlers.get("GET") : undefined) ?? handlers.get("ANY");
      if (value !== undefined) return { value, params };
      for (const key of handlers.keys()) {
        if (key === "ANY") continue;
        allowed.add(key);
        if (key === "GET") allowed.add("HEAD");
      }
    }
    if (allowed.size > 0) {
      const allow = METHODS.filter((m) => allowed.has(m));
      throw new MethodNotAllowedError(
        `${method} is not allowed on ${rawPath}; use ${allow.join(", ")}`,
        allow,
      );
    }
    throw new NotFoundError(`No route for ${rawPath}`);
  };
}

/** Path segments, percent-decoded one by one (so an encoded `/` stays inside its segment). */
function decodePath(rawPath: string): string[] {
  if (!rawPath.startsWith("/")) throw new BadRequestError("The request path must start with /");
  const trimmed = rawPath.length > 1 && rawPath.endsWith("/") ? rawPath.slice(0, -1) : rawPath;
  if (trimmed === "/") return [];
  return trimmed
    .slice(1)
    .split("/")
    .map((segment) => {
      try {
        return decodeURIComponent(segment);
      } catch {
        throw new BadRequestError("The request path is not valid percent-encoding");
      }
    });
}
