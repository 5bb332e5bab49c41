import { requestIdentity } from "#shared/auth/identity.ts";
import { env } from "#shared/config/env.ts";
import type { HttpHandler } from "#shared/http.ts";
import { json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";
import { routeTable } from "#shared/middleware/route-table.ts";
import definition from "../../gateway.config.ts";

/** The identity the authorizer resolved for the caller's credential (principal, plan, scopes, tenant, key id). */
const identity: HttpHandler = async (event) => json(200, requestIdentity(event));

/**
 * `GET /me` (a JWT) and `GET /keys/self` (an API key): a quick way to check that a token or key
 * works, and as what. Its route check reads only which routes name this function, from the config
 * as written: the build has checked the whole config (`loadGateway`), so this function does not load
 * the config's schema.
 */
export const handler = httpHandler(
  routeTable("whoami", definition({ stage: env.stage }).routes, {
    "GET /me": identity,
    "GET /keys/self": identity,
  }),
);
