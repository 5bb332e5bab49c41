import { createHash } from "node:crypto";
import type { Tracer } from "@aws-lambda-powertools/tracer";
import { env } from "../config/env.ts";
import { logger } from "./logger.ts";

/**
 * Tracing (Powertools Tracer over the X-Ray SDK), loaded only when the function runs under X-Ray
 * (`env.tracing`): the SDK is a good part of a bundle's import time, and the local stack and tests,
 * which have no daemon, would only pay it and warn. Off, every function here is a check and a return.
 *
 * The Lambda segment is X-Ray's own (a facade); each invocation gets a `## <function>` subsegment (the
 * `tracing()` step), and under it a subsegment per upstream attempt, DynamoDB call, Lambda invocation
 * and PostToConnection. Spans are passed explicitly (`context.trace`), never looked up as "the current
 * segment", so the parallel calls of an aggregate or a fan-out each hang under the right parent.
 */

/** An X-Ray segment or subsegment (the SDK's classes, as Powertools types them). */
export type TraceParent = NonNullable<ReturnType<Tracer["getSegment"]>>;
/** A subsegment Gatehouse opened and must close. */
export type TraceSpan = ReturnType<TraceParent["addNewSubsegment"]>;

let loading: Promise<Tracer | undefined> | undefined;
let active: Tracer | undefined;

/**
 * The tracer, loaded and made on first use when tracing is on; undefined when it is off. Call it
 * where waiting is fine (the `tracing()` step's before, once per container); `activeTracer()` after.
 */
export function loadTracer(): Promise<Tracer | undefined> {
  loading ??= env.tracing
    ? import("@aws-lambda-powertools/tracer").then(
        ({ Tracer }) => {
          // HTTP calls are traced by the upstream client itself (a subsegment per attempt, named by
          // upstream and target); the X-Ray SDK's global http patch would add an anonymous second one.
          active = new Tracer({ serviceName: "gatehouse", captureHTTPsRequests: false });
          return active;
        },
        (error: unknown) => {
          logger.warn("tracing is on but the tracer could not be loaded; requests go on untraced", { error });
          return undefined;
        },
      )
    : Promise.resolve(undefined);
  return loading;
}

/** The tracer once loaded (undefined before, and always when tracing is off). */
export const activeTracer = (): Tracer | undefined => active;

/**
 * An AWS SDK v3 client, traced: each call a subsegment (`DynamoDB`, `Lambda`,
 * `ApiGatewayManagementApi`) under the current span, with the operation, table or function, retries
 * and status, and its `X-Amzn-Trace-Id` sent to the service. The factories in shared/clients call it
 * on every client they make; off, the client comes back untouched. Called at cold start (handlers
 * make clients at module scope), it starts loading the tracer then, and the client is captured before
 * the first invocation's `tracing()` step has finished waiting for it.
 */
export function traceClient<T>(client: T): T {
  if (active) return active.captureAWSv3Client(client);
  if (!env.tracing) return client;
  void loadTracer().then((tracer) => tracer?.captureAWSv3Client(client));
  return client;
}

/**
 * A subsegment of `parent` named `name` (X-Ray's characters only; at most 200), or undefined when
 * there is no parent (tracing off). Example: `startSpan(context.trace, "catalog 10.0.0.7:8080")`.
 */
export function startSpan(parent: TraceParent | undefined, name: string): TraceSpan | undefined {
  if (!parent || !active) return undefined;
  return parent.addNewSubsegment(spanName(name));
}

/** X-Ray takes letters, digits, whitespace and `_.:/%&#=+\-@` in a name, 200 at most. */
export const spanName = (name: string): string =>
  name.replace(/[^\p{L}\p{N}\s_.:/%&#=+\\\-@]/gu, "_").slice(0, 200);

/**
 * Runs `fn` with `span` as X-Ray's current segment, in an async context of its own: what a traced SDK
 * client does inside (a Lambda upstream's Invoke) nests under this span, and parallel spans do not
 * see each other's.
 */
export function inSpan<T>(span: TraceSpan | undefined, fn: () => Promise<T>): Promise<T> {
  if (!span || !active) return fn();
  const namespace = active.provider.getNamespace();
  return namespace.runAndReturn(() => {
    namespace.set("segment", span);
    return fn();
  });
}

/** Closes a span with X-Ray's flags for an HTTP status: 429 throttle, other 4XX error, 5XX fault. */
export function endSpan(span: TraceSpan | undefined, status: number | undefined, error?: unknown): void {
  if (!span) return;
  if (status !== undefined) {
    span.addAnnotation("status", status);
    if (status === 429) span.addThrottleFlag();
    if (status >= 400 && status < 500) span.addErrorFlag();
    if (status >= 500) span.addFaultFlag();
  }
  if (error !== undefined) {
    // The class and message only: a span is no place for a stack or a request's data.
    const cause = error instanceof Error ? error : new Error(String(error));
    span.addError({ name: cause.name, message: cause.message, stack: "" } as Error, true);
  }
  span.close();
}

/** `1-<8 hex>-<24 hex>`: an X-Ray trace id. */
const XRAY_TRACE_ID = /^1-([0-9a-f]{8})-([0-9a-f]{24})$/;

/**
 * The trace context an upstream receives for one attempt, in both notations: `X-Amzn-Trace-Id`
 * (`Root=<trace id>;Parent=<span id>;Sampled=<0|1>`) and W3C `traceparent`
 * (`00-<trace id as 32 hex>-<span id>-<01|00>`), the same ids. Empty when the span has no valid
 * trace id (nothing better than no header).
 * Example: root `1-5759e988-bd862e3fe1be46a994272793`, span `53995c3f42cd8ad8` →
 * `traceparent: 00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01`.
 */
export function traceHeaders(span: TraceSpan | undefined): Record<string, string> {
  const root = span?.segment?.trace_id;
  const match = root === undefined ? null : XRAY_TRACE_ID.exec(root);
  if (!span || !match || !/^[0-9a-f]{16}$/.test(span.id)) return {};
  const sampled = !span.notTraced;
  return {
    "x-amzn-trace-id": `Root=${root};Parent=${span.id};Sampled=${sampled ? 1 : 0}`,
    traceparent: `00-${match[1]}${match[2]}-${span.id}-${sampled ? "01" : "00"}`,
  };
}

/**
 * The annotation that says who called: the first 16 hex digits (64 bits) of the SHA-256 of the
 * principal (`key:<owner>`, `<issuer>:<sub>`), unsalted, so an operator who knows a principal finds
 * its traces (`printf %s "$principal" | sha256sum | cut -c1-16`) while the trace never holds it.
 * The principal is an identifier, never a credential: keys and tokens are not hashed here or traced.
 */
export function principalHash(principal: string): string {
  return createHash("sha256").update(principal, "utf8").digest("hex").slice(0, 16);
}

/** Tests only: forget the tracer, so the next `loadTracer()` reads `env.tracing` again. */
export function resetTracing(): void {
  loading = undefined;
  active = undefined;
}
