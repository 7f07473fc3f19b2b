import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import type { Clock } from "../../../lib/support/async";
import { rpcSendPoints, TelemetryFlusher, type SendPoints } from "../../../lib/telemetry/export/flush";
import { OnDemandMetricReader } from "../../../lib/telemetry/meter-provider";
import { shardName, type Destination, type PointBatch } from "../../../lib/telemetry/export/points";
import { BufferingSpanProcessor } from "../../../lib/telemetry/tracer-provider";
import { LogQueue } from "../../../lib/telemetry/log-queue";
import { captureCollector } from "./support";

const testEnv = env as unknown as Env;
const ENDPOINT = testEnv.OTEL_EXPORTER_OTLP_ENDPOINT as string;

/**
 * A manual clock for the flusher: time moves only when the test advances it, and its timers
 * (interval waits, timeouts) fire in time order as it passes them. So no test depends on how fast
 * the machine is: an export that has to wait cannot start before the test moves the clock, and a
 * timeout cannot fire while a slow machine is still busy with the send.
 */
function manualClock() {
  let t = 0;
  let ids = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  /** Every timer's length, in the order set. */
  const waits: number[] = [];
  const clock: Clock = {
    now: () => t,
    setTimeout: (fn, ms) => {
      waits.push(ms);
      timers.set(++ids, { at: t + Math.max(0, ms), fn });
      return ids;
    },
    clearTimeout: (id) => void timers.delete(id as number),
  };
  /** One macrotask: every promise chain that waits only on promises has run to its end. */
  const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
  /** Moves the clock `ms` forward, firing each timer due on the way at its own time. */
  async function advance(ms: number): Promise<void> {
    const end = t + ms;
    for (;;) {
      await settle();
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of timers) if (entry[1].at <= end && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      timers.delete(next[0]);
      t = next[1].at;
      next[1].fn();
    }
    t = end;
    await settle();
  }
  /** Moves the clock without firing any timer: what a request context that is gone does to its timers. */
  const jump = (ms: number) => void (t += ms);
  return { clock, advance, jump, waits, now: () => t };
}

/** Whether `promise` has settled, tracked from now on. */
function tracked<T>(promise: Promise<T>) {
  const state = { settled: false };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

function setup(options: { send?: SendPoints; minIntervalMillis?: number; maxRetainedBatches?: number; logs?: LogQueue } = {}) {
  const time = manualClock();
  const reader = new OnDemandMetricReader();
  const meter = new MeterProvider({ readers: [reader] }).getMeter("test");
  const spans = new BufferingSpanProcessor({ maxBufferedSpans: 10 });
  const sent: Array<{ to: Destination; batch: PointBatch }> = [];
  const send: SendPoints =
    options.send ??
    (async (_env, to, batch) => {
      sent.push({ to, batch: structuredClone(batch) });
    });
  const flusher = new TelemetryFlusher({
    reader,
    spans,
    minIntervalMillis: options.minIntervalMillis ?? 50,
    maxRetainedBatches: options.maxRetainedBatches,
    sendPoints: send,
    exportSpans: async () => true,
    logs: options.logs ?? new LogQueue(),
    clock: time.clock,
  });
  return { reader, meter, spans, sent, flusher, time };
}

/** The next flush, which waits out the interval since the previous export started: the clock is moved past it. */
async function flushAfterInterval(flusher: TelemetryFlusher, time: ReturnType<typeof manualClock>, minIntervalMillis = 50): Promise<void> {
  const flushed = flusher.flush(testEnv);
  await time.advance(minIntervalMillis);
  await flushed;
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
    const startedAt: number[] = [];
    // The first send is held until the test lets it go (it was a real 30 ms wait).
    let sending!: () => void;
    const firstSending = new Promise<void>((resolve) => (sending = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const { meter, flusher, time } = setup({
      minIntervalMillis: 100,
      send: async (_e, _s, batch) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        startedAt.push(time.now());
        if (startedAt.length === 1) {
          sending();
          await released;
        }
        sent.push(structuredClone(batch));
        inFlight--;
      },
    });
    const counter = meter.createCounter("requests_total");
    counter.add(1);
    const first = flusher.flush(testEnv);
    await firstSending; // the first export is now sending
    const late: Promise<void>[] = [];
    for (let i = 0; i < 10; i++) {
      counter.add(1);
      late.push(flusher.flush(testEnv));
    }
    const lateDone = Promise.all(late).then(() => sent.reduce((n, b) => n + b.points.reduce((m, p) => m + (p.value ?? 0), 0), 0));
    const lateState = tracked(lateDone);
    await time.advance(0);
    expect(flusher.stats.exports).toBe(1); // nothing else starts while the first export is out
    release();
    await first;
    // The next export starts one interval after the first one started, not before.
    await time.advance(99);
    expect(lateState.settled).toBe(false);
    expect(flusher.stats.exports).toBe(1);
    await time.advance(1);
    expect(await lateDone).toBe(11); // when the late callers resolve, their data has been sent
    expect(flusher.stats.exports).toBe(2);
    expect(startedAt).toEqual([0, 100]);
    expect(maxInFlight).toBe(1);
  });

  it("starts at most one export per minIntervalMillis (exports per request ≪ 1 under load)", async () => {
    const startedAt: number[] = [];
    const sent: Array<{ to: Destination; batch: PointBatch }> = [];
    const { meter, flusher, time } = setup({
      minIntervalMillis: 200,
      send: async (_env, to, batch) => {
        startedAt.push(time.now());
        sent.push({ to, batch: structuredClone(batch) });
      },
    });
    const counter = meter.createCounter("requests_total");
    const started = time.now();
    const calls: Promise<void>[] = [];
    // 100 "requests" spread over 500 ms of the clock.
    for (let i = 0; i < 100; i++) {
      counter.add(1);
      calls.push(flusher.flush(testEnv));
      await time.advance(5);
    }
    let doneAt: number | undefined;
    const all = Promise.all(calls).then(() => (doneAt = time.now()));
    await time.advance(200); // the last callers' export waits out its interval
    await all;
    const elapsed = doneAt! - started;
    expect(total(sent, "requests_total")).toBe(100);
    expect(flusher.stats.exports).toBeLessThanOrEqual(Math.ceil(elapsed / 200) + 1);
    expect(flusher.stats.exports / 100).toBeLessThanOrEqual(0.05);
    // Exactly: one export at once, then one per interval, each as soon as the interval allows.
    expect(startedAt).toEqual([0, 200, 400, 600]);
    expect(elapsed).toBe(600);
  });
});

describe("TelemetryFlusher retention", () => {
  it("keeps a batch whose send failed and re-sends it with the same id next flush", async () => {
    let fail = true;
    const attempts: PointBatch[] = [];
    const { meter, flusher, time } = setup({
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
    await flushAfterInterval(flusher, time);
    expect(flusher.retainedBatches).toBe(0);
    expect(attempts.map((b) => b.id)).toEqual([attempts[0]!.id, attempts[0]!.id, attempts[2]!.id]);
    expect(attempts[1]).toEqual(attempts[0]); // same id, same points
    expect(attempts[2]!.id).not.toBe(attempts[0]!.id);
    expect(attempts[2]!.points[0]!.value).toBe(4);
  });

  it("bounds retention: drops the oldest batch and counts it", async () => {
    const { meter, flusher, time } = setup({
      maxRetainedBatches: 2,
      send: async () => {
        throw new Error("down");
      },
    });
    const counter = meter.createCounter("requests_total");
    for (let i = 0; i < 5; i++) {
      counter.add(1);
      await flushAfterInterval(flusher, time);
    }
    expect(flusher.retainedBatches).toBe(2);
    expect(flusher.stats.droppedBatches).toBe(3);
    expect(flusher.stats.droppedPoints).toBe(3);
  });

  it("with the real aggregator: a batch whose acknowledgement was lost is re-sent and counted once", async () => {
    let loseAck = true;
    const { meter, flusher, time } = setup({
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
    await flushAfterInterval(flusher, time);
    const shard = testEnv.METRICS_AGGREGATOR.get(testEnv.METRICS_AGGREGATOR.idFromName(shardName(0)));
    expect(await shard.read(name, "counter", {})).toMatchObject({ value: 7 });
    expect((await shard.stats()).batchesDuplicate).toBeGreaterThanOrEqual(1);
  });

  it("is bounded in time when the aggregator never answers: the batch is kept, the next flush proceeds", async () => {
    const reader = new OnDemandMetricReader();
    const meter = new MeterProvider({ readers: [reader] }).getMeter("test");
    const time = manualClock();
    const flusher = new TelemetryFlusher({ reader, spans: new BufferingSpanProcessor(), minIntervalMillis: 0, timeoutMillis: 100, sendPoints: () => new Promise<void>(() => {}), clock: time.clock });
    meter.createCounter("requests_total").add(1);
    const started = time.now();
    // Each flush gives up on the send exactly when its timeout has passed on the clock.
    for (let i = 0; i < 2; i++) {
      const flushed = flusher.flush(testEnv);
      const state = tracked(flushed);
      await time.advance(99);
      expect(state.settled).toBe(false);
      await time.advance(1);
      await flushed;
    }
    expect(time.now() - started).toBe(200);
    expect(time.now() - started).toBeLessThan(2000);
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
      clock: manualClock().clock,
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
    const flusher = new TelemetryFlusher({ reader, spans, sendPoints: async () => {}, clock: manualClock().clock });
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
    const flusher = new TelemetryFlusher({ reader, spans, sendPoints: async () => {}, clock: manualClock().clock });
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
    const time = manualClock();
    const flusher = new TelemetryFlusher({ reader, spans, minIntervalMillis: 60_000, sendPoints: async () => {}, exportSpans: async (_env, s) => (exported.push(s.length), true), clock: time.clock });
    tracer.startSpan("first").end();
    await flusher.flush(testEnv); // starts the 60 s interval
    for (let i = 0; i < 2; i++) tracer.startSpan(`busy${i}`).end();
    const started = time.now();
    // The clock stands still: a flush that waited for the interval (or any part of it) could not resolve.
    await flusher.flush(testEnv);
    expect(time.now() - started).toBe(0);
    expect(time.now() - started).toBeLessThan(30_000);
    expect(exported).toEqual([1, 2]);
    expect(spans.droppedSpans).toBe(0);
  });

  it("does not export early while span exports fail (collector down): a full buffer waits for the interval", async () => {
    const reader = new OnDemandMetricReader();
    new MeterProvider({ readers: [reader] });
    const spans = new BufferingSpanProcessor({ maxBufferedSpans: 8 });
    const tracer = new BasicTracerProvider({ spanProcessors: [spans] }).getTracer("test");
    const time = manualClock();
    let accept = false;
    const attempts: number[] = [];
    const flusher = new TelemetryFlusher({ reader, spans, minIntervalMillis: 1000, sendPoints: async () => {}, exportSpans: async (_env, s) => (attempts.push(s.length), accept), clock: time.clock });
    for (let i = 0; i < 8; i++) tracer.startSpan(`s${i}`).end();
    await flusher.flush(testEnv); // the first export fails: the spans go back, the buffer stays full
    expect(attempts).toEqual([8]);
    const pending = flusher.flush(testEnv);
    const next = tracked(pending);
    await time.advance(999);
    expect(next.settled).toBe(false); // a full buffer, yet it waits: the last export failed
    expect(attempts).toHaveLength(1);
    accept = true;
    await time.advance(1);
    await pending;
    expect(attempts).toEqual([8, 8]); // the interval's export carries them, and succeeds
    tracer.startSpan("after").end();
    for (let i = 0; i < 2; i++) tracer.startSpan(`busy${i}`).end();
    const started = time.now();
    await flusher.flush(testEnv); // exports accepted again: a quarter-full buffer exports at once
    expect(time.now() - started).toBe(0);
    expect(attempts).toEqual([8, 8, 3]);
  });
});

describe("TelemetryFlusher through leaves", () => {
  const leafEnv = { ...testEnv, METRICS_AGGREGATOR_LEAVES: "4", METRICS_AGGREGATOR_SHARDS: "2" } as Env;

  it("sends the whole collection as one batch to one leaf, the next leaf at each export", async () => {
    const { meter, sent, flusher, time } = setup();
    for (let i = 0; i < 8; i++) {
      for (let m = 0; m < 6; m++) meter.createCounter(`leaf_routing_${m}_total`).add(1);
      const flushed = flusher.flush(leafEnv);
      await time.advance(50);
      await flushed;
    }
    expect(sent).toHaveLength(8);
    expect(sent.every((s) => s.to.tier === "leaf" && s.batch.points.length === 6)).toBe(true);
    const first = sent[0]!.to.index;
    expect(sent.map((s) => s.to.index)).toEqual(Array.from({ length: 8 }, (_, i) => (first + i) % 4));
  });

  it("without leaves, one batch per owner shard", async () => {
    const { meter, sent, flusher } = setup();
    for (let m = 0; m < 8; m++) meter.createCounter(`shard_routing_${m}_total`).add(1);
    await flusher.flush({ ...leafEnv, METRICS_AGGREGATOR_LEAVES: "0" } as Env);
    expect(sent.map((s) => s.to.tier)).toEqual(["shard", "shard"]);
  });

  it("end to end: isolate → leaf → owner, a lost acknowledgement on the first hop counted once", async () => {
    let loseAck = true;
    const { meter, flusher, time } = setup({
      send: async (e, to, batch) => {
        await rpcSendPoints(e, to, batch);
        if (loseAck) throw new Error("connection reset after delivery");
      },
    });
    const oneShard = { ...testEnv, METRICS_AGGREGATOR_LEAVES: "1" } as Env;
    const name = `leaf_e2e_${Date.now()}_total`;
    const counter = meter.createCounter(name);
    counter.add(5);
    await flusher.flush(oneShard);
    loseAck = false;
    counter.add(2);
    const flushed = flusher.flush(oneShard);
    await time.advance(50);
    await flushed;
    const { runDurableObjectAlarm } = await import("cloudflare:test");
    const leaf = testEnv.METRICS_LEAF.get(testEnv.METRICS_LEAF.idFromName("metrics-leaf-0"));
    expect(await leaf.stats()).toMatchObject({ batchesAccepted: 2, batchesDuplicate: 1 });
    await runDurableObjectAlarm(leaf);
    const shard = testEnv.METRICS_AGGREGATOR.get(testEnv.METRICS_AGGREGATOR.idFromName(shardName(0)));
    expect(await shard.read(name, "counter", {})).toMatchObject({ value: 7 });
  });
});

describe("TelemetryFlusher while young", () => {
  it("exports every youngIntervalMillis for its first youngForMillis, then every minIntervalMillis", async () => {
    const time = manualClock();
    const reader = new OnDemandMetricReader();
    const meter = new MeterProvider({ readers: [reader] }).getMeter("test");
    const startedAt: number[] = [];
    const flusher = new TelemetryFlusher({
      reader,
      spans: new BufferingSpanProcessor({ maxBufferedSpans: 10 }),
      minIntervalMillis: 1000,
      youngIntervalMillis: 200,
      youngForMillis: 1000,
      sendPoints: async () => void startedAt.push(time.now()),
      exportSpans: async () => true,
      clock: time.clock,
    });
    const counter = meter.createCounter("young_total");
    // A request every 50 ms for 3 s of the clock, each handing a flush to waitUntil.
    const calls: Promise<void>[] = [];
    for (let t = 0; t < 3000; t += 50) {
      counter.add(1);
      calls.push(flusher.flush(testEnv));
      await time.advance(50);
    }
    await time.advance(1000);
    await Promise.all(calls);
    expect(startedAt).toEqual([0, 200, 400, 600, 800, 1000, 2000, 3000]);
  });
});

describe("TelemetryFlusher and the request log lines held for it", () => {
  it("writes them when its export runs, not before, callers that joined included, whatever the transports do", async () => {
    const written: string[] = [];
    const spies = [vi.spyOn(console, "log").mockImplementation((line: unknown) => void written.push(String(line))), vi.spyOn(console, "warn").mockImplementation(() => {})];
    restore = () => spies.forEach((s) => s.mockRestore());
    const logs = new LogQueue();
    const { flusher, time } = setup({ logs, minIntervalMillis: 100, send: async () => Promise.reject(new Error("aggregator down")) });
    await flusher.flush(testEnv); // the first export runs at once
    logs.hold("info", '{"msg":"request","n":1}');
    const second = tracked(flusher.flush(testEnv)); // waits out the interval
    logs.hold("info", '{"msg":"request","n":2}');
    const joined = flusher.flush(testEnv); // joins the scheduled export
    await time.advance(99);
    expect(written).toEqual([]);
    expect(second.settled).toBe(false);
    await time.advance(1);
    await joined;
    expect(written).toEqual(['{"msg":"request","n":1}', '{"msg":"request","n":2}']);
    expect(logs.size).toBe(0);
  });

  it("writes them also where export is off (no collector endpoint)", async () => {
    const written: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => void written.push(String(line)));
    restore = () => spy.mockRestore();
    const logs = new LogQueue();
    const { flusher } = setup({ logs });
    logs.hold("info", '{"msg":"request"}');
    await flusher.flush({ ...testEnv, OTEL_EXPORTER_OTLP_ENDPOINT: "" });
    expect(written).toEqual(['{"msg":"request"}']);
  });
});

describe("TelemetryFlusher.schedule (per request)", () => {
  it("answers a promise only to the call that scheduled the export; joiners' data leaves in it", async () => {
    const { meter, sent, flusher, time } = setup({ minIntervalMillis: 100 });
    const counter = meter.createCounter("requests_total");
    await flusher.flush(testEnv); // an export just started: the next one waits out the interval
    counter.add(1);
    const scheduled = flusher.schedule(testEnv);
    expect(scheduled).toBeInstanceOf(Promise);
    for (let i = 0; i < 9; i++) {
      counter.add(1);
      expect(flusher.schedule(testEnv)).toBeUndefined();
    }
    await time.advance(100);
    await scheduled;
    expect(flusher.stats.exports).toBe(2);
    expect(total(sent, "requests_total")).toBe(10);
    // The next call after that export started schedules again.
    expect(flusher.schedule(testEnv)).toBeInstanceOf(Promise);
  });

  it("replaces a scheduled export whose timers never fire (its request context is gone): later calls are not held by it", async () => {
    const { meter, sent, flusher, time } = setup({ minIntervalMillis: 100 });
    const counter = meter.createCounter("requests_total");
    await flusher.flush(testEnv);
    counter.add(1);
    const stuck = tracked(flusher.schedule(testEnv)!);
    time.jump(60_000); // far past any export's longest wait, without its timer firing
    counter.add(1);
    const next = flusher.schedule(testEnv);
    expect(next).toBeInstanceOf(Promise); // not joined to the stuck one
    await time.advance(100); // fires both timers: the abandoned one does nothing
    await next;
    expect(stuck.settled).toBe(true);
    expect(flusher.stats.exports).toBe(2);
    expect(total(sent, "requests_total")).toBe(2);
  });
});
