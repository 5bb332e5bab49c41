import { requestIdentity } from "#shared/auth/identity.ts";
import { json } from "#shared/http.ts";
import { httpHandler } from "#shared/middleware/http-handler.ts";

/**
 * `GET /keys/self`: the identity the authorizer resolved for the caller's credential (principal,
 * plan, scopes, tenant, key id). A quick way to check that a key or token works, and as what.
 */
export const handler = httpHandler(async (event) => json(200, requestIdentity(event)));
