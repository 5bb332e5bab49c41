import { NotFoundError } from "../errors.ts";
import type { HttpHandler } from "../http.ts";

/** A system function's implementations, by the route key of gateway.config.ts ("GET /usage"). */
export type RouteImplementations = Record<string, HttpHandler>;

/** A system function and the config disagree on its routes: thrown at cold start, never per request. */
export class RouteTableError extends Error {
  override readonly name = "RouteTableError";
  constructor(
    readonly functionKey: string,
    readonly problems: string[],
  ) {
    super(`The ${functionKey} function and gateway.config.ts disagree:\n  - ${problems.join("\n  - ")}`);
  }
}

/**
 * The handler of a system function (`handler: "<function key>"` in gateway.config.ts): dispatches on
 * the route key API Gateway matched. At cold start the config's routes naming `functionKey` and the
 * implementations must be the same set, so a route added to the config without code (or code left
 * behind by a removed route) fails the deploy's first invocation loudly instead of answering 404.
 *
 * Example: `routeTable("usage", gateway.routes, { "GET /usage": own, "GET /admin/usage": everyone })`.
 */
export function routeTable(
  functionKey: string,
  /** The config's routes, loaded or as written: only their keys and `handler` are read. */
  routes: Readonly<Record<string, { readonly handler?: string | undefined }>>,
  implementations: RouteImplementations,
): HttpHandler {
  const declared = Object.entries(routes).flatMap(([key, route]) =>
    route.handler === functionKey ? [key] : [],
  );
  const problems = [
    ...declared
      .filter((key) => !Object.hasOwn(implementations, key))
      .map(
        (key) =>
          `routes["${key}"].handler: "${functionKey}" has no implementation of ${key}; implement it in the ${functionKey} handler or name the function that does`,
      ),
    ...Object.keys(implementations)
      .filter((key) => !declared.includes(key))
      .map(
        (key) =>
          `routes["${key}"]: the ${functionKey} function implements ${key} but no config route gives it to ${functionKey}; add it with handler: "${functionKey}" or remove the implementation`,
      ),
  ];
  if (problems.length > 0) throw new RouteTableError(functionKey, problems);
  const table = new Map(Object.entries(implementations));
  return function routeTableHandler(event, context) {
    const implementation = table.get(event.routeKey);
    // API Gateway sends a function only its own routes; a stray direct invoke gets a plain 404.
    if (!implementation) throw new NotFoundError(`${event.routeKey} is not a route of ${functionKey}`);
    return implementation(event, context);
  };
}
