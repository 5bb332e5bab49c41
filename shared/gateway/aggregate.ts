import { BadGatewayError, HttpError, NotFoundError } from "../errors.ts";
import type { HttpResult } from "../http.ts";
import { logger } from "../observability/logger.ts";
import { contentCodings, decodeBody } from "../upstream/encoding.ts";
import type { UpstreamClient, UpstreamResponse } from "../upstream/http-client.ts";
import { compilePathRewrite } from "../upstream/rewrite.ts";

/**
 * Aggregate routes: several upstream calls in parallel, merged into one JSON document.
 *
 * Each call is a GET with the caller's forwarded headers, its own time budget (retries included) and
 * the upstream's breaker. A call succeeds with a 2XX JSON answer; anything else fails it. Policies:
 * - `fail`: the first failure cancels the other calls and answers 404 (an upstream 404) or the
 *   failure's 502/503/504.
 * - `partial`: 200 with what came; a failed call is `null` in the merge input and described under
 *   `_errors`, with `x-gatehouse-complete: false`. If a `required` call failed, or every call did, the
 *   request fails as above.
 */

type Timed = (
  call: { upstream: string; client: UpstreamClient },
  request: Parameters<UpstreamClient>[0],
) => Promise<UpstreamResponse>;

interface Failure {
  status: number;
  title: string;
  detail: string;
  error: HttpError;
}

const PARAM = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Compiles a route's calls once: path rewrites (SSRF-safe) and query templates. */
export function compileAggregate(
  calls: Record<
    string,
    {
      upstream: string;
      path: string;
      query: Record<string, string>;
      required: boolean;
      timeoutMs?: number | undefined;
    }
  >,
  clientOf: (upstream: string) => UpstreamClient,
  maxResponseBytesOf: (upstream: string) => number,
) {
  return Object.entries(calls).map(([name, call]) => ({
    name,
    upstream: call.upstream,
    client: clientOf(call.upstream),
    maxResponseBytes: maxResponseBytesOf(call.upstream),
    rewrite: compilePathRewrite(call.path),
    query: call.query,
    required: call.required,
    timeoutMs: call.timeoutMs,
  }));
}
export type CompiledCall = ReturnType<typeof compileAggregate>[number];

/** Runs the calls and builds the answer. `headers` are the forwarded request headers (identity included). */
export async function runAggregate(
  route: {
    calls: readonly CompiledCall[];
    merge: ((data: unknown) => unknown) | undefined;
    onFailure: "fail" | "partial";
  },
  params: Record<string, string | undefined>,
  headers: Record<string, string>,
  timed: Timed,
): Promise<HttpResult> {
  const cancelAll = new AbortController();
  // Paths and queries first: a bad parameter is the client's 400 before any call is made.
  const prepared = route.calls.map((call) => ({
    call,
    path: call.rewrite(params),
    query: new URLSearchParams(
      Object.entries(call.query).map(([name, template]): [string, string] => [
        name,
        template.replace(PARAM, (_, param: string) => params[param] ?? ""),
      ]),
    ).toString(),
  }));
  const requestHeaders = { ...headers };
  delete requestHeaders["content-type"];
  delete requestHeaders["content-encoding"];

  const outcomes = await Promise.all(
    prepared.map(
      async ({ call, path, query }): Promise<{ name: string; value?: unknown; failure?: Failure }> => {
        const signal = call.timeoutMs
          ? AbortSignal.any([cancelAll.signal, AbortSignal.timeout(call.timeoutMs)])
          : cancelAll.signal;
        try {
          const response = await timed(call, { method: "GET", path, query, headers: requestHeaders, signal });
          const value = readJson(call.name, response, call.maxResponseBytes);
          return { name: call.name, value };
        } catch (error) {
          // Cancelled because another call already failed the request: not a failure of its own.
          const cancelled = cancelAll.signal.aborted;
          const failure = describe(call.name, error, !cancelled);
          const fatal = route.onFailure === "fail" || call.required;
          if (fatal && !cancelAll.signal.aborted) cancelAll.abort(failure.error);
          return { name: call.name, failure };
        }
      },
    ),
  );

  const failures = outcomes.filter((outcome) => outcome.failure);
  if (cancelAll.signal.aborted || (failures.length > 0 && failures.length === outcomes.length)) {
    // The first failure that was not caused by cancelling the others.
    const first = (cancelAll.signal.reason as HttpError | undefined) ?? failures[0]?.failure?.error;
    throw first ?? new BadGatewayError("An aggregate call failed");
  }
  const input: Record<string, unknown> = {};
  for (const outcome of outcomes) input[outcome.name] = outcome.failure ? null : outcome.value;
  let document: unknown;
  try {
    document = route.merge ? route.merge(input) : input;
  } catch (error) {
    throw new BadGatewayError("The upstream answers could not be merged", { cause: error });
  }
  const headersOut: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
  if (failures.length > 0) {
    headersOut["x-gatehouse-complete"] = "false";
    const errors = Object.fromEntries(
      failures.map(({ name, failure }) => [
        name,
        { status: failure?.status, title: failure?.title, detail: failure?.detail },
      ]),
    );
    document =
      typeof document === "object" && document !== null && !Array.isArray(document)
        ? { ...document, _errors: errors }
        : { data: document ?? null, _errors: errors };
  }
  return { statusCode: 200, headers: headersOut, body: JSON.stringify(document ?? null) };
}

function readJson(name: string, response: UpstreamResponse, maxBytes: number): unknown {
  if (response.status === 404) throw new NotFoundError(`The ${name} call found nothing (upstream 404)`);
  if (response.status < 200 || response.status > 299) {
    throw new BadGatewayError(`The ${name} call answered ${response.status}`);
  }
  try {
    // Asked for identity, but an upstream may compress anyway.
    const codings = contentCodings(response.headers["content-encoding"]);
    const body = codings.length > 0 ? decodeBody(response.body, codings, maxBytes) : response.body;
    return JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new BadGatewayError(`The ${name} call answered with a body that is not JSON`, { cause: error });
  }
}

function describe(name: string, error: unknown, log: boolean): Failure {
  const httpError =
    error instanceof HttpError ? error : new BadGatewayError(`The ${name} call failed`, { cause: error });
  if (log && httpError.statusCode >= 500)
    logger.warn("aggregate call failed", { call: name, error: httpError });
  return {
    status: httpError.statusCode,
    title: httpError.title,
    // 5XX details stay in the log; the client sees which call and the generic title.
    detail: httpError.expose ? httpError.message : `The ${name} call failed`,
    error: httpError,
  };
}
