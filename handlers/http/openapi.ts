import { gatewayAtStart } from "#shared/config/checked.ts";
import { env } from "#shared/config/env.ts";
import { openApiDocument } from "#shared/openapi/document.ts";
import { documentHandler } from "#shared/openapi/serve.ts";
import pkg from "../../package.json" with { type: "json" };

/**
 * `GET /openapi.json`: the gateway's OpenAPI 3.1 document, public and cacheable. It is made once per
 * container from the config every function loads, so its strong ETag is stable for a deployment. It
 * names no `servers`: it is served at the API's root, which is OpenAPI's default server (`/`).
 */
export const handler = documentHandler(
  openApiDocument(gatewayAtStart(env.stage), {
    title: pkg.name,
    version: env.version,
    description: pkg.description,
  }),
);
