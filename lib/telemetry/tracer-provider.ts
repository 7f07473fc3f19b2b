/**
 * The isolate's tracing plumbing: a BasicTracerProvider whose only processor keeps ended spans in
 * a bounded buffer. Nothing is exported from here: the one flush path (./flush.ts) drains the
 * buffer and sends the spans with the OTLP trace exporter, in a request's `waitUntil`.
 *
 * The spans themselves (server span, domain spans, W3C propagation) live in ./spans.ts, ./request-telemetry.ts and ./object-spans.ts.
 */
import type { Context } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type ReadableSpan,
  type Span,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { env as workerEnv } from "cloudflare:workers";
import { SERVICE_NAME, serviceResource } from "./meter-provider";

/** Options of {@link BufferingSpanProcessor}. */
export interface BufferingSpanProcessorOptions {
  /** Ended spans kept at most; a span ending while the buffer is full is dropped (and counted). Default 8192 (~1 s of 8-span requests at 1000 req/s). */
  maxBufferedSpans?: number;
}

/**
 * Keeps ended, sampled spans until the flush takes them. Bounded: when full, the NEW span is
 * dropped and counted in `droppedSpans` — O(1), one comparison and one increment, exactly when the
 * isolate is overloaded (as the SDK's BatchSpanProcessor does; dropping the oldest shifted the
 * whole array per span). The flusher turns the count into `astra_telemetry_spans_dropped_total`
 * and one warning per export. Never throws.
 *
 * @example
 * const buffer = new BufferingSpanProcessor({ maxBufferedSpans: 100 });
 * const provider = new BasicTracerProvider({ spanProcessors: [buffer] });
 * // ... spans end ...
 * const spans = buffer.drain();
 */
export class BufferingSpanProcessor implements SpanProcessor {
  readonly maxBufferedSpans: number;
  droppedSpans = 0;
  #spans: ReadableSpan[] = [];

  constructor(options: BufferingSpanProcessorOptions = {}) {
    this.maxBufferedSpans = Math.max(1, options.maxBufferedSpans ?? 8192);
  }

  get size(): number {
    return this.#spans.length;
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (!span.spanContext || (span.spanContext().traceFlags & 1) === 0) return;
    if (this.#spans.length >= this.maxBufferedSpans) {
      this.droppedSpans++;
      return;
    }
    this.#spans.push(span);
  }

  /** Takes every buffered span (the buffer is empty afterwards). */
  drain(): ReadableSpan[] {
    const spans = this.#spans;
    this.#spans = [];
    return spans;
  }

  /**
   * Puts spans whose export failed back in front, within the bound: the oldest of them are kept
   * (as onEnd keeps the older spans); what does not fit is dropped and counted.
   */
  requeue(spans: ReadableSpan[]): void {
    const room = this.maxBufferedSpans - this.#spans.length;
    if (room <= 0) {
      this.droppedSpans += spans.length;
      return;
    }
    const kept = spans.length > room ? spans.slice(0, room) : spans;
    this.droppedSpans += spans.length - kept.length;
    this.#spans = kept.concat(this.#spans);
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {
    this.#spans = [];
  }
}

function moduleEnv(): Partial<Env> | undefined {
  try {
    return workerEnv as unknown as Partial<Env>;
  } catch {
    return undefined;
  }
}

function samplerRatio(env: Partial<Env> | undefined): number {
  const ratio = Number(env?.OTEL_TRACES_SAMPLER_ARG ?? "1");
  return Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1;
}

/** The isolate's span buffer; the flush drains it. */
export const spanBuffer = new BufferingSpanProcessor();

/** The isolate's TracerProvider: parent-based ratio sampling (OTEL_TRACES_SAMPLER_ARG). */
export const tracerProvider = new BasicTracerProvider({
  resource: serviceResource(moduleEnv()),
  sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(samplerRatio(moduleEnv())) }),
  spanProcessors: [spanBuffer],
});

/** The service's tracer. */
export const tracer = tracerProvider.getTracer(SERVICE_NAME);
