// Build options for every Lambda bundle. serverless-esbuild loads this file (custom.esbuild.config),
// and `npm run bench` builds with the same options, so what is measured is what is deployed.
// CommonJS because serverless-esbuild `require`s it.

/** Options serverless-esbuild itself reads; everything else is passed to esbuild. */
const pluginOptions = {
  outputFileExtension: ".mjs",
  exclude: [], // bundle the AWS SDK v3 too: pinned versions, tree-shaken, no reliance on the runtime's copy
  packager: "npm",
};

/** @type {import('esbuild').BuildOptions} */
const esbuildOptions = {
  bundle: true,
  minify: true,
  keepNames: true, // error and middleware names stay readable in logs
  sourcemap: true,
  sourcesContent: false,
  platform: "node",
  target: "node24",
  format: "esm",
  // Node entry points only: never a package's `browser` build (platform node drops that condition).
  // ESM builds where a package has them: the AWS SDK's exports list `module` before `node`, and
  // `node` alone picked its CommonJS builds, which esbuild cannot tree-shake (the DynamoDB floor was
  // 514 KB, 364 KB with `module`). Setting `conditions` replaces esbuild's default `module`, so name it.
  mainFields: ["module", "main"],
  conditions: ["module", "node"],
  // What a function imports lazily (the tracer, the Lambda SDK, the credential providers a Lambda
  // never uses) goes to chunks loaded on first use instead of being parsed at every cold start
  // (health: 176 KB → 36 KB read at import). ESM only; chunks sit beside the bundle. serverless-esbuild
  // (individually) zips every file of its build folder that is not another function's entry, so each
  // zip holds all chunks, most of which its function never loads.
  splitting: true,
  // Some CommonJS dependencies call require() for Node built-ins; give the ESM bundle one.
  banner: {
    js: "import { createRequire as __gatehouseCreateRequire } from 'node:module'; const require = __gatehouseCreateRequire(import.meta.url);",
  },
  logLevel: "warning",
};

/**
 * Lambda loads `.mjs` as ESM with no package.json in the zip. `serverless invoke local` (osls) can only
 * load ESM from `.js`, which this repository's `"type": "module"` makes ESM; so that one command gets `.js`.
 * @param {{ processedInput?: { commands?: string[] } }} serverless
 */
module.exports = (serverless) => {
  const commands = serverless?.processedInput?.commands ?? [];
  const invokeLocal = commands[0] === "invoke" && commands[1] === "local";
  // Its own build folder too: serverless-offline resolves `.js` before `.mjs`, so a `.js` bundle left in
  // the shared folder by an earlier `invoke local` would shadow (stale) the one `npm start` builds.
  return {
    ...esbuildOptions,
    ...pluginOptions,
    ...(invokeLocal ? { outputFileExtension: ".js", outputBuildFolder: ".build-invoke" } : {}),
  };
};
module.exports.esbuildOptions = esbuildOptions;
