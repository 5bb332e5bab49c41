import ipaddr from "ipaddr.js";
import * as v from "valibot";
import { SCOPE_TOKEN } from "../auth/scopes.ts";

/**
 * Field schemas more than one concern of the gateway config uses. Each message names what is wrong
 * and what would be right; loadGateway puts the field's path in front of it.
 */

/** A problem a cross-field check found: the field's dot path, then what is wrong and how to fix it. */
export type ConfigProblem = string;

/** Attaches a description that reaches the JSON Schema and docs/configuration.md. */
export const described = <const TSchema extends v.GenericSchema>(schema: TSchema, text: string) =>
  v.pipe(schema, v.description(text));

export const cidr = v.pipe(
  v.string(),
  v.check((value) => {
    try {
      ipaddr.parseCIDR(value);
      return true;
    } catch {
      return false;
    }
  }, "must be a CIDR block such as 203.0.113.0/24 or 2001:db8::/32 (a single address is /32 or /128)"),
);

export const scope = v.pipe(
  v.string(),
  v.regex(
    SCOPE_TOKEN,
    "a scope is one word of printable ASCII (RFC 6749), such as orders:read; remove spaces",
  ),
);

export const headerName = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9!#$%&'*+.^_`|~-]+$/, "a header name in lower case, such as x-client-id"),
);

/** A whole number in [min, max]; the message says the range. */
export const int = (min: number, max?: number) =>
  max === undefined
    ? v.pipe(v.number(), v.integer("a whole number"), v.minValue(min, `at least ${min}`))
    : v.pipe(
        v.number(),
        v.integer("a whole number"),
        v.minValue(min, `at least ${min} (${min} to ${max})`),
        v.maxValue(max, `at most ${max} (${min} to ${max})`),
      );

export const nonEmptyList = (item: v.GenericSchema<string, string>, what: string) =>
  v.pipe(v.array(item), v.minLength(1, `${what}: list at least one (leaving it out would accept any)`));

/**
 * An object that refuses members it does not know, so a misspelt field is an error rather than a
 * silently ignored setting. `what` names it in the message.
 */
export const strict = <const TEntries extends v.ObjectEntries>(what: string, entries: TEntries) =>
  v.strictObject(entries, (issue) =>
    issue.expected === "never"
      ? `${what} has no member ${JSON.stringify(issue.input)}; remove it or fix its name (${what} takes ${Object.keys(entries).join(", ")})`
      : `${what} is an object`,
  );
