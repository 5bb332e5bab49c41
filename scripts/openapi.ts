// Prints the gateway's OpenAPI 3.1 document, made from gateway.config.ts (what GET /openapi.json serves).
//   npm run openapi                         the local stage, to stdout
//   npm run openapi -- --stage prod --out openapi.json
// `local` lists the local stack's address as the server; other stages list API Gateway's
// execute-api address with the API id and region as server variables.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadGateway } from "#shared/config/gateway.ts";
import { type OpenApiServer, openApiDocument } from "#shared/openapi/document.ts";
import definition from "../gateway.config.ts";
import pkg from "../package.json" with { type: "json" };

const { values } = parseArgs({
  options: { stage: { type: "string", default: "local" }, out: { type: "string" } },
});
const stage = values.stage;
const servers: OpenApiServer[] =
  stage === "local"
    ? [
        {
          url: `http://127.0.0.1:${process.env.GATEHOUSE_HTTP_PORT ?? "3000"}`,
          description: "The local stack",
        },
      ]
    : [
        {
          url: "https://{apiId}.execute-api.{region}.amazonaws.com",
          description: `The ${stage} stage's HTTP API (serverless info --stage ${stage} shows its id)`,
          variables: {
            apiId: { default: "your-api-id", description: "The HTTP API's id" },
            region: { default: process.env.AWS_REGION ?? "us-east-1" },
          },
        },
      ];
const document = openApiDocument(loadGateway(definition, stage), {
  title: pkg.name,
  version: pkg.version,
  description: pkg.description,
  servers,
});
const text = `${JSON.stringify(document, null, 2)}\n`;
if (values.out) writeFileSync(values.out, text);
else process.stdout.write(text);
