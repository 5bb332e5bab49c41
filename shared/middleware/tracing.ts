import type middy from "@middy/core";
import type { Identity } from "../auth/identity.ts";
import type { GatehouseContext } from "../http.ts";
import {
  activeTracer,
  endSpan,
  loadTracer,
  principalHash,
  type TraceParent,
  type TraceSpan,
} from "../observability/tracer.ts";

interface TracedEvent {
  routeKey?: string;
  /** `authorizer.lambda` is the HTTP authorizer's context (shared/auth/identity.ts reads it whole). */
  requestContext?: { routeKey?: string; authorizer?: unknown };
}

/** What the step hands from its before to its after, on the Middy request. */
interface TracingState {
  span: TraceSpan;
  facade: TraceParent;
}
const stateOf = (request: { internal: object }) => request.internal as { tracing?: TracingState };

/**
 * The invocation's subsegment, `## <function name>`, under Lambda's segment: annotated with the route
 * key and the request id (X-Ray filter: `annotation.requestId = "…"`), so the id of a log line, an
 * EMF record or a problem body finds the trace; closed with the answer's status and X-Ray's flags. It
 * goes on the context (`context.trace`) for every call made below it. Registered right after the
 * correlation id; off (no X-Ray), it does nothing. Behind the HTTP authorizer it also annotates the
 * caller (`annotateCaller`).
 */
export function tracing<TEvent extends TracedEvent, TResult>(): middy.MiddlewareObj<
  TEvent,
  TResult,
  Error,
  GatehouseContext
> {
  const tracingBefore: middy.MiddlewareFn<TEvent, TResult, Error, GatehouseContext> = async (request) => {
    const tracer = activeTracer() ?? (await loadTracer());
    const facade = tracer?.getSegment();
    if (!tracer || !facade) return;
    const span = facade.addNewSubsegment(`## ${request.context.functionName}`);
    tracer.setSegment(span); // the parent of traced SDK calls made outside an upstream attempt
    tracer.annotateColdStart();
    tracer.addServiceNameAnnotation();
    const route = request.event.routeKey ?? request.event.requestContext?.routeKey;
    if (route) span.addAnnotation("route", route);
    if (request.context.requestId) span.addAnnotation("requestId", request.context.requestId);
    request.context.trace = span;
    // An HTTP route behind the authorizer; a WebSocket message's caller is its connection's (chat).
    const authorizer = request.event.requestContext?.authorizer as {
      lambda?: Record<string, unknown>;
    } | null;
    const caller = authorizer?.lambda;
    if (typeof caller?.principal === "string") {
      annotateCaller(request.context, {
        principal: caller.principal,
        ...(typeof caller.plan === "string" && caller.plan !== "" ? { plan: caller.plan } : {}),
      });
    }
    stateOf(request).tracing = { span, facade };
  };
  const tracingAfter: middy.MiddlewareFn<TEvent, TResult, Error, GatehouseContext> = (request) => {
    const state = stateOf(request).tracing;
    if (!state) return;
    stateOf(request).tracing = undefined;
    request.context.trace = undefined;
    const status = (request.response as { statusCode?: number } | undefined)?.statusCode;
    endSpan(state.span, status ?? (request.error ? 500 : undefined));
    activeTracer()?.setSegment(state.facade);
  };
  return { before: tracingBefore, after: tracingAfter, onError: tracingAfter };
}

/**
 * Annotates this request's trace with who called: the plan and a hash of the principal
 * (`principalHash`), never a key, token or the principal itself. A no-op when untraced.
 */
export function annotateCaller(
  context: GatehouseContext,
  caller: Pick<Identity, "principal"> & Partial<Pick<Identity, "plan">>,
): void {
  const span = context.trace;
  if (!span) return;
  span.addAnnotation("principalHash", principalHash(caller.principal));
  if (caller.plan) span.addAnnotation("plan", caller.plan);
}
