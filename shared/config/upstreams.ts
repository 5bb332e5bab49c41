import ipaddr from "ipaddr.js";
import * as v from "valibot";
import { largestBody } from "../http.ts";
import { RETRY_BACKOFF } from "../upstream/retry-backoff.ts";
import { upstreamWorstCaseMs } from "./derive.ts";
import { type ConfigProblem, described, int, strict } from "./fields.ts";
import type { GatewayConfig } from "./gateway.ts";

/** Upstreams: the services behind the gateway, HTTP (weighted targets) or Lambda, with their resilience. */

/** The gateway function's own timeout (serverless.yml), under API Gateway's 30 s integration limit. */
export const GATEWAY_BUDGET_MS = 28_000;

/** Hosts an upstream may never be: cloud metadata services and link-local addresses (SSRF targets). */
const FORBIDDEN_HOSTS = new Set(["metadata.google.internal", "metadata", "instance-data"]);
function forbiddenUpstreamHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  if (FORBIDDEN_HOSTS.has(host)) return true;
  if (!ipaddr.isValid(host)) return false;
  const address = ipaddr.process(host);
  const range = address.range();
  return range === "linkLocal" || (address.kind() === "ipv6" && host.startsWith("fd00:ec2:"));
}

const upstreamUrl = v.pipe(
  v.string(),
  v.url("an upstream target is a URL such as https://users.internal:8443"),
  v.check(
    (value) => /^https?:\/\//.test(value),
    "an upstream target uses http:// or https://; change the scheme",
  ),
  v.check((value) => {
    const url = new URL(value);
    return url.username === "" && url.password === "" && url.search === "" && url.hash === "";
  }, "an upstream target has no credentials, query or fragment; remove them (map headers or query under the route's proxy.request)"),
  v.check(
    (value) => !forbiddenUpstreamHost(new URL(value).hostname),
    "an upstream target may not be a link-local or cloud metadata address; point it at the service itself",
  ),
);

const resilience = {
  timeoutMs: described(v.optional(int(50, 25_000), 5_000), "Time for one attempt, in ms."),
  retries: described(
    v.optional(int(0, 5), 2),
    `Extra attempts, for idempotent methods only, ${RETRY_BACKOFF.initialDelayMs} ms apart and doubling up to ${RETRY_BACKOFF.maxDelayMs} ms.`,
  ),
  breaker: described(
    v.optional(
      strict("breaker", {
        consecutiveFailures: described(
          v.optional(int(1, 100), 5),
          "Failures in a row that open a target's circuit.",
        ),
        halfOpenAfterMs: described(
          v.optional(int(100, 300_000), 10_000),
          "How long an open circuit refuses (503) before one trial request.",
        ),
      }),
      {},
    ),
    "The circuit breaker, per target.",
  ),
  maxResponseBytes: described(
    v.optional(
      v.pipe(
        int(1),
        v.maxValue(
          largestBody(true),
          `at most ${largestBody(true)}: a binary answer travels in base64 (4 bytes per 3) inside Lambda's 6 MB (6,291,456-byte) answer`,
        ),
      ),
      4_500_000,
    ),
    `The largest answer read from the upstream (and the most a compressed one may decode to). It must fit Lambda's 6 MB answer in base64, headers beside it: at most ${largestBody(true)}.`,
  ),
};

const HttpUpstreamSchema = described(
  strict("an http upstream", {
    kind: described(v.optional(v.literal("http"), "http"), "`http` (the default) or `lambda`."),
    targets: described(
      v.pipe(
        v.array(
          strict("a target", {
            url: upstreamUrl,
            weight: described(
              v.optional(int(1), 1),
              "Share of the traffic, relative to the other targets' weights.",
            ),
          }),
        ),
        v.minLength(1, "an upstream needs at least one target; add { url }"),
      ),
      "Where the service is: one URL or more (scheme, host, port and a base path; no credentials or query).",
    ),
    ...resilience,
    followRedirects: described(v.optional(v.boolean(), false), "Follow the upstream's redirects itself."),
  }),
  "An HTTP service: weighted targets (the default kind).",
);

const LambdaUpstreamSchema = described(
  strict("a lambda upstream", {
    kind: v.literal("lambda"),
    function: described(
      v.pipe(
        v.string(),
        v.regex(
          /^([A-Za-z0-9_-]{1,64}|arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?)$/,
          "a function is a serverless.yml function key (catalog) or a function ARN",
        ),
      ),
      "A function key of serverless.yml (it becomes `<service>-<stage>-<key>`) or a full function ARN.",
    ),
    code: described(
      v.optional(
        v.pipe(
          v.string(),
          v.regex(
            /^[A-Za-z0-9_./-]+\.[A-Za-z_$][A-Za-z0-9_$]*$/,
            "code is <file without extension>.<export>, such as handlers/services/catalog.handler",
          ),
        ),
      ),
      "The function's code, `<file>.<export>` (e.g. `handlers/services/catalog.handler`): the build then declares the function itself, with the logs-and-tracing role only. Leave it out when serverless.yml declares the function (it needs more rights, say).",
    ),
    payload: described(
      v.optional(v.picklist(["http", "json"], 'payload is "http" or "json"'), "http"),
      "`http` sends an API Gateway v2 event and expects an HTTP result (any Lambda HTTP handler fits); `json` sends `{ method, path, params, query, headers, body, identity }` and answers whatever JSON the function returns with 200.",
    ),
    ...resilience,
  }),
  "Another Lambda function, invoked directly (no HTTP hop).",
);

const UpstreamSchema = v.variant(
  "kind",
  [HttpUpstreamSchema, LambdaUpstreamSchema],
  'an upstream\'s kind is "http" (the default) or "lambda"',
);

export const UpstreamsSchema = described(
  v.optional(
    v.record(
      v.pipe(
        v.string(),
        v.regex(
          /^[a-z][a-z0-9-]{0,31}$/,
          "an upstream name is lower-case letters, digits and -, such as users",
        ),
      ),
      UpstreamSchema,
    ),
    {},
  ),
  "The services routes send requests to, by name.",
);

/**
 * Every upstream's attempts together fit the gateway function's time; a Lambda upstream's `code`
 * declares a function of this service, so it names one by key, once.
 */
export function checkUpstreams(config: GatewayConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const declaredBy = new Map<string, string>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    if (upstreamWorstCaseMs(upstream) >= GATEWAY_BUDGET_MS) {
      problems.push(
        `upstreams.${name}: ${upstream.retries + 1} attempts of ${upstream.timeoutMs} ms (with ${upstream.retries} backoffs of up to ${RETRY_BACKOFF.maxDelayMs} ms) can pass the gateway's ${GATEWAY_BUDGET_MS / 1000} s under API Gateway's 30 s limit; lower timeoutMs or retries`,
      );
    }
    if (upstream.kind !== "lambda" || upstream.code === undefined) continue;
    if (upstream.function.startsWith("arn:")) {
      problems.push(
        `upstreams.${name}.code: the function is an ARN, deployed elsewhere; remove code, or name a function key of this service`,
      );
    }
    const other = declaredBy.get(upstream.function);
    if (other !== undefined) {
      problems.push(
        `upstreams.${name}.code: upstreams.${other} already gives the code of function "${upstream.function}"; remove one of them`,
      );
    }
    declaredBy.set(upstream.function, name);
  }
  return problems;
}
