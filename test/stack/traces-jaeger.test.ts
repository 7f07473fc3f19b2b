/**
 * One trace end to end: a request with a known W3C traceparent goes to the built Worker (Miniflare,
 * the bundle `wrangler deploy --dry-run` makes; two isolates, the Durable Objects in the other one), whose flush exports its spans as OTLP/HTTP to the
 * real collector (bearer token), which sends them to the real Jaeger. The trace is read back by
 * Jaeger's HTTP API (/api/traces/{traceId}): the server span under the caller's span, the domain
 * spans under it, parented correctly, service `astraguard-edge` with its resource attributes; and
 * the Worker's JSON log lines carry the same trace id.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildBundle, startIsolates, type Bundle, type Isolates } from "../support/miniflare-isolates";
import { startStack, stopAll, waitFor, type JaegerSpan, type JaegerTrace, type Stack } from "../support/stack";

const TOKEN = `traces-test-${randomBytes(8).toString("hex")}`;
const ENVIRONMENT = `stack-test-${randomBytes(3).toString("hex")}`;

let stack: Stack;
let bundle: Bundle;
let edge: Isolates;

beforeAll(async () => {
  [stack, bundle] = await Promise.all([startStack({ token: TOKEN }), buildBundle()]);
  edge = await startIsolates({
    bundle,
    // Two isolates; the Durable Objects live in the first, requests go to the second: the object's
    // span crosses isolates and must still leave with the caller's flush (the first never flushes).
    count: 2,
    bindings: {
      OTEL_EXPORTER_OTLP_ENDPOINT: stack.collector.urls.otlpHttp,
      OTEL_EXPORTER_OTLP_TOKEN: TOKEN,
      OTEL_TRACES_SAMPLER_ARG: "1",
      DEPLOYMENT_ENVIRONMENT: ENVIRONMENT,
    },
  });
}, 20 * 60_000);

afterAll(async () => {
  await edge?.dispose();
  await bundle?.dispose();
  await stopAll();
}, 60_000);

const hex = (bytes: number) => randomBytes(bytes).toString("hex");

/** The trace by id from Jaeger's HTTP API; undefined while Jaeger does not have it (yet). */
async function jaegerTrace(traceId: string): Promise<JaegerTrace | undefined> {
  const res = await fetch(`${stack.jaeger.url}/api/traces/${traceId}`, { signal: AbortSignal.timeout(5_000) });
  if (res.status === 404) return undefined;
  const body = (await res.json()) as { data?: JaegerTrace[] | null };
  return body.data?.[0];
}

const tag = (tags: Array<{ key: string; value: unknown }>, key: string) => tags.find((t) => t.key === key)?.value;
const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === "CHILD_OF")?.spanID;

/** The worker's JSON log lines (Miniflare's captured console output), parsed. */
function logLines(): any[] {
  return edge
    .logs()
    .split("\n")
    .map((line) => line.slice(line.indexOf("{")))
    .flatMap((json) => {
      try {
        return [JSON.parse(json)];
      } catch {
        return [];
      }
    });
}

describe("a request with a known traceparent", () => {
  test("reaches Jaeger as one trace: server span under the caller, domain spans under it, resource attributes; logs carry its trace id", async () => {
    const traceId = hex(16);
    const callerSpanId = hex(8);
    const unsampledTraceId = hex(16);
    const point = { satellite_id: "jaeger-1", voltage: 2, temperature: 140, gyro: 0.1 };
    const requestId = `jaeger-req-${hex(4)}`;
    const post = (traceparent: string, reading: Record<string, unknown> = point) =>
      edge.fetch(1, "/api/v1/telemetry", {
        method: "POST",
        headers: { "Content-Type": "application/json", "User-Agent": "traces-jaeger-test", traceparent, tracestate: "astra=stack", "X-Request-Id": requestId },
        body: JSON.stringify(reading),
      });
    // A non-sampled one first: it must never show up, although it is flushed no later than the sampled one.
    // (A nominal reading: the sampled request's CRITICAL one is then the one that escalates to SAFE_MODE.)
    const skipped = await post(`00-${unsampledTraceId}-${hex(8)}-00`, { satellite_id: "jaeger-0", voltage: 28, temperature: 20, gyro: 0.1 });
    expect(skipped.status).toBe(200);
    await skipped.arrayBuffer();
    const res = await post(`00-${traceId}-${callerSpanId}-01`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { is_anomaly: boolean; severity_level: string; anomaly_type: string };
    expect(body.is_anomaly).toBe(true);

    const trace = await waitFor(
      async () => {
        const t = await jaegerTrace(traceId);
        // The whole request: server, anomaly_detection, model_inference, cache and storage spans.
        return t && t.spans.some((s) => s.operationName === "SatelliteState.record") && t.spans.some((s) => s.operationName.startsWith("POST ")) ? t : undefined;
      },
      { timeoutMillis: 60_000, intervalMillis: 500, description: `trace ${traceId} in Jaeger (worker log:\n${edge.logs().slice(-1500)}\ncollector log:\n${stack.collector.logs().slice(-1500)})` },
    );

    const spans = trace.spans;
    const named = (name: string) => spans.filter((s) => s.operationName === name);
    const only = (name: string) => {
      const found = named(name);
      expect(found, `${name} in ${spans.map((s) => s.operationName).join(", ")}`).toHaveLength(1);
      return found[0]!;
    };
    const byId = new Map(spans.map((s) => [s.spanID, s]));
    const ancestors = (s: JaegerSpan) => {
      const names: string[] = [];
      for (let p = byId.get(parentOf(s) ?? ""); p; p = byId.get(parentOf(p) ?? "")) names.push(p.operationName);
      return names;
    };

    for (const s of spans) expect(s.traceID).toBe(traceId);
    const server = only("POST /api/v1/telemetry");
    expect(parentOf(server)).toBe(callerSpanId);
    expect(tag(server.tags, "span.kind")).toBe("server");
    expect(tag(server.tags, "http.request.method")).toBe("POST");
    expect(tag(server.tags, "http.route")).toBe("/api/v1/telemetry");
    expect(Number(tag(server.tags, "http.response.status_code"))).toBe(200);
    expect(tag(server.tags, "url.path")).toBe("/api/v1/telemetry");
    expect(tag(server.tags, "user_agent.original")).toBe("traces-jaeger-test");
    expect(tag(server.tags, "cloud.provider")).toBe("cloudflare");
    expect(tag(server.tags, "cloud.region")).toMatch(/^[A-Z]{3}$/); // request.cf.colo (Miniflare's fixture)
    expect(tag(server.tags, "w3c.tracestate")).toBe("astra=stack");

    const process = trace.processes[server.processID]!;
    expect(process.serviceName).toBe("astraguard-edge");
    expect(tag(process.tags, "deployment.environment.name")).toBe(ENVIRONMENT);
    expect(tag(process.tags, "service.version")).toBeTruthy();

    const detection = only("anomaly_detection");
    expect(parentOf(detection)).toBe(server.spanID);
    expect(tag(detection.tags, "astra.anomaly.severity")).toBe(body.severity_level);
    expect(tag(detection.tags, "astra.anomaly.type")).toBe(body.anomaly_type);
    expect(parentOf(only("model_inference"))).toBe(detection.spanID);
    for (const c of named("cache_operation")) expect(parentOf(c)).toBe(detection.spanID);
    const queries = named("database_query");
    expect(queries.length).toBeGreaterThanOrEqual(1);
    for (const q of queries) {
      expect(tag(q.tags, "span.kind")).toBe("client");
      expect(tag(q.tags, "db.system.name")).toBe("cloudflare_durable_object");
      expect(ancestors(q)).toContain("anomaly_detection");
      expect(ancestors(q).at(-1)).toBe(server.operationName);
    }
    const record = only("SatelliteState.record");
    expect(byId.get(parentOf(record) ?? "")?.operationName).toBe("database_query");
    expect(tag(byId.get(parentOf(record)!)!.tags, "db.operation.name")).toBe("record");
    // Every span hangs off the server span (no orphans in the trace).
    for (const s of spans) if (s !== server) expect(ancestors(s).at(-1), s.operationName).toBe(server.operationName);

    // Logs: the request line (server span) and the anomaly line (anomaly_detection span).
    const lines = await waitFor(() => {
      const l = logLines().filter((x) => x.trace_id === traceId);
      return l.some((x) => x.msg === "request") ? l : undefined;
    });
    expect(lines.find((l) => l.msg === "request")).toMatchObject({ span_id: server.spanID, route: "/api/v1/telemetry", status: 200, method: "POST" });
    expect(lines.find((l) => l.msg === "anomaly_detected")).toMatchObject({ span_id: detection.spanID, severity: body.severity_level });
    // One id from the log line to the trace: every line of the request, the mission object's own
    // (phase_changed, under its absorb span of this very trace in Jaeger) included, names the request.
    const ours = lines.filter((l) => l.request_id === requestId);
    expect(ours.length).toBe(lines.filter((l) => l.span_id !== undefined && spans.some((s) => s.spanID === l.span_id)).length);
    const inObject = ours.find((l) => l.msg === "phase_changed");
    expect(inObject).toMatchObject({ trace_id: traceId, to_phase: "SAFE_MODE" });
    expect(spans.find((s) => s.spanID === inObject.span_id)?.operationName).toBe("MissionState.absorb");
    expect(lines.every((l) => l.request_id === requestId)).toBe(true);

    // The non-sampled request: logged with its trace id, never exported.
    expect(logLines().some((l) => l.msg === "request" && l.trace_id === unsampledTraceId)).toBe(true);
    expect(await jaegerTrace(unsampledTraceId)).toBeUndefined();
    console.info(`trace ${traceId}: ${spans.length} spans in Jaeger: ${spans.map((s) => s.operationName).join(", ")}`);
  });
});
