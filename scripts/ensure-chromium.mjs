// Chromium for the browser e2e test, from Debian's package (playwright-core drives it through
// `executablePath`; a browser download cannot work on these machines). Used by scripts/test.mjs:
// when CHROMIUM_PATH is unset and no `chromium` is on PATH, it installs Debian's package if it can
// (root with apt-get), and otherwise says how to. Returns the path, or undefined.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

/** @param {string} name @returns {string | undefined} */
const which = (name) => {
  const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return found.status === 0 ? found.stdout.trim() : undefined;
};

/** @returns {string | undefined} */
export function ensureChromium() {
  if (process.env.CHROMIUM_PATH)
    return existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : undefined;
  const present = which("chromium");
  if (present) return present;
  if (process.getuid?.() !== 0 || !which("apt-get")) {
    console.error(
      "Chromium is missing: the browser test needs Debian's package. Install it with " +
        "`sudo apt-get install chromium`, or point CHROMIUM_PATH at a Chromium.",
    );
    return undefined;
  }
  console.log("Installing Debian's chromium for the browser test (apt-get) ...");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [
    ["update", "-qq"],
    ["install", "-y", "-qq", "chromium"],
  ]) {
    const step = spawnSync("apt-get", args, { stdio: ["ignore", "ignore", "inherit"], env });
    if (step.status !== 0) {
      console.error(`apt-get ${args.join(" ")} failed (exit ${step.status}); the browser test will fail.`);
      return undefined;
    }
  }
  return which("chromium");
}
