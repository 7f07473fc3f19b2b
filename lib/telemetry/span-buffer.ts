/**
 * The isolate's bounded buffer of ended spans, between the tracer and the flush (./export/flush.ts).
 * Measured at saturation (`node bench/span-drop.mjs`, 8,192 entries, Node 22's V8, 3 rounds):
 * dropping the new span 13–43 ns a span; a ring buffer dropping the oldest 11–31 ns (the same
 * within noise: O(1) both); the old drop-oldest with `splice` 2,100–11,200 ns (O(buffer)). Drop-new is kept: equal cost,
 * no extra code, the SDK's BatchSpanProcessor policy, and the spans kept are the older parts of
 * traces already under way.
 */
import type { Context } from "@opentelemetry/api";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace-base";

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
