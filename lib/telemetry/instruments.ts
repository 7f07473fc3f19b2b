/**
 * The 22 astra_* instruments of the dashboards, and two operational counters, created once per isolate. Names are what Prometheus shows after the
 * collector's translation: a unit is appended only when the
 * name does not already end in it, so "s"/"By" leave these names as they are.
 *
 * Label values must come from closed sets (route patterns, enums), never from request text.
 */
import type { Attributes, Context, Gauge, MetricOptions } from "@opentelemetry/api";
import { meterProvider } from "./meter-provider";
import { noteGaugeSample } from "./gauge-samples";

const meter = meterProvider.getMeter("astraguard-edge");

/**
 * A gauge whose samples carry the time they were recorded (see noteGaugeSample): across isolates
 * the aggregator keeps the most recent sample, not the one flushed last.
 */
function timedGauge(name: string, options: MetricOptions): Gauge {
  const gauge = meter.createGauge(name, options);
  return {
    record(value: number, attributes?: Attributes, context?: Context) {
      gauge.record(value, attributes, context);
      noteGaugeSample(name, attributes ?? {}, Date.now());
    },
  };
}

const SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5];
const BYTES_BUCKETS = [100, 1000, 10000, 100000, 1000000];
const DETECTION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1];
/** Injection → first healthy call after the fault ended: the fault's own 1..300 s plus the recovery. */
const CHAOS_RECOVERY_BUCKETS = [1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600];
/** First failure → next success of a dependency in one isolate: a blip (ms) to an outage (minutes). */
const RESOLUTION_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

const secondsHistogram = (name: string, description: string, buckets = SECONDS_BUCKETS) =>
  meter.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: buckets } });
const bytesHistogram = (name: string, description: string) =>
  meter.createHistogram(name, { description, unit: "By", advice: { explicitBucketBoundaries: BYTES_BUCKETS } });

export const instruments = {
  // Service health
  httpRequests: meter.createCounter("astra_http_requests_total", { description: "HTTP requests by method, route pattern and status" }),
  httpRequestDuration: secondsHistogram("astra_http_request_duration_seconds", "HTTP request duration by route pattern"),
  /** In-flight requests; an UpDownCounter exported as delta, so the aggregator sums every isolate. */
  activeConnections: meter.createUpDownCounter("astra_active_connections", { description: "Requests in flight across all isolates" }),
  httpRequestSize: bytesHistogram("astra_http_request_size_bytes", "HTTP request body size by route pattern"),
  httpResponseSize: bytesHistogram("astra_http_response_size_bytes", "HTTP response body size by route pattern"),
  errors: meter.createCounter("astra_errors_total", { description: "Errors by type and route pattern" }),
  errorResolutionTime: secondsHistogram("astra_error_resolution_time_seconds", "Time from an error until the failing operation succeeded again", RESOLUTION_BUCKETS),

  // Reliability & resilience
  circuitBreakerState: timedGauge("astra_circuit_breaker_state", { description: "Circuit breaker state: 0 CLOSED, 1 OPEN, 2 HALF_OPEN" }),
  circuitBreakerTransitions: meter.createCounter("astra_circuit_breaker_transitions_total", { description: "Circuit breaker state changes" }),
  retryAttempts: meter.createCounter("astra_retry_attempts_total", { description: "Attempts of retried work by outcome: success, retry, failure" }),
  retryLatency: secondsHistogram("astra_retry_latency_seconds", "Time spent retrying"),
  chaosInjections: meter.createCounter("astra_chaos_injections_total", { description: "Faults injected by type and status" }),
  chaosRecoveryTime: secondsHistogram("astra_chaos_recovery_time_seconds", "Time from an injected fault to recovery", CHAOS_RECOVERY_BUCKETS),
  recoveryActions: meter.createCounter("astra_recovery_actions_total", { description: "Recovery actions taken by the service" }),
  healthCheckFailures: meter.createCounter("astra_health_check_failures_total", { description: "Failed health checks of a dependency" }),

  // Anomaly detection
  anomaliesDetected: meter.createCounter("astra_anomalies_detected_total", { description: "Anomalies detected by severity" }),
  detectionLatency: secondsHistogram("astra_detection_latency_seconds", "Detection time per telemetry point", DETECTION_BUCKETS),
  /** Share of labelled detections that were right, 0..1; no unit, so Prometheus adds no `_ratio`. */
  detectionAccuracy: timedGauge("astra_detection_accuracy", { description: "Detection accuracy from operator feedback, 0..1" }),
  falsePositives: meter.createCounter("astra_false_positives_total", { description: "Detections an operator labelled false positive" }),
  memoryEngineHits: meter.createCounter("astra_memory_engine_hits_total", { description: "Isolate cache hits by store" }),
  memoryEngineMisses: meter.createCounter("astra_memory_engine_misses_total", { description: "Isolate cache misses by store" }),
  /** Cache size; an UpDownCounter of size changes, so the aggregator sums every isolate's cache. */
  memoryEngineSize: meter.createUpDownCounter("astra_memory_engine_size_bytes", { description: "Isolate cache size by store", unit: "By" }),

  // Operations (not on the dashboards)
  /** Ended spans the isolate's bounded buffer refused (buffer full), added once per export. */
  spansDropped: meter.createCounter("astra_telemetry_spans_dropped_total", { description: "Ended spans dropped by the isolate's full span buffer (not exported)" }),
  logLevelChanges: meter.createCounter("astra_log_level_changes_total", { description: "Run-time log level changes through the admin API, by the level set (\"LOG_LEVEL\" when cleared)" }),
};

export type Instruments = typeof instruments;
