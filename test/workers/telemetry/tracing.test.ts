/**
 * Tracing in the Workers runtime: the spans the real app exports (captured at the collector URL
 * as the gzipped OTLP/protobuf the transport sends, decoded into the OTLP/JSON shape), their
 * names, attributes and parenting, W3C trace context in and out, sampling, the JSON log lines
 * joined to them, and the API with the collector down.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono";
import { context, trace } from "@opentelemetry/api";
import { BasicTracerProvider, InMemorySpanExporter, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler } from "@opentelemetry/sdk-trace-base";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { app } from "../../../functions/app";
import { ingestTelemetry } from "../../../lib/mission/ingest";
import { spanBuffer } from "../../../lib/telemetry/tracer-provider";
import { requestTelemetry } from "../../../lib/telemetry/request-telemetry";
import { injectTraceContext, withSpan } from "../../../lib/telemetry/spans";
import { anomalousPoint, nominalPoint } from "../support/api";
import { captureCollector, otlpAttributes, type CapturedRequest } from "./support";

const testEnv = env as unknown as Env;
const ENDPOINT = testEnv.OTEL_EXPORTER_OTLP_ENDPOINT as string;
const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3 } as const;
const STATUS_ERROR = 2;

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: number;
  attributes: Record<string, string>;
  status: { code?: number; message?: string };
  events: Array<{ name: string; attributes: Record<string, string> }>;
  resource: Record<string, string>;
}

/** Every span in the captured trace exports (decoded into the OTLP/JSON shape, ./support.ts). */
function exportedSpans(requests: CapturedRequest[]): ExportedSpan[] {
  return requests
    .filter((r) => r.url === `${ENDPOINT}/v1/traces`)
    .flatMap((r) =>
      (r.body.resourceSpans ?? []).flatMap((rs: any) =>
        (rs.scopeSpans ?? []).flatMap((ss: any) =>
          (ss.spans ?? []).map((s: any) => ({
            traceId: s.traceId,
            spanId: s.spanId,
            parentSpanId: s.parentSpanId ?? "",
            traceState: s.traceState ?? "",
            name: s.name,
            kind: s.kind,
            attributes: otlpAttributes(s.attributes),
            status: s.status ?? {},
            events: (s.events ?? []).map((e: any) => ({ name: e.name, attributes: otlpAttributes(e.attributes) })),
            resource: otlpAttributes(rs.resource?.attributes),
          })),
        ),
      ),
    );
}

/** Bytes of the captured trace exports as compact OTLP/JSON (the wire carries gzipped protobuf, far smaller: see cost.test.ts). */
const traceBytes = (requests: CapturedRequest[]) =>
  requests.filter((r) => r.url === `${ENDPOINT}/v1/traces`).reduce((n, r) => n + new TextEncoder().encode(JSON.stringify(r.body)).length, 0);

/** Sends a request to the real app and waits for its `waitUntil` work (the flush) to finish. */
async function send(method: string, path: string, options: { body?: unknown; headers?: Record<string, string>; env?: Env } = {}) {
  const ctx = createExecutionContext();
  const headers: Record<string, string> = { "User-Agent": "tracing-test/1.0", ...options.headers };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const request = new Request(`http://astraguard.test${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const res = await app.fetch(request, options.env ?? testEnv, ctx);
  const body = (await res.json()) as any;
  await waitOnExecutionContext(ctx);
  return { status: res.status, body };
}

/** Captures the JSON log lines the worker writes (console.log/warn/error), parsed. */
function captureLogs() {
  const lines: any[] = [];
  const spies = (["log", "warn", "error"] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      try {
        lines.push(JSON.parse(String(args[0])));
      } catch {
        // not one of ours
      }
    }),
  );
  return { lines, restore: () => spies.forEach((s) => s.mockRestore()) };
}

const hex = (bytes: number) => [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");
/** Names of a span's ancestors in `spans`, nearest first. */
function ancestors(spans: ExportedSpan[], span: ExportedSpan): string[] {
  const names: string[] = [];
  for (let p = spans.find((s) => s.spanId === span.parentSpanId); p; p = spans.find((s) => s.spanId === p!.parentSpanId)) names.push(p.name);
  return names;
}
const byName = (spans: ExportedSpan[], name: string) => spans.filter((s) => s.name === name);
const one = (spans: ExportedSpan[], name: string) => {
  const found = byName(spans, name);
  expect(found, `spans named ${name}: ${spans.map((s) => s.name).join(", ")}`).toHaveLength(1);
  return found[0]!;
};

let restores: Array<() => void> = [];
beforeEach(() => {
  spanBuffer.drain();
});
afterEach(() => {
  for (const r of restores) r();
  restores = [];
});

function capture(respond?: () => number | "refuse") {
  const collector = captureCollector(ENDPOINT, respond);
  const logs = captureLogs();
  restores.push(collector.restore, logs.restore);
  return { collector, logs };
}

describe("requestTelemetry() spans on the real app", () => {
  it("continues an incoming traceparent: server span → anomaly_detection → model_inference, cache and database_query children, the object's span under its RPC", async () => {
    const { collector, logs } = capture();
    const traceId = hex(16);
    const parentId = hex(8);
    const res = await send("POST", "/api/v1/telemetry", {
      body: anomalousPoint({ satellite_id: "trace-1" }),
      headers: { traceparent: `00-${traceId}-${parentId}-01`, tracestate: "astra=t1" },
    });
    expect(res.status).toBe(200);
    expect(res.body.is_anomaly).toBe(true);

    const spans = exportedSpans(collector.requests).filter((s) => s.traceId === traceId);
    const server = one(spans, "POST /api/v1/telemetry");
    expect(server.kind).toBe(KIND.SERVER);
    expect(server.parentSpanId).toBe(parentId);
    expect(server.traceState).toBe("astra=t1");
    expect(server.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/api/v1/telemetry",
      "http.response.status_code": "200",
      "url.path": "/api/v1/telemetry",
      "url.scheme": "http",
      "server.address": "astraguard.test",
      "user_agent.original": "tracing-test/1.0",
      "cloud.provider": "cloudflare",
    });
    expect(server.status.code ?? 0).not.toBe(STATUS_ERROR);
    expect(server.resource).toMatchObject({ "service.name": "astraguard-edge", "service.version": testEnv.SERVICE_VERSION, "deployment.environment.name": testEnv.DEPLOYMENT_ENVIRONMENT });

    const detection = one(spans, "anomaly_detection");
    expect(detection.parentSpanId).toBe(server.spanId);
    expect(detection.attributes).toMatchObject({
      "astra.telemetry.points": "1",
      "astra.anomaly.count": "1",
      "astra.anomaly.severity": "CRITICAL",
      "astra.mission.phase": "NOMINAL_OPS",
      "astra.persisted": "true",
    });
    expect(Number(detection.attributes["astra.anomaly.score"])).toBeGreaterThanOrEqual(0.5);
    expect(detection.attributes["astra.anomaly.type"]).toBe(res.body.anomaly_type);

    const inference = one(spans, "model_inference");
    expect(inference.parentSpanId).toBe(detection.spanId);
    expect(inference.attributes).toMatchObject({ "astra.detector.points": "1", "astra.detector.anomalies": "1" });
    expect(inference.events).toEqual([{ name: "anomaly", attributes: expect.objectContaining({ "astra.satellite.id": "trace-1", "astra.anomaly.type": res.body.anomaly_type }) }]);

    const caches = byName(spans, "cache_operation");
    expect(caches.map((s) => s.attributes["astra.cache.store_type"]).sort()).toEqual(["history", "phase"]);
    for (const c of caches) {
      expect(c.parentSpanId).toBe(detection.spanId);
      // Cold caches (setup clears them); the phase is already known from the sync that taught this
      // new isolate the registry before it asked to admit the new satellite.
      expect(c.attributes["astra.cache.hit"]).toBe(c.attributes["astra.cache.store_type"] === "phase" ? "true" : "false");
    }

    // Isolate side: the registry (admit), the phase (sync), the satellite's history (context) and
    // its record; the satellite object's own call to the mission (absorb: the escalation) is under its span.
    const queries = byName(spans, "database_query");
    const objectOf = { admit: "MissionState", sync: "MissionState", context: "SatelliteState", record: "SatelliteState", absorb: "MissionState" } as Record<string, string>;
    expect(queries.map((q) => q.attributes["db.operation.name"]).sort()).toEqual(["absorb", "admit", "context", "record", "sync"]);
    for (const q of queries) {
      const op = String(q.attributes["db.operation.name"]);
      expect(q.kind).toBe(KIND.CLIENT);
      expect(q.attributes).toMatchObject({ "db.system.name": "cloudflare_durable_object", "db.collection.name": objectOf[op], "db.namespace": objectOf[op] === "MissionState" ? "mission" : "satellite:trace-1" });
      const chain = ancestors(spans, q);
      expect(chain.at(-1)).toBe(server.name);
      // Under anomaly_detection, through the reliability spans (circuit_breaker, retry_attempt) when
      // present; the satellite's own call to the mission under its SatelliteState.record span.
      if (op === "absorb") expect(chain[0]).toBe("SatelliteState.record");
      else expect(chain.slice(0, chain.indexOf("anomaly_detection")).every((n) => n === "circuit_breaker" || n === "retry_attempt")).toBe(true);
      // The object continued the trace: its span is a child of this RPC's span (traceparent went out as an RPC argument).
      const inObject = one(spans, `${objectOf[op]}.${op}`);
      expect(inObject.parentSpanId).toBe(q.spanId);
      expect(inObject.kind).toBe(KIND.SERVER);
      expect(inObject.attributes).toMatchObject({ "db.system.name": "sqlite" });
    }
    // Nothing else in the trace, and nothing orphaned.
    const known = new Set(["anomaly_detection", "model_inference", "cache_operation", "database_query", "circuit_breaker", "retry_attempt", "MissionState.admit", "MissionState.sync", "MissionState.absorb", "SatelliteState.context", "SatelliteState.record", server.name]);
    for (const s of spans) {
      expect(known.has(s.name), s.name).toBe(true);
      if (s !== server) expect(spans.some((p) => p.spanId === s.parentSpanId)).toBe(true);
    }

    // Logs: the request line and the anomaly line carry the same trace id.
    const ours = logs.lines.filter((l) => l.trace_id === traceId);
    const requestLine = ours.find((l) => l.msg === "request");
    expect(requestLine).toMatchObject({ level: "info", method: "POST", route: "/api/v1/telemetry", status: 200, span_id: server.spanId, user_agent: "tracing-test/1.0" });
    expect(typeof requestLine.duration_ms).toBe("number");
    expect(typeof requestLine.request_id).toBe("string");
    expect(ours.find((l) => l.msg === "anomaly_detected")).toMatchObject({ level: "warn", severity: "CRITICAL", satellite_id: "trace-1", span_id: detection.spanId });
  });

  it("keeps concurrent requests apart: each request's domain spans are under its own server span", async () => {
    const { collector } = capture();
    const traces = Array.from({ length: 8 }, () => hex(16));
    const results = await Promise.all(
      traces.map((t, i) => send("POST", "/api/v1/telemetry", { body: nominalPoint({ satellite_id: `conc-${i}` }), headers: { traceparent: `00-${t}-${hex(8)}-01` } })),
    );
    for (const r of results) expect(r.status).toBe(200);
    const spans = exportedSpans(collector.requests);
    for (const t of traces) {
      const mine = spans.filter((s) => s.traceId === t);
      const server = one(mine, "POST /api/v1/telemetry");
      expect(one(mine, "anomaly_detection").parentSpanId).toBe(server.spanId);
      for (const s of mine) if (s !== server) expect(ancestors(mine, s).at(-1), `${s.name} in ${t}`).toBe(server.name);
    }
  });

  it("starts a new root trace without traceparent, names by route pattern (never the raw path), keeps 4xx unset", async () => {
    const { collector } = capture();
    const res = await send("POST", `/api/v1/anomalies/an_${"0".repeat(32)}/feedback`, { body: { false_positive: true }, headers: { Authorization: `Bearer ${testEnv.OPERATOR_TOKEN}` } });
    expect(res.status).toBe(404);
    const server = one(exportedSpans(collector.requests), "POST /api/v1/anomalies/:id/feedback");
    expect(server.parentSpanId).toBe("");
    expect(server.attributes["http.route"]).toBe("/api/v1/anomalies/:id/feedback");
    expect(server.attributes["url.path"]).toBe(`/api/v1/anomalies/an_${"0".repeat(32)}/feedback`);
    expect(server.attributes["http.response.status_code"]).toBe("404");
    expect(server.status.code ?? 0).not.toBe(STATUS_ERROR);
    expect(server.attributes["error.type"]).toBeUndefined();
  });

  it("names an unmatched request by its method only, without http.route", async () => {
    const { collector } = capture();
    const res = await send("GET", "/no/such/thing");
    expect(res.status).toBe(404);
    const spans = exportedSpans(collector.requests);
    const server = one(spans, "GET");
    expect(server.attributes["http.route"]).toBeUndefined();
    expect(server.attributes["url.path"]).toBe("/no/such/thing");
  });

  it("marks 5xx as errors with error.type and the exception, on the server span and the failed RPC", async () => {
    const failing = {
      idFromName: (name: string) => env.MISSION_STATE.idFromName(name),
      get: () => new Proxy({}, { get: () => () => Promise.reject(new Error("storage down (injected)")) }),
    };
    const brokenEnv = { ...testEnv, MISSION_STATE: failing as unknown as Env["MISSION_STATE"] };
    const { collector, logs } = capture();
    const res = await send("GET", "/api/v1/phase", { env: brokenEnv });
    expect(res.status).toBe(503);
    const spans = exportedSpans(collector.requests);
    const server = one(spans, "GET /api/v1/phase");
    expect(server.status.code).toBe(STATUS_ERROR);
    expect(server.attributes["error.type"]).toBe("storage_unavailable");
    // The SDK names the exception by its `code` when it has one.
    expect(server.events.find((e) => e.name === "exception")?.attributes).toMatchObject({ "exception.type": "storage_unavailable" });
    const query = byName(spans, "database_query")[0]!;
    expect(ancestors(spans, query).at(-1)).toBe(server.name);
    expect(query.status.code).toBe(STATUS_ERROR);
    expect(query.events.find((e) => e.name === "exception")?.attributes["exception.message"]).toBe("storage down (injected)");
    const line = logs.lines.find((l) => l.msg === "request" && l.trace_id === server.traceId);
    expect(line).toMatchObject({ level: "error", status: 503, error_type: "storage_unavailable" });
  });

  it("a non-sampled incoming trace exports no spans, yet its log lines carry the trace id", async () => {
    const { collector, logs } = capture();
    const traceId = hex(16);
    const res = await send("POST", "/api/v1/telemetry", { body: nominalPoint(), headers: { traceparent: `00-${traceId}-${hex(8)}-00` } });
    expect(res.status).toBe(200);
    expect(exportedSpans(collector.requests).filter((s) => s.traceId === traceId)).toEqual([]);
    expect(spanBuffer.drain().filter((s) => s.spanContext().traceId === traceId)).toEqual([]);
    expect(logs.lines.find((l) => l.msg === "request" && l.trace_id === traceId)).toBeDefined();
  });

  it("never logs the Authorization header or bodies", async () => {
    const { logs } = capture();
    const secret = `sekrit-${hex(8)}`;
    await send("POST", "/api/v1/phase", { body: { phase: "SAFE_MODE", reason: `body-${secret}` }, headers: { Authorization: `Bearer ${secret}` } });
    const text = JSON.stringify(logs.lines);
    expect(logs.lines.some((l) => l.msg === "auth_failed" && l.outcome === "invalid_token")).toBe(true);
    expect(text).not.toContain(secret);
  });

  it("logs a phase change (from the object, in the caller's trace)", async () => {
    const { logs } = capture();
    const traceId = hex(16);
    const res = await send("POST", "/api/v1/phase", {
      body: { phase: "SAFE_MODE", force: true },
      headers: { Authorization: `Bearer ${testEnv.ADMIN_TOKEN}`, traceparent: `00-${traceId}-${hex(8)}-01` },
    });
    expect(res.status).toBe(200);
    expect(logs.lines.find((l) => l.msg === "phase_changed")).toMatchObject({ level: "warn", from_phase: "NOMINAL_OPS", to_phase: "SAFE_MODE", forced: true, trace_id: traceId });
  });
});

describe("with the collector down", () => {
  it("the API answers as before; spans wait in the bounded buffer", { timeout: 60_000 }, async () => {
    const { collector } = capture(() => "refuse");
    const anomaly = await send("POST", "/api/v1/telemetry", { body: anomalousPoint() });
    expect(anomaly.status).toBe(200);
    expect(anomaly.body).toMatchObject({ is_anomaly: true, severity_level: "CRITICAL", persisted: true });
    const phase = await send("GET", "/api/v1/phase");
    expect(phase.status).toBe(200);
    expect(phase.body.phase).toBe(anomaly.body.should_escalate_to_safe_mode ? "SAFE_MODE" : "NOMINAL_OPS");
    expect(collector.requests.filter((r) => r.url === `${ENDPOINT}/v1/traces`).length).toBeGreaterThan(0);
    expect(spanBuffer.size).toBeGreaterThan(0);
    expect(spanBuffer.size).toBeLessThanOrEqual(spanBuffer.maxBufferedSpans);
  });
});

describe("sampling", () => {
  function zeroRatioApp() {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(0) }),
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const a = new Hono<{ Bindings: Env }>()
      .use("*", requestTelemetry({ flush: async () => {}, tracer: provider.getTracer("test"), logRequests: false }))
      .post("/ingest", async (c) => c.json(await ingestTelemetry(c.env, [nominalPoint()])));
    return { a, exporter };
  }

  it("ratio 0: no spans at all, domain and object spans included (parent-based)", async () => {
    const { collector } = capture();
    const { a, exporter } = zeroRatioApp();
    const ctx = createExecutionContext();
    const res = await a.fetch(new Request("http://t.test/ingest", { method: "POST" }), testEnv, ctx);
    expect(res.status).toBe(200);
    await waitOnExecutionContext(ctx);
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(spanBuffer.drain()).toEqual([]);
    expect(exportedSpans(collector.requests)).toEqual([]);
  });

  it("ratio 0 still follows a sampled incoming parent", { timeout: 30_000 }, async () => {
    capture();
    const { a, exporter } = zeroRatioApp();
    const traceId = hex(16);
    const ctx = createExecutionContext();
    const res = await a.fetch(new Request("http://t.test/ingest", { method: "POST", headers: { traceparent: `00-${traceId}-${hex(8)}-01` } }), testEnv, ctx);
    expect(res.status).toBe(200);
    const [server] = exporter.getFinishedSpans();
    expect(server?.name).toBe("POST /ingest");
    expect(server?.spanContext().traceId).toBe(traceId);
    const domain = spanBuffer.drain().filter((s) => s.spanContext().traceId === traceId);
    expect(domain.map((s) => s.name)).toContain("anomaly_detection");
    await waitOnExecutionContext(ctx);
  });
});

describe("outbound trace context", () => {
  it("injectTraceContext gives the active span as W3C headers, and {} with none", () => {
    expect(injectTraceContext()).toEqual({});
    withSpan("x", {}, (span) => {
      const { traceId, spanId } = span.spanContext();
      expect(injectTraceContext()).toEqual({ traceparent: `00-${traceId}-${spanId}-01` });
      expect(trace.getSpan(context.active())).toBe(span);
    });
    spanBuffer.drain();
  });

  it("withSpan records a throw and passes it on unchanged; async rejections too", async () => {
    const boom = new RangeError("nope");
    expect(() => withSpan("sync", {}, () => { throw boom; })).toThrow(boom);
    await expect(withSpan("async", {}, async () => { throw boom; })).rejects.toBe(boom);
    const spans = spanBuffer.drain();
    for (const s of spans) {
      expect(s.status.code).toBe(STATUS_ERROR);
      expect(s.attributes["error.type"]).toBe("RangeError");
      expect(s.events[0]?.name).toBe("exception");
    }
    expect(spans.map((s) => s.name).sort()).toEqual(["async", "sync"]);
  });

  it("a leaf span is the active span's child, leaves the active context alone, drops undefined attributes, records a throw", () => {
    const boom = new TypeError("bad");
    withSpan("parent", {}, (parent) => {
      const inner = withSpan("leaf", { a: "x", b: undefined }, (leaf) => {
        expect(leaf).not.toBe(parent);
        expect(trace.getSpan(context.active())).toBe(parent); // no context switch
        return leaf.spanContext().spanId;
      }, { leaf: true });
      expect(() => withSpan("leaf-throws", {}, () => { throw boom; }, { leaf: true })).toThrow(boom);
      const spans = spanBuffer.drain();
      const leaf = spans.find((s) => s.name === "leaf")!;
      expect(leaf.spanContext().spanId).toBe(inner);
      expect(leaf.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(leaf.attributes).toEqual({ a: "x" });
      const failed = spans.find((s) => s.name === "leaf-throws")!;
      expect(failed.status.code).toBe(STATUS_ERROR);
      expect(failed.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    });
    spanBuffer.drain();
  });

  it("an unhandled error: 500, exception recorded with its class, ERROR status", async () => {
    const a = new Hono()
      .use("*", requestTelemetry({ flush: async () => {}, logRequests: false }))
      .get("/boom", () => {
        throw new TypeError("kaput");
      })
      .onError((_e, c) => c.json({ error: "internal" }, 500));
    const res = await a.request("/boom");
    expect(res.status).toBe(500);
    const [server] = spanBuffer.drain();
    expect(server?.name).toBe("GET /boom");
    expect(server?.status.code).toBe(STATUS_ERROR);
    expect(server?.attributes["error.type"]).toBe("TypeError");
    expect(server?.events.map((e) => [e.name, e.attributes?.["exception.type"]])).toEqual([["exception", "TypeError"]]);
  });
});

describe("cost", () => {
  it("spans and OTLP bytes per request stay constant with the batch size", { timeout: 120_000 }, async () => {
    const rows: Array<{ request: string; spans: number; lookups: number; withoutLookups: number; bytes: number }> = [];
    // Values that move slowly on a sunlit bus (nothing for any detector: no anomaly, so no escalation and its extra call to the mission).
    let k = 0;
    // One point every 5 s of a clock that starts 2 h ago, every value moving slowly.
    const start = Date.now() - 2 * 3600_000;
    const reading = (satellite_id: string) =>
      nominalPoint({ satellite_id, timestamp: new Date(start + 5000 * ++k).toISOString(), voltage: 28.3 + 0.0001 * k, temperature: 20 + 0.001 * k, gyro: 0.02 + 0.00001 * k, current: 1 + 0.0001 * k, wheel_speed: 3000 + 0.01 * k });
    const batch = (size: number) => ({ telemetry: Array.from({ length: size }, (_, i) => reading(`m-${i % 4}`)) });
    // Steady state: isolate caches warm (a cold request adds one context RPC, 4 spans), nothing left in the buffer.
    const warm = () => send("POST", "/api/v1/telemetry/batch", { body: batch(4) });
    const measure = async (label: string, n: number, make: () => Promise<unknown>, concurrent = false) => {
      const { collector } = capture();
      await warm();
      await send("GET", "/api/v1/phase");
      spanBuffer.drain();
      collector.requests.splice(0);
      if (concurrent) await Promise.all(Array.from({ length: n }, make));
      else for (let i = 0; i < n; i++) await make();
      const exports = collector.requests.filter((r) => r.url === `${ENDPOINT}/v1/traces`).length;
      const spans = exportedSpans(collector.requests);
      // A request whose isolate cache had expired (TTL 2 s) adds a lookup (a satellite's context or the
      // mission sync): retry_attempt, circuit_breaker, database_query, <Object>.<op>.
      const found = [...byName(spans, "SatelliteState.context"), ...byName(spans, "MissionState.sync")];
      // Each lookup's spans: the object's, and the client-side ones above it up to anomaly_detection.
      const inLookups = new Set<string>();
      for (let span of found) {
        while (span && span.name !== "anomaly_detection") {
          inLookups.add(span.spanId);
          span = spans.find((p) => p.spanId === span!.parentSpanId)!;
        }
      }
      const lookups = found.length;
      rows.push({ request: `${label} ×${n}, ${exports} exports`, spans: spans.length / n, lookups, withoutLookups: (spans.length - inLookups.size) / n, bytes: Math.round(traceBytes(collector.requests) / n) });
      for (const r of restores.splice(0)) r();
    };
    const point = reading;
    await measure("POST /api/v1/telemetry (1 point)", 3, () => send("POST", "/api/v1/telemetry", { body: point("m-0") }));
    await measure("POST /api/v1/telemetry/batch (10)", 3, () => send("POST", "/api/v1/telemetry/batch", { body: batch(10) }));
    await measure("POST /api/v1/telemetry/batch (100)", 3, () => send("POST", "/api/v1/telemetry/batch", { body: batch(100) }));
    await measure("GET /api/v1/phase", 3, () => send("GET", "/api/v1/phase"));
    await measure("GET /health", 3, () => send("GET", "/health"));
    // Coalesced, as under load: concurrent requests share one export (one resource and scope header).
    await measure("POST /api/v1/telemetry (1 point) concurrent", 20, () => send("POST", "/api/v1/telemetry", { body: point("m-1") }), true);
    console.info(`tracing cost per request:\n${rows.map((r) => `  ${r.request}: ${r.spans} spans (${r.lookups} context lookups), ${r.bytes} B as OTLP/JSON`).join("\n")}`);
    const [single, ten, hundred, phase, health, concurrent] = rows;
    // server, anomaly_detection, 2 cache_operation, model_inference, then per satellite object in the
    // request: circuit_breaker, database_query, SatelliteState.record (batches here span 4 satellites).
    for (const row of [single, concurrent]) expect(row!.withoutLookups, row!.request).toBe(8);
    for (const row of [ten, hundred]) expect(row!.withoutLookups, row!.request).toBe(5 + 3 * 4);
    expect(concurrent!.bytes / concurrent!.spans).toBeLessThan(single!.bytes / single!.spans);
    // server, database_query, MissionState.<op>, plus the reliability spans around the RPC.
    expect(phase!.spans).toBeGreaterThanOrEqual(3);
    expect(health!.spans).toBeGreaterThanOrEqual(3);
    // Bytes do not grow with the points (only with the satellites in the request): ≤ 1 KB a span and ≤ MAX_ANOMALY_EVENTS "anomaly" events.
    expect(hundred!.bytes / hundred!.spans).toBeLessThan((1.25 * ten!.bytes) / ten!.spans);
  });
});
