// Ships the issuers' JWKS with the authorizers: when packaging, fetches each issuer's JWKS of the
// stage's gateway config and puts it beside each authorizer's bundle (authorizers/shipped-jwks.json
// in its zip only), so a cold authorizer verifies a token without a network call. An issuer that
// cannot be reached is a warning, not a failure: its JWKS is fetched at cold start instead, as
// before (CI packages without a network to the issuer). docs/identity.md, "Shipped JWKS".
// Listed before serverless-esbuild, so the file exists when it copies each function's patterns.
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** Relative to the service directory: the path in the authorizers' zips, beside authorizers/*.mjs. */
const FILE = "authorizers/shipped-jwks.json";

export default class ShippedJwksPlugin {
  /**
   * @param {any} serverless
   * @param {any} _options
   * @param {{ log: { notice(m: string): void; warning(m: string): void } }} utils
   */
  constructor(serverless, _options, { log }) {
    this.serverless = serverless;
    this.log = log;
    this.hooks = {
      "before:package:createDeploymentArtifacts": () => this.ship(),
      // The file is a packaging artifact: never left in the working tree.
      "after:package:createDeploymentArtifacts": () => this.cleanUp(),
    };
  }

  get file() {
    return join(this.serverless.serviceDir, FILE);
  }

  /** The functions whose handler is an authorizer. */
  authorizers() {
    return Object.values(this.serverless.service.functions ?? {}).filter((fn) =>
      String(fn?.handler ?? "").startsWith("authorizers/"),
    );
  }

  async ship() {
    const stage = this.serverless.service.provider.stage;
    const { tsImport } = await import("tsx/esm/api");
    const root = pathToFileURL(`${this.serverless.serviceDir}/`).href;
    const { loadGateway } = await tsImport("./shared/config/gateway.ts", root);
    const { fetchJwksToShip } = await tsImport("./shared/auth/shipped-jwks.ts", root);
    const { default: definition } = await tsImport("./gateway.config.ts", root);
    const { file, failures } = await fetchJwksToShip(loadGateway(definition, stage).auth, stage);
    for (const failure of failures) {
      this.log.warning(
        `Shipped JWKS: could not fetch ${failure.jwksUri} (issuer "${failure.issuer}"): ${failure.error}. ` +
          "Not shipped: the authorizer fetches it at cold start.",
      );
    }
    await this.cleanUp();
    if (!file) return;
    await writeFile(this.file, `${JSON.stringify(file, null, 2)}\n`);
    for (const fn of this.authorizers()) {
      fn.package ??= {};
      fn.package.patterns = [...(fn.package.patterns ?? []), FILE];
    }
    this.log.notice(`Shipped JWKS: ${Object.keys(file.jwks).join(", ")} (fetched ${file.fetchedAt})`);
  }

  cleanUp() {
    return rm(this.file, { force: true });
  }
}
