import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const EVENTS_DIR = join(import.meta.dirname, "..", "..", "events");

/** Every sample event file with the function it belongs to (`<function>[.<variant>].json`). */
export function eventFiles(): { file: string; functionName: string }[] {
  return readdirSync(EVENTS_DIR)
    .filter((name) => name.endsWith(".json"))
    .sort()
    .map((file) => ({ file, functionName: file.split(".")[0] as string }));
}

/** A fresh copy of a sample event from `events/`, safe to change. */
export function loadEvent<T = Record<string, unknown>>(file: string): T {
  return structuredClone(JSON.parse(readFileSync(join(EVENTS_DIR, file), "utf8"))) as T;
}
