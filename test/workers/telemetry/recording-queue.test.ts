import { describe, expect, it } from "vitest";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { Counter } from "@opentelemetry/api";
import { OnDemandMetricReader } from "../../../lib/telemetry/meter-provider";
import { RecordingQueue } from "../../../lib/telemetry/recording-queue";
import { toMetricPoints } from "../../../lib/telemetry/export/points";

function setup(maxPending?: number) {
  const queue = new RecordingQueue({ maxPending });
  const reader = new OnDemandMetricReader({ queue });
  const meter = new MeterProvider({ readers: [reader] }).getMeter("test");
  const collect = async () => toMetricPoints((await reader.collect()).resourceMetrics);
  return { queue, reader, meter, collect };
}

describe("the recording queue", () => {
  it("a collection sees every queued value, as if recorded at once; the next one only what came after", async () => {
    const { queue, meter, collect } = setup();
    const counter = meter.createCounter("c_total");
    const inflight = meter.createUpDownCounter("inflight");
    const hist = meter.createHistogram("h_seconds", { unit: "s", advice: { explicitBucketBoundaries: [0.1, 1] } });
    queue.add(counter, 2, { a: "x" });
    queue.add(counter, 1, { a: "x" });
    queue.add(inflight, 1, {});
    queue.add(inflight, 1, {});
    queue.add(inflight, -1, {}); // one request ended, one still running
    queue.record(hist, 0.05, {});
    queue.record(hist, 0.5, {});
    expect(queue.size).toBe(7);
    const first = await collect();
    expect(queue.size).toBe(0);
    expect(first.find((p) => p.name === "c_total")?.value).toBe(3);
    expect(first.find((p) => p.name === "inflight")?.value).toBe(1);
    const h = first.find((p) => p.name === "h_seconds");
    expect(h?.histogram?.count).toBe(2);
    expect(h?.histogram?.sum).toBeCloseTo(0.55);
    expect(h?.histogram?.bucketCounts).toEqual([1, 1, 0]);
    queue.add(counter, 5, { a: "x" });
    const second = await collect();
    expect(second.find((p) => p.name === "c_total")?.value).toBe(5);
    expect(second.find((p) => p.name === "h_seconds")).toBeUndefined();
  });

  it("applies at once when full, and a throwing instrument loses only its own value", async () => {
    const { queue, meter, collect } = setup(3);
    const counter = meter.createCounter("c_total");
    const broken = { add: () => { throw new Error("boom"); } } as unknown as Counter;
    queue.add(counter, 1, {});
    queue.add(broken, 1, {});
    expect(queue.size).toBe(2);
    queue.add(counter, 1, {}); // the third value fills it: applied now
    expect(queue.size).toBe(0);
    expect((await collect()).find((p) => p.name === "c_total")?.value).toBe(2);
  });

  it("sums adds per instrument and attribute set: one SDK call per set per collection", () => {
    const calls: Array<[number, unknown]> = [];
    const spy = { add: (v: number, a: unknown) => void calls.push([v, a]) } as unknown as Counter;
    const queue = new RecordingQueue();
    const a = { endpoint: "/a" };
    const b = { endpoint: "/b" };
    for (let i = 0; i < 100; i++) queue.add(spy, 1, a);
    queue.add(spy, 2, b);
    queue.add(spy, 1, a);
    expect(queue.size).toBe(102);
    queue.apply();
    expect(calls).toEqual([[101, a], [2, b]]);
  });
});
