/**
 * The cheap paths of issue 15, checked for what they must keep: the span buffer's O(1) counted
 * drops (and their metric and single warning per export), the gzipped OTLP span transport, the
 * request log line built as one string (the same text as log()), the JSON response size taken
 * without rebuilding the response, bound attribute sets, and no child spans under an unsampled
 * request.
 */
import { env } from "cloudflare:test";
import { context, trace, TraceFlags } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { TelemetryFlusher } from "../../../lib/telemetry/export/flush";
import { createOtlpSpanSender, encodeSpans, gzipBytes } from "../../../lib/telemetry/export/otlp-spans";
import { toMetricPoints } from "../../../lib/telemetry/export/points";
import { endpointAttributes, MAX_BOUND_SETS, requestAttributes } from "../../../lib/telemetry/bound-attributes";
import { measureJson, utf8Length } from "../../../lib/telemetry/json-size";
import { log, logRequest } from "../../../lib/telemetry/logger";
import { metricReader, OnDemandMetricReader } from "../../../lib/telemetry/meter-provider";
import { withSpan } from "../../../lib/telemetry/spans";
import { BufferingSpanProcessor, spanBuffer } from "../../../lib/telemetry/tracer-provider";
import { decodeOtlpTraces, otlpAttributes } from "./support";

const testEnv = env as unknown as Env;

const spansOf = (n: number): ReadableSpan[] => {
  const exporter = new InMemorySpanExporter();
  const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer("cost-test");
  for (let i = 0; i < n; i++) tracer.startSpan(`span-${i}`, { attributes: { "astra.i": i, "url.path": "/api/v1/telemetry" } }).end();
  return exporter.getFinishedSpans();
};

let restores: Array<() => void> = [];
afterEach(() => {
  for (const r of restores.splice(0)) r();
  spanBuffer.drain();
});

describe("span buffer at saturation", () => {
  it("drops the NEW span when full, counts it, and keeps the buffered ones untouched", () => {
    const buffer = new BufferingSpanProcessor({ maxBufferedSpans: 4 });
    const spans = spansOf(10);
    for (const s of spans) buffer.onEnd(s);
    expect(buffer.size).toBe(4);
    expect(buffer.droppedSpans).toBe(6);
    expect(buffer.drain().map((s) => s.name)).toEqual(["span-0", "span-1", "span-2", "span-3"]);
  });

  it("requeues failed spans in front, within the bound, counting what does not fit", () => {
    const buffer = new BufferingSpanProcessor({ maxBufferedSpans: 5 });
    const [a, b, c, d, e, f] = spansOf(6);
    buffer.onEnd(e!);
    buffer.onEnd(f!);
    buffer.requeue([a!, b!, c!, d!]);
    expect(buffer.drain().map((s) => s.name)).toEqual(["span-0", "span-1", "span-2", "span-4", "span-5"]);
    expect(buffer.droppedSpans).toBe(1);
  });

  it("turns the drops into astra_telemetry_spans_dropped_total and ONE warning per export", async () => {
    const warnings: string[] = [];
    const spy = vi.spyOn(console, "warn").mockImplementation((...args: unknown[]) => void warnings.push(String(args[0])));
    restores.push(() => spy.mockRestore());
    await metricReader.collect(); // start from an empty delta
    const buffer = new BufferingSpanProcessor({ maxBufferedSpans: 2 });
    const reader = new OnDemandMetricReader();
    new MeterProvider({ readers: [reader] });
    const flusher = new TelemetryFlusher({ reader, spans: buffer, minIntervalMillis: 0, sendPoints: async () => {}, exportSpans: async () => true });
    for (const s of spansOf(50)) buffer.onEnd(s);
    await flusher.flush(testEnv);
    expect(warnings.filter((w) => w.includes("span buffer full"))).toEqual(["telemetry: span buffer full, 48 span(s) dropped since the last export"]);
    const points = toMetricPoints((await metricReader.collect()).resourceMetrics);
    expect(points.find((p) => p.name === "astra_telemetry_spans_dropped_total")?.value).toBe(48);
    await flusher.flush(testEnv); // nothing dropped since: no second warning
    expect(warnings.filter((w) => w.includes("span buffer full"))).toHaveLength(1);
  });
});

describe("OTLP span transport", () => {
  it("posts one gzipped OTLP/JSON body with its content type, encoding and bearer token", async () => {
    const seen: Array<{ url: string; headers: Headers; body: Uint8Array }> = [];
    const send = createOtlpSpanSender({
      protocol: "http/json",
      fetch: async (input, init) => {
        const request = new Request(input as RequestInfo, init);
        seen.push({ url: request.url, headers: request.headers, body: new Uint8Array(await request.arrayBuffer()) });
        return new Response("{}", { status: 200 });
      },
    });
    const spans = spansOf(40);
    expect(await send({ endpoint: "http://collector.test:4318/", token: "t0ken" }, spans)).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.url).toBe("http://collector.test:4318/v1/traces");
    expect(seen[0]!.headers.get("content-encoding")).toBe("gzip");
    expect(seen[0]!.headers.get("content-type")).toBe("application/json");
    expect(seen[0]!.headers.get("authorization")).toBe("Bearer t0ken");
    const json = await new Response(new Blob([seen[0]!.body]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
    expect(json).toBe(new TextDecoder().decode(encodeSpans(spans, "http/json")));
    const names = JSON.parse(json).resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => s.name)));
    expect(names).toHaveLength(40);
    // Repetitive OTLP/JSON compresses several times (these spans' random ids compress least; the
    // ingest path's real spans shrink to ~6 %, measured by the bench's counting proxy).
    expect(seen[0]!.body.byteLength).toBeLessThan(encodeSpans(spans, "http/json").byteLength / 5);
  });

  it("sends OTLP/protobuf by default: the same spans as the JSON encoding, smaller, and gzip round-trips", async () => {
    const spans = spansOf(20);
    const proto = encodeSpans(spans);
    const json = JSON.parse(new TextDecoder().decode(encodeSpans(spans, "http/json")));
    expect(proto.byteLength).toBeLessThan(encodeSpans(spans, "http/json").byteLength);
    const zipped = await gzipBytes(proto);
    const back = new Uint8Array(await new Response(new Blob([zipped]).stream().pipeThrough(new DecompressionStream("gzip"))).arrayBuffer());
    expect(back).toEqual(proto);
    const pick = (body: any) =>
      body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => ({ name: s.name, traceId: s.traceId, spanId: s.spanId, attributes: otlpAttributes(s.attributes) }))));
    expect(pick(decodeOtlpTraces(proto))).toEqual(pick(json));
    let contentType: string | null = null;
    const send = createOtlpSpanSender({ fetch: async (_input, init) => ((contentType = new Headers(init?.headers).get("content-type")), new Response("", { status: 200 })) });
    expect(await send({ endpoint: "http://c.test" }, spans)).toBe(true);
    expect(contentType).toBe("application/x-protobuf");
  });

  it("answers false, never throws, on a refused export or a network error", async () => {
    const refused = createOtlpSpanSender({ fetch: async () => new Response("no", { status: 503 }) });
    const broken = createOtlpSpanSender({ fetch: async () => Promise.reject(new TypeError("Network connection lost.")) });
    expect(await refused({ endpoint: "http://c.test" }, spansOf(1))).toBe(false);
    expect(await broken({ endpoint: "http://c.test" }, spansOf(1))).toBe(false);
  });
});

describe("the request log line", () => {
  const capture = () => {
    const lines: string[] = [];
    const spies = (["log", "warn", "error"] as const).map((m) => vi.spyOn(console, m).mockImplementation((text: unknown) => void lines.push(String(text))));
    restores.push(() => spies.forEach((s) => s.mockRestore()));
    return lines;
  };

  it("is the same JSON text log() writes for the same fields, trace ids and error fields included", () => {
    const lines = capture();
    vi.useFakeTimers({ now: new Date("2026-12-01T10:00:00.000Z"), toFake: ["Date"] });
    restores.push(() => vi.useRealTimers());
    const fields = { method: "POST", route: "unmatched", path: '/a"b\\c', status: 503, duration_ms: 1.25, request_id: "req-1", user_agent: "x".repeat(400), error_type: "storage_unavailable", error_message: "down" };
    withSpan("work", {}, (span) => {
      logRequest("error", fields, span);
      log("error", "request", fields, span);
    });
    logRequest("info", { method: "GET", route: "/health", status: 200, duration_ms: Number.NaN });
    log("info", "request", { method: "GET", route: "/health", status: 200, duration_ms: Number.NaN });
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe(lines[1]);
    expect(lines[2]).toBe(lines[3]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ msg: "request", path: '/a"b\\c', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/), user_agent: expect.stringMatching(/^x{255}…$/) });
  });
});

describe("sizes and attribute sets", () => {
  it("measures UTF-8 bytes of ASCII and non-ASCII JSON alike", () => {
    for (const text of ['{"a":1}', '{"name":"Ωmega ☄ 🛰"}', ""]) expect(utf8Length(text)).toBe(new TextEncoder().encode(text).byteLength);
  });

  it("c.json under measureJson answers exactly what Hono's does, and remembers the body's size", async () => {
    const sizes: Array<number | undefined> = [];
    const measured = new Hono();
    measured.use("*", async (c, next) => {
      const bytes = measureJson(c);
      await next();
      sizes.push(bytes());
    });
    const plain = new Hono();
    for (const a of [measured, plain]) a.get("/x", (c) => c.json({ ok: "☄", n: 1 }, 201, { "X-Extra": "1" }));
    const [m, p] = await Promise.all([measured.request("/x"), plain.request("/x")]);
    expect(m.status).toBe(p.status);
    expect([...m.headers]).toEqual([...p.headers]);
    const body = await m.text();
    expect(body).toBe(await p.text());
    expect(sizes).toEqual([new TextEncoder().encode(body).byteLength]);
  });

  it("reuses one attribute object per label set, within a bound", () => {
    expect(endpointAttributes("/api/v1/telemetry")).toBe(endpointAttributes("/api/v1/telemetry"));
    expect(requestAttributes("POST", "/api/v1/telemetry", 200)).toEqual({ method: "POST", endpoint: "/api/v1/telemetry", status: "200" });
    expect(requestAttributes("POST", "/api/v1/telemetry", 200)).toBe(requestAttributes("POST", "/api/v1/telemetry", 200));
    for (let i = 0; i < MAX_BOUND_SETS + 10; i++) requestAttributes(`M${i}`, "/x", 200);
    const late = `M${MAX_BOUND_SETS + 5}`;
    expect(requestAttributes(late, "/x", 200)).toEqual({ method: late, endpoint: "/x", status: "200" });
    expect(requestAttributes(late, "/x", 200)).not.toBe(requestAttributes(late, "/x", 200));
  });
});

describe("unsampled requests", () => {
  it("make no child span: withSpan runs under the unsampled span itself, in the same context", () => {
    const unsampled = trace.wrapSpanContext({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.NONE });
    const parent = trace.setSpan(context.active(), unsampled);
    const seen = context.with(parent, () =>
      withSpan("anomaly_detection", { "astra.telemetry.points": 1 }, (span) => ({ span, active: context.active() })),
    );
    expect(seen.span).toBe(unsampled);
    expect(seen.active).toBe(parent);
    expect(spanBuffer.size).toBe(0);
  });

  it("a sampled parent still gets its child span", () => {
    const sampled = trace.wrapSpanContext({ traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED });
    const child = context.with(trace.setSpan(context.active(), sampled), () => withSpan("anomaly_detection", {}, (span) => span.spanContext()));
    expect(child.traceId).toBe("4bf92f3577b34da6a3ce929d0e0e4736");
    expect(child.spanId).not.toBe("00f067aa0ba902b7");
    expect(spanBuffer.size).toBe(1);
  });
});
