/**
 * The proposed hook for lib/telemetry/flush.ts: the flusher's transports wrapped by
 * guardTransport. With the collector refusing spans, its breaker opens after 3 failures and later
 * flushes stop calling it (spans stay buffered, bounded), while metric batches still go out.
 */
import { env } from "cloudflare:test";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { freezeChaosClock } from "./support";
import { breaker } from "../../../lib/reliability/breakers";
import { guardTransport } from "../../../lib/reliability/guard";
import { TelemetryFlusher } from "../../../lib/telemetry/export/flush";
import { OnDemandMetricReader } from "../../../lib/telemetry/meter-provider";
import { BufferingSpanProcessor } from "../../../lib/telemetry/tracer-provider";

/**
 * Date stands still (faked; the breakers, the retries, guardDependency and ChaosControl all read
 * Date.now) from a minute in the past, and the chaos view's timers never fire: no breaker
 * cool-down or slow-call limit, no retry budget and no ChaosControl timeout depends on how fast
 * the machine is.
 */
freezeChaosClock();

describe("TelemetryFlusher with guarded transports", () => {
  it("stops calling a refusing collector once its breaker is open, and keeps sending metrics", async () => {
    const reader = new OnDemandMetricReader();
    const counter = new MeterProvider({ readers: [reader] }).getMeter("hook-test").createCounter("hook_test_total");
    const spans = new BufferingSpanProcessor({ maxBufferedSpans: 100 });
    const tracer = new BasicTracerProvider({ spanProcessors: [spans] }).getTracer("hook-test");
    let spanCalls = 0;
    let batches = 0;
    const flusher = new TelemetryFlusher({
      reader,
      spans,
      minIntervalMillis: 0,
      // Its timeouts never fire either (and with no interval it never waits).
      clock: { now: () => Date.now(), setTimeout: () => 0, clearTimeout: () => {} },
      exportSpans: guardTransport("collector", async () => {
        spanCalls++;
        return false; // the collector refuses (e.g. down, or 401)
      }),
      sendPoints: guardTransport("metrics_aggregator", async () => {
        batches++;
      }),
    });
    for (let i = 0; i < 6; i++) {
      tracer.startSpan(`op-${i}`).end();
      counter.add(1);
      await flusher.flush(env);
    }
    expect(breaker("collector").state).toBe("OPEN");
    expect(spanCalls).toBe(3); // the 4th to 6th flushes failed fast, without a call
    expect(flusher.stats.spanExportFailures).toBe(6);
    expect(spans.size).toBe(6); // kept for later, within the buffer's bound
    expect(batches).toBe(6); // metrics unaffected
    expect(breaker("metrics_aggregator").state).toBe("CLOSED");
  });
});
