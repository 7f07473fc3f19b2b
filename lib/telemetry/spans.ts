/**
 * The core of tracing: the isolate's ContextManager (AsyncLocalStorage, from
 * @opentelemetry/context-async-hooks) and
 * W3C propagator, registered globally when this module loads; `withSpan` for child spans; trace
 * context to and from plain carriers (RPC arguments) and headers.
 */
import {
  context,
  createContextKey,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type Context as OtelContext,
  type Span,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { ATTR_ERROR_TYPE } from "@opentelemetry/semantic-conventions";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { safely } from "../support/safely";
import { errorType } from "./labels";
import { activeRequestId, withRequestId } from "./logger";
import { tracer as serviceTracer } from "./tracer-provider";

// One ContextManager and one propagator per isolate (a second registration is a no-op).
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** The W3C Trace Context propagator (`traceparent`, `tracestate`). */
export const propagator = new W3CTraceContextPropagator();
propagation.setGlobalPropagator(propagator);

/** Trace context as plain data: the two W3C headers, to pass over RPC. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
  /** The request id, so lines logged inside a Durable Object call name the request too. */
  request_id?: string;
}

const headersGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};
/** Writes W3C headers into `Headers`. @internal */
export const headersSetter: TextMapSetter<Headers> = { set: (headers, key, value) => headers.set(key, value) };

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]);

/**
 * The active span when it is valid and NOT sampled: every child of it would be a non-recording
 * span (parent-based sampling, which both tracers of this service use), so `withSpan` skips
 * making one. Undefined otherwise.
 */
function unsampledActiveSpan(parent: OtelContext): Span | undefined {
  const span = trace.getSpan(parent);
  return span && sampledOut(span.spanContext()) ? span : undefined;
}

/** A valid span context without the sampled flag: under parent-based sampling, nothing below it records. */
export const sampledOut = (sc: SpanContext): boolean => (sc.traceFlags & TraceFlags.SAMPLED) === 0 && isSpanContextValid(sc);

/** Records `err` on `span`: exception event, ERROR status, `error.type`. */
export function recordError(span: Span, err: unknown): void {
  safely(() => {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message.slice(0, 200) : undefined });
    span.setAttribute(ATTR_ERROR_TYPE, errorType(err));
  });
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === "object" || typeof value === "function") && typeof (value as { then?: unknown }).then === "function";
}

const TRACER_KEY = createContextKey("astra.tracer");

/**
 * `ctx` with the tracer that `withSpan` uses by default under it: a Durable Object call sets its
 * own (./object-spans.ts), so the spans made inside it travel back with the call instead of
 * waiting in a buffer of the object's isolate, which may never flush.
 */
export const withDefaultTracer = (ctx: OtelContext, tracer: Tracer): OtelContext => ctx.setValue(TRACER_KEY, tracer);

/** Options of {@link withSpan}. */
export interface WithSpanOptions {
  /** Span kind. Default INTERNAL. */
  kind?: SpanKind;
  /** Tracer. Default: the one the context names ({@link withDefaultTracer}), else the service tracer (./tracer-provider.ts). */
  tracer?: Tracer;
  /** Parent context. Default: the active one. */
  parent?: OtelContext;
  /**
   * `fn` starts no span and writes no log line under this one (a call it makes may carry the span
   * explicitly, as `injectTraceContext(trace.setSpan(context.active(), span))`): it gets the
   * span, but the active context is not switched to it (a context switch is the costliest part
   * of a short span on workerd). Default false.
   */
  leaf?: boolean;
}

/**
 * Runs `fn` inside a new active span named `name`, a child of the active span, and ends it when
 * `fn` returns or its promise settles. A throw or rejection is recorded on the span (exception,
 * ERROR status, `error.type`) and passed on unchanged. Sync `fn` stays sync. Attributes whose
 * value is undefined are left out.
 *
 * Under an unsampled span (a request sampled out by OTEL_TRACES_SAMPLER_ARG), with the default
 * parent and tracer, no span is made at all: `fn` runs with the unsampled span, in the active
 * context as it is (no span object, no ids, no context switch), since parent-based sampling
 * would make the child non-recording anyway. Log lines inside keep the request's trace id.
 *
 * For steps of the domain path: `anomaly_detection`, `model_inference`, `database_query`,
 * `cache_operation`, `circuit_breaker`, `retry_attempt`.
 *
 * @example
 * const phase = await withSpan("circuit_breaker", { "astra.breaker.name": "storage", "astra.breaker.state": breaker.state }, () =>
 *   breaker.execute(() => stub.getPhase()),
 * );
 * const n = withSpan("model_inference", { "astra.detector.points": points.length }, (span) => {
 *   const found = points.filter(isAnomalous).length;
 *   span.setAttribute("astra.detector.anomalies", found);
 *   return found;
 * }, { leaf: true });
 */
export function withSpan<T>(name: string, attributes: Record<string, AttributeValue | undefined>, fn: (span: Span) => T, options: WithSpanOptions = {}): T {
  let span: Span;
  let parent: OtelContext;
  try {
    parent = options.parent ?? context.active();
    if (options.parent === undefined && options.tracer === undefined) {
      const unsampled = unsampledActiveSpan(parent);
      if (unsampled) return fn(unsampled);
    }
    const tracer = options.tracer ?? (parent.getValue(TRACER_KEY) as Tracer | undefined) ?? serviceTracer;
    // The SDK sanitizes the attributes and skips undefined values itself.
    span = tracer.startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: attributes as Attributes }, parent);
  } catch {
    return fn(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  }
  let result: T;
  try {
    result = options.leaf ? fn(span) : context.with(trace.setSpan(parent, span), fn, undefined, span);
  } catch (err) {
    recordError(span, err);
    safely(() => span.end());
    throw err;
  }
  if (isThenable(result)) {
    return Promise.resolve(result).then(
      (value) => {
        safely(() => span.end());
        return value;
      },
      (err: unknown) => {
        recordError(span, err);
        safely(() => span.end());
        throw err;
      },
    ) as T;
  }
  safely(() => span.end());
  return result;
}

/**
 * The active trace context as W3C headers, for an RPC argument; `{}` when there is no valid span.
 *
 * @example
 * await stub.traced(injectTraceContext(), "record", [entries, now]);
 */
export function injectTraceContext(ctx: OtelContext = context.active()): TraceCarrier {
  const carrier: TraceCarrier = {};
  safely(() =>
    propagator.inject(ctx, carrier, {
      set: (c, key, value) => {
        if (key === "traceparent" || key === "tracestate") c[key] = value;
      },
    }),
  );
  const requestId = activeRequestId(ctx);
  if (requestId !== undefined) carrier.request_id = requestId;
  return carrier;
}

/** The context a carrier (RPC argument or request headers) describes; `base` when it holds none. */
export function extractTraceContext(carrier: TraceCarrier | Headers | undefined, base: OtelContext = ROOT_CONTEXT): OtelContext {
  try {
    if (!carrier) return base;
    if (carrier instanceof Headers) return propagator.extract(base, carrier, headersGetter);
    const extracted = propagator.extract(base, carrier, {
      get: (c, key) => (key === "traceparent" || key === "tracestate" ? c[key] : undefined),
      keys: (c) => Object.keys(c),
    });
    return withRequestId(extracted, typeof carrier.request_id === "string" ? carrier.request_id : undefined);
  } catch {
    return base;
  }
}

/** The semconv `http.request.method` of a raw method (`_OTHER` + the original when unknown). @internal */
export function httpMethod(raw: string): { method: string; original?: string } {
  const upper = raw.toUpperCase();
  return KNOWN_METHODS.has(upper) ? { method: upper, ...(upper !== raw && { original: raw }) } : { method: "_OTHER", original: raw };
}
