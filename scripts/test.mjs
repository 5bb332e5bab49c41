// `npm test`: every test file under tests/unit, tests/integration and tests/e2e (or the groups named
// as arguments: `npm test -- unit`), on Node's own test runner with TypeScript through tsx.
// Runs on whatever Node runs this script, so `npx -y node@24 scripts/test.mjs` is the Node 24 run;
// tests that start processes use process.execPath, so they run on that Node too.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { ensureChromium } from "./ensure-chromium.mjs";

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
  { stdio: "inherit", env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" } },
);
process.exit(status ?? (signal ? 1 : 0));
