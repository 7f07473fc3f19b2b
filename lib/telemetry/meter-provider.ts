/**
 * The isolate's MeterProvider, read on demand.
 *
 * Workers forbid timers at module scope, so there is no PeriodicExportingMetricReader: the
 * flush (./flush.ts), running in a request's `waitUntil`, calls `metricReader.collect()`.
 *
 * Temporality is DELTA for every instrument kind: each collection hands over only what this
 * isolate recorded since the previous one, and the MetricsAggregator Durable Object adds the
 * deltas of every isolate into one cumulative stream. That is what makes UpDownCounters
 * (in-flight requests, cache sizes) mean "summed over all isolates". Gauges are last-value;
 * as delta they are reported only when recorded since the last collection, so an isolate never
 * re-sends a stale value that would overwrite a fresher one from another isolate.
 *
 * The resource carries no `service.instance.id`: isolate identity never reaches Prometheus
 * (the aggregator pushes with one fixed instance id).
 */
import {
  AggregationTemporality,
  InstrumentType,
  MeterProvider,
  MetricReader,
  type AggregationTemporalitySelector,
  type CollectionResult,
  type MetricReaderOptions,
} from "@opentelemetry/sdk-metrics";
import { RecordingQueue } from "./recording-queue";
import { resourceFromAttributes, type Resource } from "@opentelemetry/resources";
import { env as workerEnv } from "cloudflare:workers";

/** The service name every signal is reported under (Prometheus `job`). */
export const SERVICE_NAME = "astraguard-edge";

/**
 * The one temporality selector of the isolate: DELTA for everything (counters, histograms,
 * UpDownCounters, gauges), so the aggregator can add the isolates' contributions.
 */
export const deltaTemporalitySelector: AggregationTemporalitySelector = (_instrumentType: InstrumentType) =>
  AggregationTemporality.DELTA;

/** Options of {@link OnDemandMetricReader}. */
export interface OnDemandMetricReaderOptions extends Omit<MetricReaderOptions, "aggregationTemporalitySelector"> {
  /** Values recorded late (./recording-queue.ts), applied right before each collection. */
  queue?: RecordingQueue;
}

/**
 * A MetricReader that only collects when asked: no timer, no exporter of its own. With a
 * `queue`, each collection first applies the values waiting in it.
 *
 * @example
 * const reader = new OnDemandMetricReader();
 * const provider = new MeterProvider({ readers: [reader] });
 * const { resourceMetrics } = await reader.collect();
 */
export class OnDemandMetricReader extends MetricReader {
  readonly #queue: RecordingQueue | undefined;

  constructor(options: OnDemandMetricReaderOptions = {}) {
    const { queue, ...rest } = options;
    super({ ...rest, aggregationTemporalitySelector: deltaTemporalitySelector });
    this.#queue = queue;
  }

  override collect(options?: Parameters<MetricReader["collect"]>[0]): Promise<CollectionResult> {
    this.#queue?.apply();
    return super.collect(options);
  }

  protected override async onForceFlush(): Promise<void> {
    // Nothing buffered here: the flush collects explicitly.
  }

  protected override async onShutdown(): Promise<void> {
    // No timer or connection to release.
  }
}

/** The attributes of the service resource (no instance id). Reads the bindings' vars. */
export function serviceResource(env: Partial<Env> | undefined, extra: Record<string, string> = {}): Resource {
  return resourceFromAttributes({
    "service.name": SERVICE_NAME,
    "service.version": env?.SERVICE_VERSION || "0.0.0",
    "deployment.environment.name": env?.DEPLOYMENT_ENVIRONMENT || "development",
    ...extra,
  });
}

function moduleEnv(): Partial<Env> | undefined {
  try {
    return workerEnv as unknown as Partial<Env>;
  } catch {
    return undefined;
  }
}

/** The isolate's queue of late recordings (the request middleware's metrics); applied at every collection. */
export const recordingQueue = new RecordingQueue();

/** The isolate's reader; the flush collects it. */
export const metricReader = new OnDemandMetricReader({ queue: recordingQueue });

/** The isolate's MeterProvider; `./instruments.ts` creates the 22 instruments from it once. */
export const meterProvider = new MeterProvider({
  resource: serviceResource(moduleEnv()),
  readers: [metricReader],
});
