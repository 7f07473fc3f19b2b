/**
 * Plain, serializable metric points: what an isolate sends to the MetricsAggregator by RPC.
 *
 * One point per (metric, attribute set) of one delta collection. Values are deltas for
 * counters, UpDownCounters and histograms, and the last value for gauges.
 */
import { DataPointType, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { hrTimeToMilliseconds } from "@opentelemetry/core";
import { flattenAttributes, gaugeSampleTime, type PointAttributes } from "../gauge-samples";

/** How the aggregator merges a point into its stream. */
export type PointKind = "counter" | "updowncounter" | "histogram" | "gauge";

/** A histogram delta: bucket counts over explicit boundaries (`bucketCounts.length === boundaries.length + 1`). */
export interface HistogramValue {
  boundaries: number[];
  bucketCounts: number[];
  sum: number;
  count: number;
  /** Smallest recorded value in this delta; absent when nothing was recorded. */
  min?: number;
  /** Largest recorded value in this delta; absent when nothing was recorded. */
  max?: number;
}

export type { PointAttributes };

/** One delta (or last-value) point of one stream. */
export interface MetricPoint {
  name: string;
  description: string;
  unit: string;
  kind: PointKind;
  attributes: PointAttributes;
  /** Sum delta (counter/updowncounter) or last value (gauge). */
  value?: number;
  histogram?: HistogramValue;
  /** Epoch milliseconds: the end of the collection interval; for gauges, when the value was recorded. */
  timeMs: number;
  /**
   * The isolate an UpDownCounter delta came from, set only by a leaf when it forwards: the owner
   * keeps UpDownCounters per isolate (a dead isolate leaves the sum), so a leaf must not merge
   * two isolates' in-flight counts into one anonymous contribution.
   */
  sender?: string;
}

/** A batch of points an isolate sends once; `id` is unique per isolate send (isolate id + sequence). */
export interface PointBatch {
  id: string;
  points: MetricPoint[];
}


/**
 * Converts one collection of the isolate's reader into plain points. A delta collection holds
 * only streams recorded since the last one, so a counter delta of 0 comes from an explicit
 * `add(0)` (a series declared at 0, or "requests in flight" back to 0) and is kept: it creates
 * the stream. Histograms with count 0 are skipped: they carry nothing to add.
 * Exponential histograms are not used by the instruments and are skipped.
 *
 * @example
 * const { resourceMetrics } = await metricReader.collect();
 * const points = toMetricPoints(resourceMetrics);
 */
export function toMetricPoints(resourceMetrics: ResourceMetrics): MetricPoint[] {
  const points: MetricPoint[] = [];
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      const { name, description, unit } = metric.descriptor;
      for (const dp of metric.dataPoints) {
        const base = { name, description, unit, attributes: flattenAttributes(dp.attributes), timeMs: hrTimeToMilliseconds(dp.endTime) };
        switch (metric.dataPointType) {
          case DataPointType.SUM: {
            const value = dp.value as number;
            points.push({ ...base, kind: metric.isMonotonic ? "counter" : "updowncounter", value });
            break;
          }
          case DataPointType.GAUGE: {
            const sampled = gaugeSampleTime(name, base.attributes);
            points.push({ ...base, kind: "gauge", value: dp.value as number, timeMs: sampled ?? base.timeMs });
            break;
          }
          case DataPointType.HISTOGRAM: {
            const h = dp.value as { buckets: { boundaries: number[]; counts: number[] }; sum?: number; count: number; min?: number; max?: number };
            if (h.count === 0) continue;
            points.push({
              ...base,
              kind: "histogram",
              histogram: {
                boundaries: [...h.buckets.boundaries],
                bucketCounts: [...h.buckets.counts],
                sum: h.sum ?? 0,
                count: h.count,
                ...(h.min !== undefined && Number.isFinite(h.min) && { min: h.min }),
                ...(h.max !== undefined && Number.isFinite(h.max) && { max: h.max }),
              },
            });
            break;
          }
          default:
            break;
        }
      }
    }
  }
  return points;
}

/** The stream a point belongs to: metric name + kind + sorted attributes. */
export function streamKey(point: Pick<MetricPoint, "name" | "kind" | "attributes">): string {
  const attrs = Object.keys(point.attributes)
    .sort()
    .map((k) => [k, point.attributes[k]]);
  return `${point.name}|${point.kind}|${JSON.stringify(attrs)}`;
}

/** FNV-1a of a string, unsigned 32 bit: stable across isolates, for shard selection. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The shard that owns every stream of metric `name`, in 0..shards-1. */
export function shardOf(name: string, shards: number): number {
  return shards <= 1 ? 0 : hashString(name) % shards;
}

/** The number of aggregator shards the bindings ask for (METRICS_AGGREGATOR_SHARDS, default 1, at most 64). */
export function shardCount(raw: string | undefined): number {
  const n = Math.floor(Number(raw ?? "1"));
  return Number.isFinite(n) && n >= 1 ? Math.min(n, 64) : 1;
}

/** The Durable Object name of shard `n`. */
export const shardName = (n: number): string => `metrics-shard-${n}`;

/** The number of leaf aggregators the bindings ask for (METRICS_AGGREGATOR_LEAVES, default 0 = none, at most 256). */
export function leafCount(raw: string | undefined): number {
  const n = Math.floor(Number(raw ?? "0"));
  return Number.isFinite(n) && n >= 1 ? Math.min(n, 256) : 0;
}

/**
 * The leaf an isolate starts its rotation from (the flusher moves to the next leaf at each
 * export; each leaf still gets one isolate's batches in sequence order, one at a time).
 *
 * @example
 * leafOf(isolateId(), leafCount(env.METRICS_AGGREGATOR_LEAVES)); // 0..leaves-1
 */
export function leafOf(senderId: string, leaves: number): number {
  return leaves <= 1 ? 0 : hashString(senderId) % leaves;
}

/** The Durable Object name of leaf `n`. */
export const leafName = (n: number): string => `metrics-leaf-${n}`;

/** Where a batch goes: a leaf aggregator, or straight to the shard that owns its streams. */
export interface Destination {
  tier: "leaf" | "shard";
  index: number;
}

/** A batch id is `${sender}-${sequence}`: both parts, or undefined when it is not of that form. */
export function parseBatchId(batchId: string): { sender: string; sequence: number } | undefined {
  const m = typeof batchId === "string" ? /^(.+)-(\d{1,15})$/.exec(batchId) : null;
  return m ? { sender: m[1]!, sequence: Number(m[2]) } : undefined;
}

/**
 * The bucket-wise sum of two histogram deltas, or undefined when their buckets differ (the
 * instrument changed its boundaries: the caller drops the point and counts it).
 *
 * @example
 * addHistograms({ boundaries: [1], bucketCounts: [1, 0], sum: 0.5, count: 1 }, { boundaries: [1], bucketCounts: [0, 2], sum: 5, count: 2 });
 * // { boundaries: [1], bucketCounts: [1, 2], sum: 5.5, count: 3 }
 */
export function addHistograms(into: HistogramValue, delta: HistogramValue): HistogramValue | undefined {
  if (
    into.boundaries.length !== delta.boundaries.length ||
    into.boundaries.some((b, i) => b !== delta.boundaries[i]) ||
    delta.bucketCounts.length !== into.bucketCounts.length
  )
    return undefined;
  return {
    boundaries: into.boundaries,
    bucketCounts: into.bucketCounts.map((c, i) => c + (delta.bucketCounts[i] ?? 0)),
    sum: into.sum + delta.sum,
    count: into.count + delta.count,
    ...((into.min !== undefined || delta.min !== undefined) && { min: Math.min(into.min ?? Infinity, delta.min ?? Infinity) }),
    ...((into.max !== undefined || delta.max !== undefined) && { max: Math.max(into.max ?? -Infinity, delta.max ?? -Infinity) }),
  };
}

/** True when a point received by RPC has the shape its kind needs (anything else is dropped and counted). */
export function isValidPoint(p: MetricPoint): boolean {
  if (!p || typeof p.name !== "string" || !p.name || typeof p.attributes !== "object" || p.attributes === null) return false;
  if (p.kind === "histogram") {
    const h = p.histogram;
    return !!h && Array.isArray(h.boundaries) && Array.isArray(h.bucketCounts) && h.bucketCounts.length === h.boundaries.length + 1 && Number.isFinite(h.count) && Number.isFinite(h.sum);
  }
  return (p.kind === "counter" || p.kind === "updowncounter" || p.kind === "gauge") && typeof p.value === "number" && Number.isFinite(p.value);
}
