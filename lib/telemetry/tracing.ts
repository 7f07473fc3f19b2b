/**
 * Spans of a request: the SERVER span (`serverSpan()` middleware), domain child spans
 * (`withSpan`), and W3C trace context in (`traceparent`/`tracestate` headers) and out (Durable
 * Object RPC via `injectTraceContext` → `continueTrace` → `adoptSpans`, outbound HTTP via
 * `tracedFetch`).
 *
 * Spans go to the isolate's TracerProvider (./tracer-provider.ts: parent-based ratio sampling,
 * bounded buffer) and leave with the metrics in the one coalesced flush (./flush.ts), which
 * `httpMetrics()` hands to `waitUntil` after this middleware has ended the server span.
 *
 * Context: an AsyncLocalStorage-based ContextManager (./context-manager.ts) is registered as the
 * global one when this module loads, so `tracer.startActiveSpan` and `context.active()` follow a
 * request across its awaits.
 *
 * Clock: in production, Workers advance `Date.now()`/`performance.now()` only on I/O, so a span
 * around CPU-only work (detection, policy) shows ~0 duration; span durations measure I/O waits.
 * CPU-only steps carry counts as attributes instead (points, findings), and their CPU cost is
 * measured locally on workerd (bench/), where timers do advance.
 *
 * Tracing never throws into the request path: when starting or ending a span fails, the request
 * runs untraced.
 */
import {
  context,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type AttributeValue,
  TraceFlags,
  type Context as OtelContext,
  type HrTime,
  type Span,
  type SpanStatus,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from "@opentelemetry/api";
import { hrTimeDuration, TraceState, W3CTraceContextPropagator } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  BasicTracerProvider,
  ParentBasedSampler,
  type ReadableSpan,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from "@opentelemetry/semantic-conventions";
import { ATTR_CLOUD_PROVIDER, ATTR_CLOUD_REGION } from "@opentelemetry/semantic-conventions/incubating";
import type { Context, MiddlewareHandler } from "hono";
import { AsyncLocalStorageContextManager } from "./context-manager";
import { endpointOf } from "./http-metrics";
import { errorFields, log, type LogLevel } from "./logger";
import { SERVICE_NAME, serviceResource } from "./meter-provider";
import { tracer as serviceTracer, spanBuffer } from "./tracer-provider";

// One ContextManager and one propagator per isolate (a second registration is a no-op).
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** The W3C Trace Context propagator (`traceparent`, `tracestate`). */
export const propagator = new W3CTraceContextPropagator();
propagation.setGlobalPropagator(propagator);

/** Trace context as plain data: the two W3C headers, to pass over RPC. */
export interface TraceCarrier {
  traceparent?: string;
  tracestate?: string;
}

const headersGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};
const headersSetter: TextMapSetter<Headers> = { set: (headers, key, value) => headers.set(key, value) };

/** User agents longer than this are cut (they are client-controlled). */
const MAX_USER_AGENT = 256;
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]);

/** Drops undefined values, so callers can spread optional attributes. */
function defined(attributes: Record<string, AttributeValue | undefined>): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attributes)) if (v !== undefined) out[k] = v;
  return out;
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // Telemetry never fails the work it observes.
  }
}

/** The low-cardinality `error.type` of an error: an API error's code, else the class name. */
export function errorType(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string" && err.code) return err.code;
  if (err instanceof Error) return err.name || "Error";
  return "_OTHER";
}

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

/** Options of {@link withSpan}. */
export interface WithSpanOptions {
  /** Span kind. Default INTERNAL. */
  kind?: SpanKind;
  /** Tracer. Default: the service tracer (./tracer-provider.ts). */
  tracer?: Tracer;
  /** Parent context. Default: the active one. */
  parent?: OtelContext;
}

/**
 * Runs `fn` inside a new active span named `name`, a child of the active span, and ends it when
 * `fn` returns or its promise settles. A throw or rejection is recorded on the span (exception,
 * ERROR status, `error.type`) and passed on unchanged. Sync `fn` stays sync.
 *
 * For steps of the domain path: `anomaly_detection`, `model_inference`, `database_query`,
 * `cache_operation`, `external_call`, `circuit_breaker`, `retry_attempt`.
 *
 * @example
 * const phase = await withSpan("circuit_breaker", { "astra.breaker.name": "storage", "astra.breaker.state": breaker.state }, () =>
 *   breaker.execute(() => stub.getPhase()),
 * );
 * const n = withSpan("model_inference", { "astra.detector.points": points.length }, (span) => {
 *   const found = points.filter(isAnomalous).length;
 *   span.setAttribute("astra.detector.anomalies", found);
 *   return found;
 * });
 */
export function withSpan<T>(name: string, attributes: Record<string, AttributeValue | undefined>, fn: (span: Span) => T, options: WithSpanOptions = {}): T {
  let span: Span;
  let active: OtelContext;
  try {
    const parent = options.parent ?? context.active();
    span = (options.tracer ?? serviceTracer).startSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: defined(attributes) }, parent);
    active = trace.setSpan(parent, span);
  } catch {
    return fn(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  }
  let result: T;
  try {
    result = context.with(active, fn, undefined, span);
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
  return carrier;
}

/** The context a carrier (RPC argument or request headers) describes; `base` when it holds none. */
export function extractTraceContext(carrier: TraceCarrier | Headers | undefined, base: OtelContext = ROOT_CONTEXT): OtelContext {
  try {
    if (!carrier) return base;
    if (carrier instanceof Headers) return propagator.extract(base, carrier, headersGetter);
    return propagator.extract(base, carrier, {
      get: (c, key) => (key === "traceparent" || key === "tracestate" ? c[key] : undefined),
      keys: (c) => Object.keys(c),
    });
  } catch {
    return base;
  }
}

/** A finished span as plain data (structured-clone safe), to hand back over RPC. */
export interface WireSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  traceFlags: number;
  traceState?: string;
  startTime: HrTime;
  endTime: HrTime;
  status: SpanStatus;
  attributes: Attributes;
  events: Array<{ name: string; time: HrTime; attributes?: Attributes }>;
}

/** What a traced RPC answers: the method's result and the spans the object made for it. */
export interface TracedResult<T> {
  result: T;
  spans: WireSpan[];
}

/** Spans objects made, by span id, until their call hands them back (bounded; a leak cannot grow). */
class CollectingSpanProcessor implements SpanProcessor {
  static readonly MAX_SPANS = 256;
  readonly #spans = new Map<string, ReadableSpan>();
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0 || this.#spans.size >= CollectingSpanProcessor.MAX_SPANS) return;
    this.#spans.set(span.spanContext().spanId, span);
  }
  take(spanId: string | undefined): ReadableSpan | undefined {
    if (spanId === undefined) return undefined;
    const span = this.#spans.get(spanId);
    this.#spans.delete(spanId);
    return span;
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {
    this.#spans.clear();
  }
}

const objectSpans = new CollectingSpanProcessor();
/** The tracer of Durable Object methods: it never starts a trace, it only continues the caller's. */
const objectTracer = new BasicTracerProvider({
  sampler: new ParentBasedSampler({ root: new AlwaysOffSampler() }),
  spanProcessors: [objectSpans],
}).getTracer(SERVICE_NAME);

function toWire(span: ReadableSpan): WireSpan {
  const sc = span.spanContext();
  return {
    name: span.name,
    kind: span.kind,
    traceId: sc.traceId,
    spanId: sc.spanId,
    ...(span.parentSpanContext && { parentSpanId: span.parentSpanContext.spanId }),
    traceFlags: sc.traceFlags,
    ...(sc.traceState && { traceState: sc.traceState.serialize() }),
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, time: e.time, ...(e.attributes && { attributes: e.attributes }) })),
  };
}

/**
 * The receiving side of a traced RPC (a Durable Object method): runs `fn` in a SERVER span that
 * continues the caller's trace from `carrier`, and answers the result with that span as data.
 * The caller hands the spans to {@link adoptSpans}, so they leave in the CALLER's flush: one
 * flush path whether or not the object shares the caller's isolate, and no export started from
 * inside an object call. Without a valid `traceparent`, `fn` runs untraced (`spans: []`).
 *
 * Only the span made here travels back; spans that `fn` itself starts with `withSpan` go to the
 * object isolate's own buffer.
 *
 * @example
 * async traced(carrier, op, args) {
 *   return continueTrace(carrier, `MissionState.${op}`, { "db.operation.name": op }, () => this[op](...args));
 * }
 */
export async function continueTrace<T>(carrier: TraceCarrier | undefined, name: string, attributes: Record<string, AttributeValue | undefined>, fn: () => T | Promise<T>): Promise<TracedResult<T>> {
  const parent = extractTraceContext(carrier);
  if (!isSpanContextValid(trace.getSpanContext(parent) ?? INVALID_SPAN_CONTEXT)) return { result: await fn(), spans: [] };
  let spanId: string | undefined;
  try {
    const result = await withSpan(
      name,
      attributes,
      async (span) => {
        spanId = span.spanContext().spanId;
        return await fn();
      },
      { kind: SpanKind.SERVER, parent, tracer: objectTracer },
    );
    const spans: WireSpan[] = [];
    safely(() => {
      const span = objectSpans.take(spanId);
      if (span) spans.push(toWire(span));
    });
    return { result, spans };
  } catch (err) {
    objectSpans.take(spanId);
    throw err;
  }
}

/**
 * Puts spans an object handed back (see {@link continueTrace}) into this isolate's span buffer,
 * under the service resource, so the next flush exports them with the caller's spans. Never throws.
 */
export function adoptSpans(spans: readonly WireSpan[] | undefined): void {
  if (!spans?.length) return;
  safely(() => {
    const active = trace.getSpan(context.active()) as Partial<ReadableSpan> | undefined;
    const resource = active?.resource ?? fallbackResource();
    for (const w of spans) {
      const spanContext = { traceId: w.traceId, spanId: w.spanId, traceFlags: w.traceFlags, ...(w.traceState && { traceState: new TraceState(w.traceState) }) };
      const readable: ReadableSpan = {
        name: w.name,
        kind: w.kind,
        spanContext: () => spanContext,
        ...(w.parentSpanId && { parentSpanContext: { traceId: w.traceId, spanId: w.parentSpanId, traceFlags: w.traceFlags, isRemote: true } }),
        startTime: w.startTime,
        endTime: w.endTime,
        duration: hrTimeDuration(w.startTime, w.endTime),
        status: w.status,
        attributes: w.attributes,
        links: [],
        events: w.events.map((e) => ({ name: e.name, time: e.time, ...(e.attributes && { attributes: e.attributes }), droppedAttributesCount: 0 })),
        ended: true,
        resource,
        instrumentationScope: { name: SERVICE_NAME },
        droppedAttributesCount: 0,
        droppedEventsCount: 0,
        droppedLinksCount: 0,
      };
      spanBuffer.onEnd(readable);
    }
  });
}

let defaultResource: Resource | undefined;
function fallbackResource(): Resource {
  defaultResource ??= serviceResource(undefined);
  return defaultResource;
}

/**
 * `fetch` in an `external_call` CLIENT span, with the trace context injected as `traceparent`
 * (and `tracestate`). The URL is recorded without its query string and credentials. Never use it
 * for the telemetry export itself.
 *
 * @example
 * const res = await tracedFetch("https://ground-station.example/api/ack", { method: "POST", body });
 */
export function tracedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  let attributes: Record<string, AttributeValue | undefined> = {};
  safely(() => {
    const url = new URL(request.url);
    attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: httpMethod(request.method).method,
      [ATTR_SERVER_ADDRESS]: url.hostname,
      [ATTR_SERVER_PORT]: url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80,
      [ATTR_URL_FULL]: `${url.protocol}//${url.host}${url.pathname}`,
    };
  });
  return withSpan(
    "external_call",
    attributes,
    async (span) => {
      const headers = new Headers(request.headers);
      safely(() => propagator.inject(context.active(), headers, headersSetter));
      const response = await globalThis.fetch(new Request(request, { headers }));
      safely(() => {
        span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, response.status);
        if (response.status >= 400) {
          span.setAttribute(ATTR_ERROR_TYPE, String(response.status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
      });
      return response;
    },
    { kind: SpanKind.CLIENT },
  );
}

function httpMethod(raw: string): { method: string; original?: string } {
  const upper = raw.toUpperCase();
  return KNOWN_METHODS.has(upper) ? { method: upper, ...(upper !== raw && { original: raw }) } : { method: "_OTHER", original: raw };
}

/** Options of {@link serverSpan}. */
export interface ServerSpanOptions {
  /** Tracer of the server span. Default: the service tracer (./tracer-provider.ts). */
  tracer?: Tracer;
  /** Write one JSON log line per request (./logger.ts). Default true. */
  logRequests?: boolean;
}

/** `request.cf` where the runtime sets it (not in every test harness). */
function cfColo(c: Context): string | undefined {
  const cf = (c.req.raw as Request & { cf?: { colo?: unknown } }).cf;
  return typeof cf?.colo === "string" && cf.colo ? cf.colo : undefined;
}

function levelOf(status: number): LogLevel {
  return status >= 500 ? "error" : status >= 400 ? "warn" : "info";
}

/**
 * A SERVER span per request, with OpenTelemetry HTTP semantic conventions, active for the rest of
 * the chain; and one JSON log line per request carrying its `trace_id`/`span_id`.
 *
 * - Parent: the incoming W3C `traceparent`/`tracestate` when valid (its trace id is kept and its
 *   sampled flag decides, parent-based); else a new root, sampled at OTEL_TRACES_SAMPLER_ARG.
 * - Name `${method} ${route}` with the route pattern (never the raw path); just the method when
 *   no route matched.
 * - Attributes: http.request.method, http.route, http.response.status_code, url.path,
 *   url.scheme, server.address, user_agent.original (≤256 chars), cloud.provider=cloudflare,
 *   cloud.region = `request.cf.colo` where present.
 * - 5xx: ERROR status and `error.type` (the API error code, the exception class, or the status);
 *   a thrown error is recorded as an exception event. 4xx stay UNSET (semantic conventions).
 *
 * Mount it inside `httpMetrics()` (which flushes after the span has ended) and after
 * `requestId()` (the log line and span carry the request id).
 *
 * @example
 * app.use("*", httpMetrics());
 * app.use("*", requestId());
 * app.use("*", serverSpan());
 */
export function serverSpan(options: ServerSpanOptions = {}): MiddlewareHandler {
  const logRequests = options.logRequests ?? true;

  return async function serverSpan(c, next) {
    const started = performance.now();
    const { method, original } = httpMethod(c.req.method);
    let path = "";
    let span: Span | undefined;
    let active: OtelContext | undefined;
    try {
      const url = new URL(c.req.url);
      path = url.pathname;
      // The incoming traceparent, else whatever is active (a root context in production).
      const parent = extractTraceContext(c.req.raw.headers, context.active());
      const route = endpointOf(c, "");
      span = (options.tracer ?? serviceTracer).startSpan(
        route ? `${method === "_OTHER" ? "HTTP" : method} ${route}` : method === "_OTHER" ? "HTTP" : method,
        {
          kind: SpanKind.SERVER,
          attributes: defined({
            [ATTR_HTTP_REQUEST_METHOD]: method,
            [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: original,
            [ATTR_HTTP_ROUTE]: route || undefined,
            [ATTR_URL_PATH]: url.pathname,
            [ATTR_URL_SCHEME]: url.protocol.replace(/:$/, ""),
            [ATTR_SERVER_ADDRESS]: url.hostname,
            [ATTR_USER_AGENT_ORIGINAL]: c.req.header("User-Agent")?.slice(0, MAX_USER_AGENT),
            [ATTR_CLOUD_PROVIDER]: "cloudflare",
            [ATTR_CLOUD_REGION]: cfColo(c),
            "astra.request.id": (c.get("requestId") as string | undefined) ?? undefined,
          }),
        },
        parent,
      );
      active = trace.setSpan(parent, span);
    } catch {
      span = undefined;
    }

    let thrown: unknown;
    try {
      if (active) await context.with(active, next);
      else await next();
    } catch (err) {
      thrown = err ?? new Error("thrown without a value");
      throw err;
    } finally {
      const route = safeRoute(c);
      const status = thrown === undefined ? c.res.status : 500;
      const err: unknown = thrown ?? c.error;
      if (span) {
        const s = span;
        safely(() => {
          if (route) {
            s.updateName(`${method === "_OTHER" ? "HTTP" : method} ${route}`);
            s.setAttribute(ATTR_HTTP_ROUTE, route);
          }
          s.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
          if (status >= 500) {
            if (err !== undefined) s.recordException(err instanceof Error ? err : String(err));
            s.setAttribute(ATTR_ERROR_TYPE, err !== undefined ? errorType(err) : String(status));
            s.setStatus({ code: SpanStatusCode.ERROR });
          }
          s.end();
        });
      }
      if (logRequests) {
        log(
          levelOf(status),
          "request",
          {
            method: c.req.method.slice(0, 16),
            route: route || "unmatched",
            path: route ? undefined : path.slice(0, 128),
            status,
            duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
            request_id: (c.get("requestId") as string | undefined) ?? undefined,
            user_agent: c.req.header("User-Agent"),
            ...(err !== undefined && errorFields(err)),
          },
          span,
        );
      }
    }
  };
}

function safeRoute(c: Context): string {
  try {
    return endpointOf(c, "");
  } catch {
    return "";
  }
}
