// Prints a document of the gateway's APIs, made from gateway.config.ts:
//   npm run openapi                        the HTTP API's OpenAPI 3.1 document (what GET /openapi.json serves)
//   npm run asyncapi                       the WebSocket API's AsyncAPI 3.0 document (shared/ws/protocol.ts)
//   npm run openapi -- --stage prod --out openapi.json
// `local` lists the local stack's addresses as the servers; other stages list API Gateway's
// execute-api addresses, with the API id and region as server variables.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadGateway } from "#shared/config/gateway.ts";
import { asyncApiDocument } from "#shared/openapi/asyncapi.ts";
import { type OpenApiServer, openApiDocument } from "#shared/openapi/document.ts";
import definition from "../gateway.config.ts";
import pkg from "../package.json" with { type: "json" };

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { stage: { type: "string", default: "local" }, out: { type: "string" } },
});
const kind = positionals[0];
if (kind !== "openapi" && kind !== "asyncapi") {
  process.stderr.write(
    "usage: tsx scripts/api-document.ts openapi|asyncapi [--stage <stage>] [--out <file>]\n",
  );
  process.exit(2);
}
const stage = values.stage;
const region = process.env.AWS_REGION ?? "us-east-1";
const remote = (api: string) => ({
  description: `The ${stage} stage's ${api} (serverless info --stage ${stage} shows its id)`,
  variables: {
    apiId: { default: "your-api-id", description: `The ${api}'s id` },
    region: { default: region },
  },
});
const info = { title: pkg.name, version: pkg.version, description: pkg.description };
const gateway = loadGateway(definition, stage);

const document =
  kind === "openapi"
    ? openApiDocument(gateway, {
        ...info,
        servers: [
          stage === "local"
            ? {
                url: `http://127.0.0.1:${process.env.GATEHOUSE_HTTP_PORT ?? "3000"}`,
                description: "The local stack",
              }
            : { url: "https://{apiId}.execute-api.{region}.amazonaws.com", ...remote("HTTP API") },
        ] satisfies OpenApiServer[],
      })
    : asyncApiDocument(gateway, {
        ...info,
        servers:
          stage === "local"
            ? {
                local: {
                  host: `127.0.0.1:${process.env.GATEHOUSE_WS_PORT ?? "3001"}`,
                  protocol: "ws",
                  description: "The local stack",
                },
              }
            : {
                [stage]: {
                  host: "{apiId}.execute-api.{region}.amazonaws.com",
                  pathname: `/${stage}`,
                  protocol: "wss",
                  ...remote("WebSocket API"),
                },
              },
      });
const text = `${JSON.stringify(document, null, 2)}\n`;
if (values.out) writeFileSync(values.out, text);
else process.stdout.write(text);
