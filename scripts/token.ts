// Prints an access token from the local stack's development issuer.
// Usage: npm run token -- --sub alice [--scope "chat:write gatehouse:admin"] [--ttl 3600]
//        [--tenant acme] [--plan pro] [--aud gatehouse-local]
// The signing key lives in .gatehouse/dev-issuer/ (made on first use); the local stack serves its JWKS.
import { parseArgs } from "node:util";
import { DEV_AUDIENCE, devToken } from "../plugins/dev-issuer.mjs";

const { values } = parseArgs({
  options: {
    sub: { type: "string" },
    scope: { type: "string" },
    ttl: { type: "string", default: "3600" },
    tenant: { type: "string" },
    plan: { type: "string" },
    aud: { type: "string", default: DEV_AUDIENCE },
  },
});
const ttlSeconds = Number(values.ttl);
if (!values.sub || !Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
  console.error(
    'usage: npm run token -- --sub <subject> [--scope "a b"] [--ttl seconds] [--tenant t] [--plan p]',
  );
  process.exit(2);
}
const token = await devToken(process.cwd(), {
  port: Number(process.env.GATEHOUSE_ISSUER_PORT ?? 3003),
  sub: values.sub,
  scope: values.scope,
  ttlSeconds,
  audience: values.aud,
  claims: {
    ...(values.tenant ? { tenant: values.tenant } : {}),
    ...(values.plan ? { plan: values.plan } : {}),
  },
});
process.stdout.write(`${token}\n`);
