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
 *
 * CPU cost measured locally on workerd (vitest, 20 000 points): detect() ≈ 11 µs per point;
 * workerd's timers have 1 ms resolution, so a one-point model_inference span shows 0 ms even locally.
 *
 * The code: ./spans.ts (context manager, propagator, withSpan, carriers), ./server-span.ts,
 * ./object-spans.ts (Durable Object RPC), ./traced-fetch.ts. Import from here.
 */
export { errorType, extractTraceContext, injectTraceContext, propagator, recordError, withSpan, type TraceCarrier, type WithSpanOptions } from "./spans";
export { serverSpan, type ServerSpanOptions } from "./server-span";
export { adoptSpans, continueTrace, type TracedResult, type WireSpan } from "./object-spans";
export { tracedFetch } from "./traced-fetch";
