// Build options for every Lambda bundle. serverless-esbuild loads this file (custom.esbuild.config),
// and `npm run bench` builds with the same options, so what is measured is what is deployed.
// CommonJS because serverless-esbuild `require`s it.
const fs = require("node:fs/promises");
const path = require("node:path");
const { builtinModules } = require("node:module");
const { pathToFileURL } = require("node:url");

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
  // (health: 176 KB → 36 KB read at import). ESM only; under serverless, chunksBesideEntry gives each
  // bundle's chunks a folder of their own, so each zip holds only its own function's chunks.
  splitting: true,
  // Some CommonJS dependencies call require() for Node built-ins; give the ESM bundle one.
  banner: {
    js: "import { createRequire as __gatehouseCreateRequire } from 'node:module'; const require = __gatehouseCreateRequire(import.meta.url);",
  },
  logLevel: "warning",
};

/**
 * serverless-esbuild builds each entry on its own into the entry's folder, then zips for a function
 * every file of the build folder except the other functions' bundles and what derives from them
 * (`gateway.mjs` excludes `gateway.*`). So each bundle's chunks go to `<bundle>.chunks/` beside it
 * (`handlers/http/gateway.chunks/chunk-….mjs`): in its own function's zip, in no other. A chunk
 * shared by two functions is written once per bundle, as each zip held its own copy anyway.
 * esbuild also writes the chunk of a dynamic import that tree shaking removed (the AWS SDK's
 * `bowser`, 38 KB): after the build, what the bundle cannot reach (metafile imports, static or
 * dynamic) is deleted. tests/integration/packaging.test.ts checks every zip against its bundle's imports.
 * @type {import('esbuild').Plugin}
 */
const chunksBesideEntry = {
  name: "chunks-beside-entry",
  setup(build) {
    const options = build.initialOptions;
    const entries = Object.values(options.entryPoints ?? {});
    if (entries.length !== 1) return;
    const entry = path.normalize(typeof entries[0] === "string" ? entries[0] : entries[0].in);
    options.chunkNames = `${path.parse(entry).name}.chunks/[name]-[hash]`;
    options.metafile = true;
    build.onEnd(async ({ metafile }) => {
      if (!metafile) return; // the build failed
      const outputs = metafile.outputs;
      const main = Object.keys(outputs).find(
        (file) => path.normalize(outputs[file].entryPoint ?? "") === entry,
      );
      if (!main) return;
      const reached = new Set();
      for (const pending = [main]; pending.length > 0; ) {
        const file = pending.pop();
        if (reached.has(file)) continue;
        reached.add(file);
        for (const i of outputs[file]?.imports ?? []) if (!i.external) pending.push(i.path);
      }
      const cwd = options.absWorkingDir ?? process.cwd();
      const unreached = Object.keys(outputs).filter((file) => !reached.has(file.replace(/\.map$/, "")));
      await Promise.all(unreached.map((file) => fs.rm(path.resolve(cwd, file), { force: true })));
    });
  },
};

/**
 * Node's built-in modules through `require` (the banner's), not ESM `import`. Importing a built-in as
 * ESM runs every lazy getter of its exports to build the namespace: `import { request } from
 * "node:http"` loads undici (for `http.WebSocket`), which loads http2, worker_threads, perf_hooks and
 * more; `node:util` loads parseArgs and worker_threads. Node 24 here: about 95 ms of CPU for
 * `node:http` and `node:util` as ESM, about 10 ms through require. esbuild's CommonJS interop reads a
 * property only where the code uses it, so nothing is loaded that is not used.
 * @type {import('esbuild').Plugin}
 */
const builtinsByRequire = {
  name: "builtins-by-require",
  setup(build) {
    const builtins = new Set(builtinModules);
    const namespace = "builtin-by-require";
    build.onResolve({ filter: /^(node:)?[a-z_/0-9]+$/ }, (args) => {
      if (!builtins.has(args.path.replace(/^node:/, ""))) return undefined;
      if (args.namespace === namespace) return { path: args.path, external: true }; // the require below
      if (args.kind !== "import-statement") return undefined;
      return { path: args.path, namespace };
    });
    build.onLoad({ filter: /.*/, namespace }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: "js",
    }));
  },
};

/**
 * The gateway config, checked when building and written into each bundle: shared/config/checked.ts
 * (`gatewayAtStart`) is replaced by the config `loadGateway` returns for the stage being built,
 * evaluated with the environment serverless.yml gives the function (its own over the provider's,
 * over the building process's). A cold start then parses no schema and loads no validation library
 * (valibot, ipaddr.js and every concern's checks: about 40 ms of import), and a bundle started as
 * another stage refuses to start. A value serverless.yml leaves to CloudFormation (a `Ref`) is not
 * known when building; gateway.config.ts reads none.
 * `service()` gives the resolved service: `serverless.service`, or `serverless print --format json`.
 * @param {string} root the service directory
 * @param {() => { provider: { stage: string, environment?: Record<string, unknown> }, functions?: Record<string, { handler?: string, environment?: Record<string, unknown> }> }} service
 * @returns {import('esbuild').Plugin}
 */
function checkedGatewayConfig(root, service) {
  return {
    name: "checked-gateway-config",
    setup(build) {
      const options = build.initialOptions;
      const cwd = options.absWorkingDir ?? process.cwd();
      const entries = (
        Array.isArray(options.entryPoints) ? options.entryPoints : Object.values(options.entryPoints ?? {})
      )
        .map((entry) => (typeof entry === "string" ? entry : entry.in))
        .map((entry) => path.resolve(cwd, entry).replace(/\.[cm]?[jt]s$/, ""));
      build.onLoad({ filter: /[\\/]shared[\\/]config[\\/]checked\.ts$/ }, async () => {
        const { provider, functions = {} } = service();
        // Each function this build bundles; none (the bench's floor): the provider's environment.
        const environments = Object.values(functions)
          .filter(
            (fn) => fn.handler && entries.includes(path.resolve(root, fn.handler.replace(/\.[^./]+$/, ""))),
          )
          .map((fn) => ({ ...provider.environment, ...fn.environment }));
        const configs = new Set(
          await Promise.all(
            (environments.length > 0 ? environments : [{ ...provider.environment }]).map((environment) =>
              checkedConfig(root, provider.stage, environment),
            ),
          ),
        );
        if (configs.size > 1) {
          return {
            errors: [
              {
                text: "functions sharing this handler file get different gateway configs from their environments",
              },
            ],
          };
        }
        const [config] = configs;
        return {
          loader: "js",
          contents: `// The gateway config of stage ${JSON.stringify(provider.stage)}, checked when building (esbuild.config.cjs).
const config = JSON.parse(${JSON.stringify(config)});
export function gatewayAtStart(stage) {
  if (stage !== ${JSON.stringify(provider.stage)}) {
    const error = new Error(\`this bundle holds the gateway config of stage ${provider.stage}, not of stage \${stage}; package it for its stage\`);
    error.name = "GatewayConfigError";
    throw error;
  }
  return config;
}
`,
        };
      });
    },
  };
}

/** One config evaluation at a time: each sets process.env to its function's environment. */
let evaluating = Promise.resolve();

/**
 * `loadGateway(definition, stage)` as JSON, with `environment` over process.env while
 * gateway.config.ts loads and runs. tsx gives each import a fresh module graph, so nothing read from
 * one function's environment (shared/config/env.ts keeps what it reads) reaches another's.
 * @param {string} root @param {string} stage @param {Record<string, unknown>} environment
 * @returns {Promise<string>}
 */
function checkedConfig(root, stage, environment) {
  const run = async () => {
    const known = Object.entries(environment).filter(([, value]) =>
      ["string", "number", "boolean"].includes(typeof value),
    );
    const saved = known.map(([name]) => [name, process.env[name]]);
    for (const [name, value] of known) process.env[name] = String(value);
    try {
      const { tsImport } = await import("tsx/esm/api");
      const url = pathToFileURL(`${root}/`).href;
      const { loadGateway } = await tsImport("./shared/config/gateway.ts", url);
      const { default: definition } = await tsImport("./gateway.config.ts", url);
      return JSON.stringify(loadGateway(definition, stage));
    } finally {
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  };
  const result = evaluating.then(run);
  evaluating = result.catch(() => undefined);
  return result;
}

/**
 * The deploy's build options for one stage's functions: serverless-esbuild builds with these (below),
 * and so do the bench and the bundle tests, so what they measure and load is what is deployed.
 * `service()` gives the resolved service (see checkedGatewayConfig).
 * @param {string} root @param {Parameters<typeof checkedGatewayConfig>[1]} service
 * @returns {import('esbuild').BuildOptions}
 */
function bundleOptions(root, service) {
  return { ...esbuildOptions, plugins: [builtinsByRequire, checkedGatewayConfig(root, service)] };
}

/**
 * Lambda loads `.mjs` as ESM with no package.json in the zip. `serverless invoke local` (osls) can only
 * load ESM from `.js`, which this repository's `"type": "module"` makes ESM; so that one command gets `.js`.
 * @param {{ processedInput?: { commands?: string[] }, serviceDir: string, service: any }} serverless
 */
module.exports = (serverless) => {
  const commands = serverless?.processedInput?.commands ?? [];
  const invokeLocal = commands[0] === "invoke" && commands[1] === "local";
  const options = bundleOptions(serverless.serviceDir, () => serverless.service);
  // Its own build folder too: serverless-offline resolves `.js` before `.mjs`, so a `.js` bundle left in
  // the shared folder by an earlier `invoke local` would shadow (stale) the one `npm start` builds.
  return {
    ...options,
    ...pluginOptions,
    plugins: [...(options.plugins ?? []), chunksBesideEntry],
    ...(invokeLocal ? { outputFileExtension: ".js", outputBuildFolder: ".build-invoke" } : {}),
  };
};
module.exports.bundleOptions = bundleOptions;
