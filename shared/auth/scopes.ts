/**
 * Scopes, parsed one way everywhere: the authorizers (token claims, API key records), the identity
 * context API Gateway hands to functions, the handlers and the `x-gatehouse-scopes` header sent
 * upstream. A scope is one RFC 6749 scope-token (printable ASCII, no space, `"` or `\`).
 *
 * A string is a space-delimited list, as OAuth's `scope` claim is: `"orders:read chat:write"` is two
 * scopes. A list item must itself be one token: `["chat:write", "a b"]` keeps `chat:write` and drops
 * `a b` (a value that would read as two scopes once joined is refused, never split into grants).
 */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * The scopes in a claim or stored value: a space-delimited string, or a list of single tokens. Given
 * several values (a token's `scope`, `scp` and groups), their scopes in order, each once.
 */
export function parseScopes(...values: unknown[]): string[] {
  const scopes = new Set<string>();
  for (const value of values) {
    if (typeof value === "string") {
      for (const token of value.split(" ")) if (SCOPE_TOKEN.test(token)) scopes.add(token);
    } else if (Array.isArray(value)) {
      for (const item of value) if (typeof item === "string" && SCOPE_TOKEN.test(item)) scopes.add(item);
    }
  }
  return [...scopes];
}

/** Scopes as one space-delimited string (the authorizer context, the upstream header). */
export function formatScopes(scopes: readonly string[]): string {
  return scopes.join(" ");
}
