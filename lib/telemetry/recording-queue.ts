/**
 * Measurements the request path takes now and hands to the SDK's instruments later, in one tight
 * loop right before each collection (the isolate's reader runs {@link RecordingQueue.apply} first,
 * ./meter-provider.ts). A collection therefore sees exactly what it would have seen had every value
 * been recorded at once: counters and histograms aggregate the same values, and an in-flight
 * UpDownCounter's +1 of a request still running is in, its −1 not yet.
 *
 * Why: each SDK record walks instrument, storage, attribute hashing (keys sorted and
 * stringified) and aggregator, ~4 µs under the profiler on workerd. Counter and UpDownCounter
 * adds are summed here per instrument and attribute set (the bound sets of ./bound-attributes.ts
 * are one object each), so the SDK gets one add per set per collection instead of one per
 * request; histogram values are kept in order and recorded together (README, Benchmarks).
 * Bounded: at {@link RecordingQueue.maxPending} values it applies what it holds at once. Never
 * throws.
 */
import type { Attributes, Counter, Histogram, UpDownCounter } from "@opentelemetry/api";

/** Options of {@link RecordingQueue}. */
export interface RecordingQueueOptions {
  /** Values held at most before they are applied at once. Default 8192 (~1 s of a busy isolate). */
  maxPending?: number;
}

/**
 * @example
 * const queue = new RecordingQueue();
 * queue.add(instruments.httpRequests, 1, requestAttributes("GET", "/health", 200));
 * queue.record(instruments.httpRequestDuration, 0.012, endpointAttributes("/health"));
 * queue.apply(); // the reader does this before collecting
 */
export class RecordingQueue {
  readonly maxPending: number;
  #sums = new Map<Counter | UpDownCounter, Map<Attributes, number>>();
  #pending = 0;
  #histograms: Histogram[] = [];
  #values: number[] = [];
  #attributes: Attributes[] = [];

  constructor(options: RecordingQueueOptions = {}) {
    this.maxPending = Math.max(1, options.maxPending ?? 8192);
  }

  /** Values waiting (each add and each histogram value counts one). */
  get size(): number {
    return this.#pending;
  }

  /** `counter.add(value, attributes)`, at the next collection (summed with the other adds to the same set). */
  add(counter: Counter | UpDownCounter, value: number, attributes: Attributes): void {
    let sums = this.#sums.get(counter);
    if (!sums) this.#sums.set(counter, (sums = new Map()));
    sums.set(attributes, (sums.get(attributes) ?? 0) + value);
    this.#counted();
  }

  /** `histogram.record(value, attributes)`, at the next collection. */
  record(histogram: Histogram, value: number, attributes: Attributes): void {
    this.#histograms.push(histogram);
    this.#values.push(value);
    this.#attributes.push(attributes);
    this.#counted();
  }

  /** Hands every waiting value to its instrument: one add per counter and attribute set, then the histogram values in the order taken. */
  apply(): void {
    const sums = this.#sums;
    const histograms = this.#histograms;
    const values = this.#values;
    const attributes = this.#attributes;
    this.#sums = new Map();
    this.#histograms = [];
    this.#values = [];
    this.#attributes = [];
    this.#pending = 0;
    for (const [counter, byAttributes] of sums) {
      for (const [set, sum] of byAttributes) {
        try {
          // A +1 and a −1 of the same collection cancel; the SDK still learns the series exists.
          counter.add(sum, set);
        } catch {
          // Recording never fails the caller.
        }
      }
    }
    for (let i = 0; i < values.length; i++) {
      try {
        histograms[i]!.record(values[i]!, attributes[i]);
      } catch {
        // Recording never fails the caller.
      }
    }
  }

  #counted(): void {
    if (++this.#pending >= this.maxPending) this.apply();
  }
}
