import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { init, parse } from "es-module-lexer";
import JSZip from "jszip";
import { BUNDLE_ENV, serverless } from "../support/serverless.ts";

const run = promisify(execFile);

/** The relative modules a bundle or chunk imports, statically or dynamically (string specifiers). */
function relativeImports(file: string, source: string): string[] {
  const [imports] = parse(source);
  return imports
    .map((i) => i.n)
    .filter((specifier): specifier is string => specifier?.startsWith(".") === true)
    .map((specifier) => posix.join(posix.dirname(file), specifier));
}

/** Every module `entry` reaches through relative imports, itself included; a missing one is listed. */
function reachable(entry: string, files: Map<string, string>) {
  const seen = new Set<string>();
  const missing = new Set<string>();
  const pending = [entry];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (seen.has(file) || missing.has(file)) continue;
    const source = files.get(file);
    if (source === undefined) {
      missing.add(file);
      continue;
    }
    seen.add(file);
    pending.push(...relativeImports(file, source));
  }
  return { seen, missing };
}

// `serverless package --stage prod`, as a deploy runs it; then each function's zip read as Lambda gets it.
describe("serverless package", () => {
  const out = mkdtempSync(join(tmpdir(), "gatehouse-package-"));
  let functions: Array<[string, { handler: string; package: { artifact: string } }]> = [];
  before(async () => {
    await init;
    const packaged = await serverless(["package", "--stage", "prod", "--package", out]);
    assert.equal(packaged.code, 0, packaged.stderr + packaged.stdout);
    const state = JSON.parse(readFileSync(join(out, "serverless-state.json"), "utf8"));
    functions = Object.entries(state.service.functions);
  });
  after(() => rmSync(out, { recursive: true, force: true }));

  it("zips for each function its bundle, the chunks that bundle imports (statically or dynamically) and their sourcemaps, and no other chunk", async () => {
    assert.ok(functions.length >= 5);
    for (const [name, fn] of functions) {
      const zip = await JSZip.loadAsync(readFileSync(join(out, posix.basename(fn.package.artifact))));
      const files = Object.values(zip.files).filter((entry) => !entry.dir);
      const names = files.map((entry) => entry.name);
      const modules = new Map<string, string>();
      for (const file of files.filter((f) => f.name.endsWith(".mjs"))) {
        modules.set(file.name, await file.async("string"));
      }
      const entry = `${fn.handler.slice(0, fn.handler.lastIndexOf("."))}.mjs`;
      const { seen, missing } = reachable(entry, modules);
      assert.deepEqual([...missing], [], `${name}: imported but not in its zip`);
      const expected = [...seen].flatMap((file) => [file, `${file}.map`]).sort();
      const code = names.filter((n) => n.endsWith(".mjs") || n.endsWith(".mjs.map")).sort();
      assert.deepEqual(code, expected, `${name}: the zip's modules are exactly those its bundle reaches`);
    }
  });

  it("unzips into a folder where each handler and every chunk of its zip import on the Node running the suite", async () => {
    for (const [name, fn] of functions) {
      const zip = await JSZip.loadAsync(readFileSync(join(out, posix.basename(fn.package.artifact))));
      const dir = mkdtempSync(join(tmpdir(), `gatehouse-unzipped-${name}-`));
      try {
        for (const entry of Object.values(zip.files)) {
          if (entry.dir) continue;
          const path = join(dir, entry.name);
          mkdirSync(dirname(path), { recursive: true });
          writeFileSync(path, await entry.async("nodebuffer"));
        }
        const entry = join(dir, `${fn.handler.slice(0, fn.handler.lastIndexOf("."))}.mjs`);
        // Importing each chunk too runs what a lazy path would load (the API-key store, the Lambda SDK).
        const chunks = readdirSync(dir, { recursive: true, encoding: "utf8" })
          .filter((file) => file.endsWith(".mjs") && join(dir, file) !== entry)
          .map((file) => pathToFileURL(join(dir, file)).href);
        const exportName = fn.handler.slice(fn.handler.lastIndexOf(".") + 1);
        const probe = `const m = await import(${JSON.stringify(pathToFileURL(entry).href)});
for (const chunk of ${JSON.stringify(chunks)}) await import(chunk);
process.stdout.write(typeof m[${JSON.stringify(exportName)}] + " " + ${chunks.length});`;
        // Stage prod, as packaged: a bundle holds the config of its stage and refuses any other.
        const { stdout } = await run(process.execPath, ["--input-type=module", "-e", probe], {
          cwd: dir,
          env: { ...BUNDLE_ENV, GATEHOUSE_STAGE: "prod" },
        });
        assert.equal(stdout, `function ${chunks.length}`, `${name} exports ${exportName}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});
