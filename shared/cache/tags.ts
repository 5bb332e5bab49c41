/**
 * Cache tags (docs/caching.md, "Purging"): a cached route names tags such as `products` or
 * `product:{id}`, where `{id}` is one of its path parameters. A tag is never stored with an entry: a
 * purge by tag is turned, through the config, into purges by route and path parameters, so changing a
 * route's tags applies at once to the entries already stored. Pure.
 */

/**
 * What may follow a parameter in a tag: a parameter's value runs to the next of these the template
 * has after it (or to the end), so reading a tag back is never ambiguous. A value holding one of
 * them is written percent-encoded (`%3A` for `:`), as in a URL.
 */
export const TAG_SEPARATORS = ":/#=@,;|";

/** A tag as written in the config: literal text and `{name}` parameters. */
export const TAG_TEMPLATE = /^(?:[A-Za-z0-9._~:/#=@,;|!*'()-]|\{[A-Za-z_][A-Za-z0-9_]*\})+$/;

export type TagPart = { literal: string } | { param: string };

/** `product:{id}` → `[{ literal: "product:" }, { param: "id" }]`. The template is assumed valid (`TAG_TEMPLATE`). */
export function parseTagTemplate(template: string): TagPart[] {
  const parts: TagPart[] = [];
  for (const [, literal, param] of template.matchAll(/([^{]+)|\{([^}]+)\}/g)) {
    if (literal !== undefined) parts.push({ literal });
    else if (param !== undefined) parts.push({ param });
  }
  return parts;
}

/**
 * What is wrong with a tag template for a route with these path parameters, one message per
 * problem (empty when it is fine): an unknown parameter, or a parameter not followed by a separator
 * or the end (`{a}{b}`, `{id}x`), whose value could not be told from the text after it.
 */
export function tagTemplateProblems(template: string, routeParams: readonly string[]): string[] {
  const problems: string[] = [];
  const parts = parseTagTemplate(template);
  for (const [index, part] of parts.entries()) {
    if (!("param" in part)) continue;
    if (!routeParams.includes(part.param)) {
      problems.push(
        `{${part.param}} is not a path parameter of the route (${routeParams.length > 0 ? `it has ${routeParams.map((name) => `{${name}}`).join(", ")}` : "it has none"}); use one of those, or write the tag without it`,
      );
    }
    const next = parts[index + 1];
    if (next && !("literal" in next && TAG_SEPARATORS.includes(next.literal[0] as string))) {
      problems.push(
        `{${part.param}} is followed by ${"param" in next ? `{${next.param}}` : JSON.stringify(next.literal[0])}; a parameter's value runs to the next separator (${TAG_SEPARATORS.split("").join(" ")}) or the end of the tag, so put one after it`,
      );
    }
  }
  return problems;
}

/**
 * The parameters a tag binds when it fits the template, as written in the tag (not yet decoded);
 * undefined when it does not fit. Example: `matchTag(parseTagTemplate("product:{id}"), "product:42")`
 * → `{ id: "42" }`. A parameter used twice must bind the same text both times.
 */
export function matchTag(parts: readonly TagPart[], tag: string): Record<string, string> | undefined {
  const bound: Record<string, string> = {};
  let at = 0;
  for (const [index, part] of parts.entries()) {
    if ("literal" in part) {
      if (!tag.startsWith(part.literal, at)) return undefined;
      at += part.literal.length;
      continue;
    }
    const next = parts[index + 1];
    // A checked template has a separator (a literal) after every parameter but a last one.
    const end = next && "literal" in next ? tag.indexOf(next.literal[0] as string, at) : tag.length;
    if (end === -1 || end === at) return undefined;
    const value = tag.slice(at, end);
    if (Object.hasOwn(bound, part.param) && bound[part.param] !== value) return undefined;
    bound[part.param] = value;
    at = end;
  }
  return at === tag.length ? bound : undefined;
}
