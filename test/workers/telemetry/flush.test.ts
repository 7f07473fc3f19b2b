import { env } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { rpcSendPoints, TelemetryFlusher, type SendPoints } from "../../../lib/telemetry/export/flush";
import { OnDemandMetricReader } from "../../../lib/telemetry/meter-provider";
import { shardName, type PointBatch } from "../../../lib/telemetry/export/points";
import { BufferingSpanProcessor } from "../../../lib/telemetry/tracer-provider";
import { captureCollector } from "./support";

const testEnv = env as unknown as Env;
const ENDPOINT = testEnv.OTEL_EXPORTER_OTLP_ENDPOINT as string;

function setup(options: { send?: SendPoints; minIntervalMillis?: number; maxRetainedBatches?: number } = {}) {
  const reader = new OnDemandMetricReader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter("test");
  const spans = new BufferingSpanProcessor({ maxBufferedSpans: 10 });
  const sent: Array<{ shard: number; batch: PointBatch }> = [];
  const send: SendPoints =
    options.send ??
    (async (_env, shard, batch) => {
      sent.push({ shard, batch: structuredClone(batch) });
    });
  const flusher = new TelemetryFlusher({
    reader,
    spans,
    minIntervalMillis: options.minIntervalMillis ?? 50,
    maxRetainedBatches: options.maxRetainedBatches,
    sendPoints: send,
    exportSpans: async () => true,
  });
  return { reader, meter, spans, sent, flusher };
}

const total = (sent: Array<{ batch: PointBatch }>, name: string) =>
  sent.flatMap((s) => s.batch.points).filter((p) => p.name === name).reduce((n, p) => n + (p.value ?? 0), 0);

let restore: (() => void) | undefined;
afterEach(() => restore?.());

describe("TelemetryFlusher coalescing", () => {
  it("N concurrent flushes → one export carrying every caller's data", async () => {
    const { meter, sent, flusher } = setup();
    const counter = meter.createCounter("requests_total");
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      counter.add(1, { route: "/x" });
      calls.push(flusher.flush(testEnv));
    }
    await Promise.all(calls);
    expect(flusher.stats.exports).toBe(1);
    expect(sent).toHaveLength(1);
    expect(total(sent, "requests_total")).toBe(50);
  });

  it("a call during an export in flight is covered by the next export (which contains its data), at most one in flight", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const sent: PointBatch[] = [];
    const { meter, flusher } = setup({
      minIntervalMillis: 100,
      send: async (_e, _s, batch) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, 30));
        sent.push(structuredClone(batch));
        inFlight--;
      },
    });
    const counter = meter.createCounter("requests_total");
    counter.add(1);
    const first = flusher.flush(testEnv);
    await new Promise((r) => setTimeout(r, 5)); // the first export is now sending
    const late: Promise<void>[] = [];
    for (let i = 0; i < 10; i++) {
      counter.add(1);
      late.push(flusher.flush(testEnv));
    }
    const lateDone = Promise.all(late).then(() => sent.reduce((n, b) => n + b.points.reduce((m, p) => m + (p.value ?? 0), 0), 0));
    await first;
    expect(await lateDone).toBe(11); // when the late callers resolve, their data has been sent
    expect(flusher.stats.exports).toBe(2);
    expect(maxInFlight).toBe(1);
  });

  it("starts at most one export per minIntervalMillis (exports per request ≪ 1 under load)", async () => {
    const { meter, flusher, sent } = setup({ minIntervalMillis: 200 });
    const counter = meter.createCounter("requests_total");
    const started = Date.now();
    const calls: Promise<void>[] = [];
    // 100 "requests" spread over ~500 ms.
    for (let i = 0; i < 100; i++) {
      counter.add(1);
      calls.push(flusher.flush(testEnv));
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(calls);
    const elapsed = Date.now() - started;
    expect(total(sent, "requests_total")).toBe(100);
    expect(flusher.stats.exports).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 1);
    expect(flusher.stats.exports / 100).toBeLessThanOrEqual(0.05);
  });
});

describe("TelemetryFlusher retention", () => {
  it("keeps a batch whose send failed and re-sends it with the same id next flush", async () => {
    let fail = true;
    const attempts: PointBatch[] = [];
    const { meter, flusher } = setup({
      send: async (_e, _s, batch) => {
        attempts.push(structuredClone(batch));
        if (fail) throw new Error("aggregator unreachable");
      },
    });
    const counter = meter.createCounter("requests_total");
    counter.add(3);
    await flusher.flush(testEnv);
    expect(flusher.retainedBatches).toBe(1);
    expect(flusher.stats.sendFailures).toBe(1);
    fail = false;
    counter.add(4);
    await flusher.flush(testEnv);
    expect(flusher.retainedBatches).toBe(0);
    expect(attempts.map((b) => b.id)).toEqual([attempts[0]!.id, attempts[0]!.id, attempts[2]!.id]);
    expect(attempts[1]).toEqual(attempts[0]); // same id, same points
    expect(attempts[2]!.id).not.toBe(attempts[0]!.id);
    expect(attempts[2]!.points[0]!.value).toBe(4);
  });

  it("bounds retention: drops the oldest batch and counts it", async () => {
    const { meter, flusher } = setup({
      maxRetainedBatches: 2,
      send: async () => {
        throw new Error("down");
      },
    });
    const counter = meter.createCounter("requests_total");
    for (let i = 0; i < 5; i++) {
      counter.add(1);
      await flusher.flush(testEnv);
    }
    expect(flusher.retainedBatches).toBe(2);
    expect(flusher.stats.droppedBatches).toBe(3);
    expect(flusher.stats.droppedPoints).toBe(3);
  });

  it("with the real aggregator: a batch whose acknowledgement was lost is re-sent and counted once", async () => {
    let loseAck = true;
    const { meter, flusher } = setup({
      send: async (e, shard, batch) => {
        await rpcSendPoints(e, shard, batch);
        if (loseAck) throw new Error("connection reset after delivery");
      },
    });
    const name = `flush_e2e_${Date.now()}_total`;
    const counter = meter.createCounter(name);
    counter.add(5);
    await flusher.flush(testEnv);
    expect(flusher.retainedBatches).toBe(1);
    loseAck = false;
    counter.add(2);
    await flusher.flush(testEnv);
    const shard = testEnv.METRICS_AGGREGATOR.get(testEnv.METRICS_AGGREGATOR.idFromName(shardName(0)));
    expect(await shard.read(name, "counter", {})).toMatchObject({ value: 7 });
    expect((await shard.stats()).batchesDuplicate).toBeGreaterThanOrEqual(1);
  });

  it("is bounded in time when the aggregator never answers: the batch is kept, the next flush proceeds", async () => {
    const reader = new OnDemandMetricReader();
    const meter = new MeterProvider({ readers: [reader] }).getMeter("test");
    const flusher = new TelemetryFlusher({ reader, spans: new BufferingSpanProcessor(), minIntervalMillis: 0, timeoutMillis: 100, sendPoints: () => new Promise<void>(() => {}) });
    meter.createCounter("requests_total").add(1);
    const started = Date.now();
    await flusher.flush(testEnv);
    await flusher.flush(testEnv);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(flusher.stats.sendFailures).toBe(2);
    expect(flusher.retainedBatches).toBe(1);
  });

  it("never rejects, even when collection and every transport fail", async () => {
    const reader = new OnDemandMetricReader(); // never registered with a provider: collect() throws
    const flusher = new TelemetryFlusher({
      reader,
      spans: new BufferingSpanProcessor(),
      sendPoints: async () => {
        throw new Error("x");
      },
      exportSpans: async () => {
        throw new Error("y");
      },
    });
    await expect(flusher.flush(testEnv)).resolves.toBeUndefined();
    expect(flusher.stats.collectErrors).toBe(1);
  });

  it("sends nothing when the export endpoint is empty", async () => {
    const { meter, flusher, sent } = setup();
    meter.createCounter("requests_total").add(1);
    await flusher.flush({ ...testEnv, OTEL_EXPORTER_OTLP_ENDPOINT: "" });
    expect(sent).toHaveLength(0);
    expect(flusher.retainedBatches).toBe(0);
  });
});

describe("TelemetryFlusher spans", () => {
  it("exports ended spans with OTLP/HTTP to /v1/traces, bearer-authenticated, in the same flush", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const reader = new OnDemandMetricReader();
    new MeterProvider({ readers: [reader] });
    const spans = new BufferingSpanProcessor();
    const tracer = new BasicTracerProvider({ spanProcessors: [spans] }).getTracer("test");
    const flusher = new TelemetryFlusher({ reader, spans, sendPoints: async () => {} });
    tracer.startSpan("POST /api/v1/telemetry").end();
    tracer.startSpan("detect").end();
    expect(spans.size).toBe(2);
    await flusher.flush(testEnv);
    const traces = collector.requests.filter((r) => r.url === `${ENDPOINT}/v1/traces`);
    expect(traces).toHaveLength(1);
    expect(traces[0]!.headers.authorization).toBe(`Bearer ${testEnv.OTEL_EXPORTER_OTLP_TOKEN}`);
    const names = traces[0]!.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => s.name)));
    expect(names.sort()).toEqual(["POST /api/v1/telemetry", "detect"]);
    expect(spans.size).toBe(0);
  });

  it("keeps spans (bounded) when the export fails", async () => {
    const collector = captureCollector(ENDPOINT, () => 400);
    restore = collector.restore;
    const reader = new OnDemandMetricReader();
    new MeterProvider({ readers: [reader] });
    const spans = new BufferingSpanProcessor({ maxBufferedSpans: 3 });
    const tracer = new BasicTracerProvider({ spanProcessors: [spans] }).getTracer("test");
    const flusher = new TelemetryFlusher({ reader, spans, sendPoints: async () => {} });
    for (let i = 0; i < 5; i++) tracer.startSpan(`s${i}`).end();
    expect(spans.size).toBe(3);
    expect(spans.droppedSpans).toBe(2);
    await flusher.flush(testEnv);
    expect(flusher.stats.spanExportFailures).toBe(1);
    expect(spans.size).toBe(3);
  });

  it("exports at once, without the interval wait, when the span buffer is a quarter full", async () => {
    const reader = new OnDemandMetricReader();
    new MeterProvider({ readers: [reader] });
    const spans = new BufferingSpanProcessor({ maxBufferedSpans: 8 });
    const tracer = new BasicTracerProvider({ spanProcessors: [spans] }).getTracer("test");
    const exported: number[] = [];
    const flusher = new TelemetryFlusher({ reader, spans, minIntervalMillis: 60_000, sendPoints: async () => {}, exportSpans: async (_env, s) => (exported.push(s.length), true) });
    tracer.startSpan("first").end();
    await flusher.flush(testEnv); // starts the 60 s interval
    for (let i = 0; i < 2; i++) tracer.startSpan(`busy${i}`).end();
    const started = Date.now();
    await flusher.flush(testEnv);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(exported).toEqual([1, 2]);
    expect(spans.droppedSpans).toBe(0);
  });
});
