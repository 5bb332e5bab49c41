import { env } from "#shared/config/env.ts";
import { loadGateway } from "#shared/config/gateway.ts";
import { createGatewayHandler } from "#shared/gateway/proxy-handler.ts";
import definition from "../../gateway.config.ts";

/** The config-driven gateway: the routes of gateway.config.ts that proxy to an upstream, and the catch-all. */
export const handler = createGatewayHandler(loadGateway(definition, env.stage));
