import { describe, expect, it } from "vitest";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { AggregationTemporality, InstrumentType } from "@opentelemetry/sdk-metrics";
import { deltaTemporalitySelector, metricReader, OnDemandMetricReader } from "../../../lib/telemetry/meter-provider";
import { noteGaugeSample } from "../../../lib/telemetry/gauge-samples";
import { hashString, shardCount, shardOf, streamKey, toMetricPoints } from "../../../lib/telemetry/export/points";
import { instruments } from "../../../lib/telemetry/instruments";

function setup() {
  const reader = new OnDemandMetricReader();
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter("test");
  return { reader, meter };
}

describe("the isolate's reader", () => {
  it("selects DELTA for every instrument kind", () => {
    for (const kind of Object.values(InstrumentType)) expect(deltaTemporalitySelector(kind)).toBe(AggregationTemporality.DELTA);
    expect(metricReader.selectAggregationTemporality(InstrumentType.UP_DOWN_COUNTER)).toBe(AggregationTemporality.DELTA);
  });

  it("hands over only what was recorded since the previous collection", async () => {
    const { reader, meter } = setup();
    const counter = meter.createCounter("c_total");
    const updown = meter.createUpDownCounter("inflight");
    const hist = meter.createHistogram("h_seconds", { unit: "s", advice: { explicitBucketBoundaries: [0.1, 1] } });
    counter.add(3, { a: "x" });
    updown.add(1);
    updown.add(1);
    hist.record(0.05);
    hist.record(2);
    let points = toMetricPoints((await reader.collect()).resourceMetrics);
    expect(points.find((p) => p.name === "c_total")).toMatchObject({ kind: "counter", value: 3, attributes: { a: "x" } });
    expect(points.find((p) => p.name === "inflight")).toMatchObject({ kind: "updowncounter", value: 2 });
    expect(points.find((p) => p.name === "h_seconds")).toMatchObject({
      kind: "histogram",
      unit: "s",
      histogram: { boundaries: [0.1, 1], bucketCounts: [1, 0, 1], sum: 2.05, count: 2, min: 0.05, max: 2 },
    });
    counter.add(2, { a: "x" });
    updown.add(-2);
    points = toMetricPoints((await reader.collect()).resourceMetrics);
    expect(points.find((p) => p.name === "c_total")?.value).toBe(2); // delta, not 5
    expect(points.find((p) => p.name === "inflight")?.value).toBe(-2);
    expect(points.find((p) => p.name === "h_seconds")).toBeUndefined(); // nothing recorded: no empty point
    points = toMetricPoints((await reader.collect()).resourceMetrics);
    expect(points).toEqual([]);
  });

  it("reports a gauge only when it was recorded since the last collection (no stale last value)", async () => {
    const { reader, meter } = setup();
    const gauge = meter.createGauge("g");
    gauge.record(0.5);
    gauge.record(0.75);
    const first = toMetricPoints((await reader.collect()).resourceMetrics);
    expect(first).toMatchObject([{ name: "g", kind: "gauge", value: 0.75 }]);
    expect(first[0]!.timeMs).toBeGreaterThan(0);
    expect(toMetricPoints((await reader.collect()).resourceMetrics)).toEqual([]);
  });

  it("stamps a gauge point with the time it was recorded, not when it was collected", async () => {
    const { reader, meter } = setup();
    const gauge = meter.createGauge("g_timed");
    gauge.record(0.9, { name: "storage" });
    noteGaugeSample("g_timed", { name: "storage" }, 1234);
    const [point] = toMetricPoints((await reader.collect()).resourceMetrics);
    expect(point).toMatchObject({ kind: "gauge", value: 0.9, timeMs: 1234 });
  });

  it("the contract's gauges note their sample time when recorded", async () => {
    await metricReader.collect();
    const before = Date.now();
    instruments.detectionAccuracy.record(0.5);
    const points = toMetricPoints((await metricReader.collect()).resourceMetrics);
    const accuracy = points.find((p) => p.name === "astra_detection_accuracy");
    expect(accuracy?.value).toBe(0.5);
    expect(accuracy!.timeMs).toBeGreaterThanOrEqual(before);
    expect(accuracy!.timeMs).toBeLessThanOrEqual(Date.now());
  });

  it("turns points into plain JSON-serializable data with sorted string attributes", async () => {
    const { reader, meter } = setup();
    meter.createCounter("c_total", { description: "d" }).add(1, { z: "1", a: 2 as unknown as string });
    const [point] = toMetricPoints((await reader.collect()).resourceMetrics);
    expect(Object.keys(point!.attributes)).toEqual(["a", "z"]);
    expect(point!.attributes).toEqual({ a: "2", z: "1" });
    expect(JSON.parse(JSON.stringify(point))).toEqual(point);
  });

  it("the 22 dashboard instruments exist, plus the two operational counters", () => {
    expect(Object.keys(instruments)).toHaveLength(24);
    expect(Object.keys(instruments)).toContain("logLevelChanges");
    expect(Object.keys(instruments)).toContain("spansDropped");
  });
});

describe("streams and shards", () => {
  it("a stream is name + kind + attributes in any order", () => {
    expect(streamKey({ name: "n", kind: "counter", attributes: { a: "1", b: "2" } })).toBe(streamKey({ name: "n", kind: "counter", attributes: { b: "2", a: "1" } }));
    expect(streamKey({ name: "n", kind: "counter", attributes: {} })).not.toBe(streamKey({ name: "n", kind: "gauge", attributes: {} }));
  });

  it("shards by metric name, stable and in range", () => {
    expect(hashString("astra_http_requests_total")).toBe(hashString("astra_http_requests_total"));
    expect(shardOf("anything", 1)).toBe(0);
    const seen = new Set(["a_total", "b_total", "c_total", "d_total", "e_total", "f_total"].map((n) => shardOf(n, 4)));
    for (const s of seen) expect(s >= 0 && s < 4).toBe(true);
    expect(seen.size).toBeGreaterThan(1);
    expect([shardCount(undefined), shardCount("3"), shardCount("0"), shardCount("x"), shardCount("1000")]).toEqual([1, 3, 1, 1, 64]);
  });
});
