// Prints the WebSocket API's AsyncAPI 3.0 document, made from shared/ws/protocol.ts and gateway.config.ts.
//   npm run asyncapi                         the local stage, to stdout
//   npm run asyncapi -- --stage prod --out asyncapi.json
// `local` names the local stack's WebSocket port; other stages API Gateway's wss:// address, with the
// API id and region as server variables.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadGateway } from "#shared/config/gateway.ts";
import { asyncApiDocument } from "#shared/openapi/asyncapi.ts";
import definition from "../gateway.config.ts";
import pkg from "../package.json" with { type: "json" };

const { values } = parseArgs({
  options: { stage: { type: "string", default: "local" }, out: { type: "string" } },
});
const stage = values.stage;
const servers =
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
          description: `The ${stage} stage's WebSocket API (serverless info --stage ${stage} shows its id)`,
          variables: {
            apiId: { default: "your-api-id", description: "The WebSocket API's id" },
            region: { default: process.env.AWS_REGION ?? "us-east-1" },
          },
        },
      };
const document = asyncApiDocument(loadGateway(definition, stage), {
  title: pkg.name,
  version: pkg.version,
  description: pkg.description,
  servers,
});
const text = `${JSON.stringify(document, null, 2)}\n`;
if (values.out) writeFileSync(values.out, text);
else process.stdout.write(text);
