import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { type BuildOptions, build } from "esbuild";
import { BUNDLE_ENV, type ResolvedService, ROOT, resolvedService } from "../support/serverless.ts";

const run = promisify(execFile);
const { bundleOptions } = createRequire(import.meta.url)(join(ROOT, "esbuild.config.cjs")) as {
  bundleOptions: (root: string, service: () => ResolvedService) => BuildOptions;
};
const BROWSER_PATH = /(^|[/.-])browser([/.-]|$)/;

// Every function bundled with the deploy's own esbuild options and the config of stage "test" (whose
// environment BUNDLE_ENV gives), then loaded in a fresh process on the Node running the suite.
describe("deploy bundles", () => {
  let service: ResolvedService;
  const outdir = mkdtempSync(join(tmpdir(), "gatehouse-bundles-"));
  before(async () => {
    service = await resolvedService("test");
  });
  after(() => rmSync(outdir, { recursive: true, force: true }));

  it("resolve no package to its browser build and load as ES modules exporting their handler", async () => {
    const functions = Object.entries<{ handler: string }>(service.functions);
    assert.ok(functions.length >= 5);
    for (const [name, { handler }] of functions) {
      const dot = handler.lastIndexOf(".");
      const result = await build({
        ...bundleOptions(ROOT, () => service),
        entryPoints: { [name]: join(ROOT, `${handler.slice(0, dot)}.ts`) },
        outdir,
        outExtension: { ".js": ".mjs" },
        metafile: true,
        logLevel: "silent",
      });
      // A package specifier resolved to a browser build; the SDK's node code imports some
      // `*.browser.js` helpers of its own by relative path, which is no wrong resolution.
      const browserInputs = Object.values(result.metafile.inputs)
        .flatMap((input) => input.imports)
        .filter((i) => i.original !== undefined && !i.original.startsWith(".") && BROWSER_PATH.test(i.path))
        .map((i) => i.path);
      assert.deepEqual(browserInputs, [], `${name} bundles browser code`);

      const probe = `const m = await import(${JSON.stringify(join(outdir, `${name}.mjs`))}); process.stdout.write(typeof m[${JSON.stringify(handler.slice(dot + 1))}]);`;
      const { stdout } = await run(process.execPath, ["--input-type=module", "-e", probe], {
        env: BUNDLE_ENV,
      });
      assert.equal(stdout, "function", `${name} exports ${handler}`);
    }
  });
});
