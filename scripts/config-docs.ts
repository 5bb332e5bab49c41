import { writeFile } from "node:fs/promises";
import { configReference } from "./config-reference.ts";

/** `npm run config:docs`: regenerates docs/gateway.schema.json and docs/configuration.md from shared/config. */
for (const [file, text] of Object.entries(configReference())) {
  await writeFile(new URL(`../${file}`, import.meta.url), text);
  console.log(`wrote ${file}`);
}
