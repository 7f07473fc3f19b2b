import { context, trace } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { adoptSpans, continueTrace } from "../../../lib/telemetry/object-spans";
import { activeRequestId } from "../../../lib/telemetry/logger";
import { injectTraceContext, withSpan, type TraceCarrier } from "../../../lib/telemetry/spans";
import { spanBuffer } from "../../../lib/telemetry/tracer-provider";

describe("spans across a Durable Object call", () => {
  it("hands back the object's span and every span made inside it; none waits in the object isolate's buffer", async () => {
    spanBuffer.drain();
    let carrier: TraceCarrier | undefined;
    const caller = withSpan("caller", {}, (span) => {
      carrier = injectTraceContext();
      return span.spanContext();
    });
    spanBuffer.drain(); // the caller's own span: not what this test is about
    const answer = await continueTrace(carrier, "MissionState.record", { "db.operation.name": "record" }, async () =>
      withSpan("inner", { "astra.points": 3 }, () => withSpan("innermost", {}, () => 42)),
    );
    expect(answer.result).toBe(42);
    expect(spanBuffer.drain().map((s) => s.name)).toEqual([]); // nothing left behind in this isolate
    const byName = new Map(answer.spans.map((s) => [s.name, s]));
    expect([...byName.keys()].sort()).toEqual(["MissionState.record", "inner", "innermost"]);
    const root = byName.get("MissionState.record")!;
    expect(root.traceId).toBe(caller.traceId);
    expect(root.parentSpanId).toBe(caller.spanId);
    expect(byName.get("inner")!.parentSpanId).toBe(root.spanId);
    expect(byName.get("innermost")!.parentSpanId).toBe(byName.get("inner")!.spanId);
    // The caller adopts them: they leave in its flush, in its trace.
    adoptSpans(answer.spans);
    expect(spanBuffer.drain().map((s) => s.name).sort()).toEqual(["MissionState.record", "inner", "innermost"]);
  });

  it("runs untraced without a valid traceparent, and leaves no span anywhere", async () => {
    spanBuffer.drain();
    const answer = await continueTrace(undefined, "MissionState.stats", {}, () => withSpan("inner", {}, () => "ok"));
    expect(answer).toEqual({ result: "ok", spans: [] });
    expect(spanBuffer.drain().map((s) => s.name)).toEqual([]);
  });

  it("makes no span for a caller that was sampled out, and runs the method under the caller's trace and request id", async () => {
    spanBuffer.drain();
    const carrier = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", request_id: "req-unsampled" };
    const answer = await continueTrace(carrier, "SatelliteState.record", { "db.operation.name": "record" }, () =>
      withSpan("inner", {}, () => ({ traceId: trace.getSpanContext(context.active())?.traceId, requestId: activeRequestId() })),
    );
    expect(answer).toEqual({ result: { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", requestId: "req-unsampled" }, spans: [] });
    expect(spanBuffer.drain()).toEqual([]);
  });
});
