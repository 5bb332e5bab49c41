// Values serverless.yml computes: `${file(./scripts/serverless-vars.cjs):name}`.
const { resolve } = require("node:path");

/** Absolute path of the local dev issuer's CA (handlers may run from another working directory). */
module.exports.devIssuerCaFile = () => resolve(__dirname, "..", ".gatehouse", "dev-issuer", "ca.pem");
