import { BadRequestError } from "../errors.ts";
import { parseTemplate } from "../routing/router.ts";

/**
 * Path rewriting for proxied routes, safe against request forgery: the upstream's scheme and host come
 * only from the config, and a path parameter can only ever fill its own segment(s). A value that
 * could change the shape of the path (`..`, `/`, `\`, `@`, control characters, an absolute URL) is
 * refused with 400 rather than encoded and hoped for the best; everything else is percent-encoded.
 *
 * Example: `compilePathRewrite("/api/users/{id}")({ id: "42" })` → `/api/users/42`.
 */

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f]/;
const ABSOLUTE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** Half of a surrogate pair on its own: no UTF-8 encodes it, so it has no percent-encoding. */
const LONE_SURROGATE = /\p{Cs}/u;

/** Refuses a segment value that is not a plain piece of a path; returns it percent-encoded. */
function safeSegment(name: string, value: string): string {
  const reason =
    value === ""
      ? "is empty"
      : value === "." || value === ".." || value.includes("..")
        ? "contains a dot-segment"
        : CONTROL.test(value)
          ? "contains a control character"
          : /[/\\]/.test(value)
            ? "contains a slash"
            : value.includes("@")
              ? "contains @"
              : ABSOLUTE_URL.test(value)
                ? "looks like an absolute URL"
                : LONE_SURROGATE.test(value)
                  ? "is not well-formed Unicode"
                  : undefined;
  if (reason) throw new BadRequestError(`Path parameter ${name} ${reason}`);
  return encodeURIComponent(value);
}

/**
 * Compiles an upstream path template. Its `{name}` parameters must come from the route; a `{name+}`
 * takes a greedy route parameter and keeps its segments (each checked and encoded on its own).
 */
export function compilePathRewrite(template: string) {
  const parts = parseTemplate(template).map((segment) => {
    const match = segment.match(PARAM);
    return match ? { name: match[1] as string, greedy: match[2] === "+" } : { literal: segment };
  });
  const names = parts.flatMap((part) => ("name" in part ? [part.name] : []));

  function rewritePath(params: Record<string, string | undefined>): string {
    const segments = parts.map((part) => {
      if ("literal" in part) return part.literal;
      const value = params[part.name];
      if (value === undefined) throw new BadRequestError(`Path parameter ${part.name} is missing`);
      return part.greedy
        ? value
            .split("/")
            .map((segment) => safeSegment(part.name, segment))
            .join("/")
        : safeSegment(part.name, value);
    });
    return `/${segments.join("/")}`;
  }
  return Object.assign(rewritePath, { params: names });
}
