// `npm test`: every test file under tests/unit, tests/integration and tests/e2e (or the groups named
// as arguments: `npm test -- unit`), on Node's own test runner with TypeScript through tsx.
// Through npm it runs on the project's own Node 24 (the `node` dev dependency comes first on npm
// scripts' PATH); tests that start processes use process.execPath, so they run on that Node too.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ensureChromium } from "./ensure-chromium.mjs";

// Node 24 is the deployed runtime and the only one supported; `npm test` brings it (see above).
if (Number(process.versions.node.split(".")[0]) < 24) {
  console.error(
    `Node ${process.version} runs this script: run it as \`npm test\`, on the project's Node 24.`,
  );
  process.exit(1);
}
const groups = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ["unit", "integration", "e2e"];
const files = groups.flatMap((group) =>
  readdirSync(join("tests", group))
    .filter((name) => name.endsWith(".test.ts"))
    .sort()
    .map((name) => join("tests", group, name)),
);
// The browser e2e test drives Debian's Chromium; install it first if this machine lacks it.
if (groups.includes("e2e")) ensureChromium();
console.log(`Node ${process.version}: ${files.length} test files (${groups.join(", ")})`);
const { status, signal } = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-timeout=300000", "--test-concurrency=1", ...files],
  { stdio: "inherit" },
);
process.exit(status ?? (signal ? 1 : 0));
