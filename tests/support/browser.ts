import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

/** Debian's Chromium (browser downloads fail here); `CHROMIUM_PATH` points the browser tests at another. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * Launches Chromium headless for a browser test. A missing browser is a broken test machine, not a
 * reason to pass: it fails and says how to fix it.
 */
export async function launchChromium(): Promise<Browser> {
  assert.ok(
    existsSync(CHROMIUM),
    `No Chromium at ${CHROMIUM}. Install it (sudo apt-get install chromium) or set CHROMIUM_PATH to a Chromium binary.`,
  );
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}
