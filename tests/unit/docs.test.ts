/**
 * The docs keep their promises: every `npm …` / `npx …` command that README.md and docs/*.md show
 * names a script of package.json, an npm command or an installed bin; every relative link resolves
 * (the file, and its #anchor by GitHub's heading slugs); and the README stays short.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, posix, resolve } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import * as errors from "#shared/errors.ts";
import { ACTIONS } from "#shared/ws/protocol.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

const README_MAX_LINES = 250;

/** npm's own commands that the docs may show; `test`, `start`, `stop`, `restart` need their script. */
const NPM_COMMANDS = new Set(["ci", "install", "i", "exec", "ls", "view", "pack", "outdated", "update"]);
const SCRIPT_SHORTCUTS: Record<string, string> = { test: "test", t: "test", start: "start", stop: "stop" };

interface Doc {
  /** Path from the repository root, with `/`. */
  path: string;
  text: string;
}

interface Repo {
  scripts: ReadonlySet<string>;
  bins: ReadonlySet<string>;
  /** Reads a file by its path from the root, or undefined when there is none (or it is a folder). */
  read(path: string): string | undefined;
  exists(path: string): boolean;
}

/**
 * A document split into its code (fenced blocks and code spans), its prose (code blanked), and its
 * lines outside fenced blocks (code spans kept, for headings).
 */
function split(markdown: string): { prose: string; code: string[]; outside: string[] } {
  const code: string[] = [];
  const prose: string[] = [];
  const outside: string[] = [];
  let fence: string | undefined;
  let block: string[] = [];
  for (const line of markdown.split("\n")) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === undefined && marker !== undefined) {
      fence = marker;
      block = [];
      prose.push("");
      outside.push("");
    } else if (fence !== undefined && marker?.startsWith(fence)) {
      fence = undefined;
      code.push(block.join("\n"));
      prose.push("");
      outside.push("");
    } else if (fence !== undefined) {
      block.push(line);
      prose.push("");
      outside.push("");
    } else {
      outside.push(line);
      prose.push(
        line.replace(/(`+)([^`]|[^`].*?[^`])\1(?!`)/g, (_, _ticks: string, span: string) => {
          code.push(span);
          return " ".repeat(span.length);
        }),
      );
    }
  }
  return { prose: prose.join("\n"), code, outside };
}

/** GitHub's anchor for a heading's text (github-slugger's rules, on the text as rendered). */
function slug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1") // a link counts by its text
    .replace(/[`*]/g, "")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** Every anchor a document defines: its headings' slugs (repeats get -1, -2, …) and HTML ids. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const line of split(markdown).outside) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading !== undefined) {
      const base = slug(heading);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      anchors.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const match of line.matchAll(/<a\s[^>]*\b(?:id|name)="([^"]+)"/g)) anchors.add(match[1] ?? "");
  }
  return anchors;
}

/** The targets of a document's links and link definitions, outside code. */
function linksIn(markdown: string): string[] {
  const { prose } = split(markdown);
  const inline = [...prose.matchAll(/\]\(\s*<?([^()\s>]+(?:\([^()\s]*\))?)>?(?:\s+"[^"]*")?\s*\)/g)];
  const defined = [...prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)];
  return [...inline, ...defined].map((match) => match[1] ?? "");
}

/** What is wrong with one link target of `doc`, or undefined. */
function checkLink(doc: Doc, target: string, repo: Repo): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith("//")) return undefined; // not relative
  const hash = target.indexOf("#");
  const rawPath = hash === -1 ? target : target.slice(0, hash);
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
  const path =
    rawPath === "" ? doc.path : posix.normalize(posix.join(posix.dirname(doc.path), decodeURI(rawPath)));
  const where = `${doc.path}: link ${target}`;
  if (path.startsWith("../") || path === "..") return `${where} leaves the repository`;
  const file = path.replace(/\/$/, "");
  if (!repo.exists(file)) {
    return `${where}: ${file} does not exist`;
  }
  if (anchor === undefined) return undefined;
  const text = repo.read(file);
  if (text === undefined) return `${where}: ${file} is a folder and has no anchors`;
  if (file.endsWith(".md")) {
    return anchorsOf(text).has(anchor) ? undefined : `${where}: ${file} has no heading #${anchor}`;
  }
  const lines = /^L(\d+)(?:-L(\d+))?$/.exec(anchor);
  if (lines === null) return `${where}: only #L<line> anchors can point into ${file}`;
  const last = Number(lines[2] ?? lines[1]);
  const count = text.split("\n").length;
  return last <= count ? undefined : `${where}: ${file} has ${count} lines`;
}

/** What is wrong with the `npm`/`npx` commands in a piece of code, one message each. */
function checkCommands(doc: Doc, code: string, repo: Repo): string[] {
  const problems: string[] = [];
  const commands = code.replace(/(^|\s)#.*$/gm, "$1"); // shell comments are prose
  for (const match of commands.matchAll(/(?:^|[\s;(&|$])(npm|npx)\s+([^\n;&|)`]*)/g)) {
    const [tool, rest] = [match[1], match[2] ?? ""];
    const words = rest.trim().split(/\s+/);
    const shown = `${doc.path}: \`${tool} ${rest.trim()}\``;
    if (tool === "npx") {
      if (words.some((w) => w === "-y" || w === "--yes" || w.startsWith("--package"))) continue; // fetches its own
      const bin = words.find((w) => !w.startsWith("-"));
      if (bin === undefined || !repo.bins.has(bin)) problems.push(`${shown}: no installed bin ${bin}`);
      continue;
    }
    const args = words.filter((w) => !w.startsWith("-"));
    const [command, script] = args;
    if (command === "run" || command === "run-script") {
      if (script === undefined) problems.push(`${shown}: names no script`);
      else if (!repo.scripts.has(script)) problems.push(`${shown}: package.json has no script "${script}"`);
    } else if (command !== undefined && command in SCRIPT_SHORTCUTS) {
      const name = SCRIPT_SHORTCUTS[command] ?? command;
      if (!repo.scripts.has(name)) problems.push(`${shown}: package.json has no script "${name}"`);
    } else if (command === undefined || !NPM_COMMANDS.has(command)) {
      problems.push(`${shown}: "${command}" is neither an npm command nor a script shortcut`);
    }
  }
  return problems;
}

/** Every problem in `docs`: bad links and commands. */
function checkDocs(docs: Doc[], repo: Repo): string[] {
  return docs.flatMap((doc) => {
    const { code } = split(doc.text);
    return [
      ...linksIn(doc.text).flatMap((target) => checkLink(doc, target, repo) ?? []),
      ...code.flatMap((piece) => checkCommands(doc, piece, repo)),
    ];
  });
}

function repoOnDisk(root: string): Repo {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts?: object };
  const binDir = join(root, "node_modules", ".bin");
  return {
    scripts: new Set(Object.keys(pkg.scripts ?? {})),
    bins: new Set(existsSync(binDir) ? readdirSync(binDir) : []),
    exists: (path) => existsSync(join(root, path)),
    read: (path) => {
      const full = join(root, path);
      return existsSync(full) && statSync(full).isFile() ? readFileSync(full, "utf8") : undefined;
    },
  };
}

function docsOnDisk(root: string): Doc[] {
  const paths = [
    "README.md",
    ...readdirSync(join(root, "docs"))
      .filter((name) => name.endsWith(".md"))
      .map((name) => `docs/${name}`),
  ];
  return paths.map((path) => ({ path, text: readFileSync(join(root, path), "utf8") }));
}

/** A repository in memory: `files` by path, folders implied by them. */
function repoInMemory(files: Record<string, string>, scripts: string[], bins: string[] = []): Repo {
  const folders = new Set(
    Object.keys(files).flatMap((path) =>
      path
        .split("/")
        .slice(0, -1)
        .map((_, i, parts) => parts.slice(0, i + 1).join("/")),
    ),
  );
  return {
    scripts: new Set(scripts),
    bins: new Set(bins),
    exists: (path) => path in files || folders.has(path),
    read: (path) => files[path],
  };
}

describe("docs", () => {
  it("README.md and docs/*.md: every npm/npx command exists and every relative link resolves", () => {
    const problems = checkDocs(docsOnDisk(ROOT), repoOnDisk(ROOT));
    assert.deepEqual(problems, []);
  });

  it(`README.md stays under ${README_MAX_LINES} lines`, () => {
    const lines = readFileSync(join(ROOT, "README.md"), "utf8").trimEnd().split("\n").length;
    assert.ok(lines < README_MAX_LINES, `README.md has ${lines} lines`);
  });
});

describe("docs checker", () => {
  const files = {
    "README.md": "# Gatehouse\n\n## Two commands\n\nSee [usage](docs/usage.md#who-is-counted).\n",
    "docs/usage.md": "# Usage plans\n\n## Who is counted\n\n## Who is counted\n\n## `limit.cost` (units)\n",
    "shared/errors.ts": "a\nb\nc\n",
  };

  it("GitHub slugs: punctuation dropped, spaces to hyphens, code and links by their text", () => {
    assert.equal(slug("Keys of the old format (`gh_…`)"), "keys-of-the-old-format-gh_");
    assert.equal(
      slug("Identity headers with other characters (for upstream authors)"),
      "identity-headers-with-other-characters-for-upstream-authors",
    );
    assert.equal(slug("What `npm start` runs"), "what-npm-start-runs");
    assert.equal(slug("See [the guide](x.md): step 2.1"), "see-the-guide-step-21");
  });

  it("accepts links that resolve: files, folders, headings, repeated headings, source lines", () => {
    const doc = {
      path: "docs/usage.md",
      text: [
        "[a](../README.md#two-commands) [b](#who-is-counted-1) [c](#limitcost-units) [d](../shared/)",
        "[e](../shared/errors.ts#L2) [f](https://example.com/nothing#here)",
        "`[not a link](nowhere.md)`",
        "```",
        "[nor this](nowhere.md)",
        "```",
      ].join("\n"),
    };
    assert.deepEqual(checkDocs([doc], repoInMemory(files, [])), []);
  });

  it("reports a missing file, a missing heading, a link out of the repository and a line past the end", () => {
    const doc = {
      path: "README.md",
      text: [
        "[a](docs/usge.md) [b](docs/usage.md#who-is-billed) [c](#three-commands)",
        "[d](../elsewhere.md) [e](shared/errors.ts#L9) [f](docs/openapi.md#routes)",
        "[ref]: docs/missing.md",
      ].join("\n"),
    };
    const problems = checkDocs([doc], repoInMemory(files, []));
    assert.equal(problems.length, 7, problems.join("\n"));
    assert.match(problems[0] ?? "", /docs\/usge\.md does not exist/);
    assert.match(problems[1] ?? "", /has no heading #who-is-billed/);
    assert.match(problems[2] ?? "", /has no heading #three-commands/);
    assert.match(problems[3] ?? "", /leaves the repository/);
    assert.match(problems[4] ?? "", /has 4 lines/);
    assert.match(problems[5] ?? "", /docs\/openapi\.md does not exist/);
    assert.match(problems[6] ?? "", /docs\/missing\.md does not exist/);
  });

  it("accepts scripts, npm commands and installed bins; reports the rest", () => {
    const repo = repoInMemory(files, ["start", "test", "token", "bench"], ["serverless"]);
    const ok = {
      path: "README.md",
      text: [
        "```sh",
        "npm ci --no-audit",
        'curl -H "authorization: Bearer $(npm run -s token -- --sub alice)" http://x',
        "npm test -- unit && npm start",
        "npx serverless print --stage prod",
        "npx -y node@24 scripts/test.mjs",
        "```",
        "Run `npm run bench -- fanout`.",
      ].join("\n"),
    };
    assert.deepEqual(checkDocs([ok], repo), []);

    const bad = {
      path: "README.md",
      text: ["```sh", "npm run tokens -- --sub alice", "npm run", "npm serve", "npx sls deploy", "```"].join(
        "\n",
      ),
    };
    const problems = checkDocs([bad], repoInMemory(files, ["token"], ["serverless"]));
    assert.equal(problems.length, 4, problems.join("\n"));
    assert.match(problems[0] ?? "", /no script "tokens"/);
    assert.match(problems[1] ?? "", /names no script/);
    assert.match(problems[2] ?? "", /"serve" is neither/);
    assert.match(problems[3] ?? "", /no installed bin sls/);
  });
});

/** The rows of the first table under `## <heading>` in `markdown`, as cells. */
function tableUnder(markdown: string, heading: string): string[][] {
  const lines = markdown.split("\n");
  const start = lines.indexOf(`## ${heading}`);
  assert.notEqual(start, -1, `no "## ${heading}"`);
  const section = lines.slice(start + 1);
  const end = section.findIndex((line) => line.startsWith("## "));
  return (end === -1 ? section : section.slice(0, end))
    .filter((line) => line.startsWith("|") && !/^\|\s*-/.test(line))
    .slice(1) // the header row
    .map((line) => line.split(" | ").map((cell) => cell.replace(/^\|\s*|\s*\|$/g, "")));
}

describe("docs that describe code", () => {
  it("docs/errors.md lists every HttpError of shared/errors.ts with its status and type, and no other", () => {
    const docs = readFileSync(join(ROOT, "docs", "errors.md"), "utf8");
    const rows = tableUnder(docs, "The problem types").map(
      ([status, type, name]) => `${status} ${type} ${name}`,
    );
    // Every class takes (message, second argument): an options object, the allowed methods of a 405
    // or the seconds of a 429; only the status and slug are read here.
    const exported: unknown[] = Object.values(errors);
    const classes = exported.filter(
      (value): value is new (message: string, second: string[]) => errors.HttpError =>
        typeof value === "function" && value.prototype instanceof errors.HttpError,
    );
    const expected = classes.map((Class) => {
      const error = new Class("docs", ["GET"]);
      return `${error.statusCode} \`urn:gatehouse:problem:${error.slug}\` \`${error.name}\``;
    });
    assert.deepEqual([...rows].sort(), [...expected].sort());
  });

  it("docs/real-time.md's protocol table shows exactly the actions of shared/ws/protocol.ts", () => {
    const docs = readFileSync(join(ROOT, "docs", "real-time.md"), "utf8");
    const shown = tableUnder(docs, "The protocol").flatMap(([message]) =>
      [...(message ?? "").matchAll(/"action":"([^"]+)"/g)].map((match) => match[1]),
    );
    assert.deepEqual([...new Set(shown)].sort(), [...ACTIONS].sort());
  });
});
