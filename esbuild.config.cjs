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
  // A dynamic import() becomes its own chunk, loaded when it runs: what a function needs only on some
  // requests (the authorizers' DynamoDB SDK, the gateway's Lambda SDK) is neither parsed nor evaluated
  // at cold start. Chunks go to chunks/ beside the entry. serverless-esbuild (individually) zips every
  // file of its build folder that is not another function's entry, so each zip holds all chunks, most
  // of which its function never loads.
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  // Node entry points only: never a package's `browser` build.
  mainFields: ["module", "main"],
  conditions: ["node", "import"],
  // Some CommonJS dependencies call require() for Node built-ins; give the ESM bundle one.
  banner: {
    js: "import { createRequire as __gatehouseCreateRequire } from 'node:module'; const require = __gatehouseCreateRequire(import.meta.url);",
  },
  // Powertools Tracer is imported only under X-Ray (shared/observability/tracer.ts), but its ESM build
  // imports node:http and node:https, which esbuild hoists to the top of the bundle, so every function
  // would load them at cold start (+50 ms to health's import here). Its CommonJS build requires them
  // inside the lazily run module instead.
  alias: {
    "@aws-lambda-powertools/tracer": "./node_modules/@aws-lambda-powertools/tracer/lib/cjs/index.js",
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
