/**
 * No cardinality explosion from hostile input: after random paths, huge query strings, every
 * method the runtime accepts, unicode and many distinct satellite ids, every label value that
 * leaves the isolate (the points the flush sends to the MetricsAggregator, which pushes them to
 * Prometheus, plus whatever is still in the reader) belongs to its closed set.
 */
import { createExecutionContext, env, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { app } from "../../../functions/app";
import { MISSION_PHASES } from "../../../lib/domain/schemas";
import { IDEMPOTENT_OPERATIONS } from "../../../lib/reliability/retry";
import { ERROR_TYPES } from "../../../lib/telemetry/labels";
import { telemetryFlusher } from "../../../functions/telemetry";
import { metricReader } from "../../../lib/telemetry/meter-provider";
import type { MetricsAggregator } from "../../../lib/objects/metrics-aggregator";
import { shardCount, shardName, toMetricPoints, type MetricPoint } from "../../../lib/telemetry/export/points";
import { anomalousPoint, nominalPoint } from "../support/api";
import { captureCollector } from "../telemetry/support";
import { captureConsole } from "./support";

const SEED = 20261125;

/** Methods workerd accepts at all (any other method string is refused when the Request is built). */
const RUNTIME_METHODS = [
  "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PURGE", "COPY", "LOCK", "MKCOL", "MOVE",
  "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "NOTIFY",
  "SUBSCRIBE", "UNSUBSCRIBE", "QUERY",
];

const routePatterns = () => new Set([...app.routes.filter((r) => r.method !== "ALL").map((r) => r.path), "unmatched"]);
const set = (...values: readonly string[]) => new Set(values);

/** Closed set of each label, by metric name where one label name means different things. */
function allowed(metric: string, label: string): Set<string> | RegExp | undefined {
  switch (label) {
    case "method":
      return new Set(RUNTIME_METHODS);
    case "endpoint":
      return metric.startsWith("astra_retry_") ? new Set<string>(IDEMPOTENT_OPERATIONS) : routePatterns();
    case "status":
      return metric === "astra_http_requests_total" ? /^[1-5][0-9]{2}$/ : set("success", "failure", "injected", "recovered", "cancelled");
    case "error_type":
      return new Set([...Object.values(ERROR_TYPES), "client_error", "server_error"]);
    case "severity":
      return set("LOW", "MEDIUM", "HIGH", "CRITICAL");
    case "store_type":
      return set("phase", "history");
    case "action_type":
      return set("fallback_isolate_cache", "escalate_safe_mode", "retry_succeeded", "open_breaker", "close_breaker");
    case "detector":
      return set("limit", "rate", "stuck", "drift");
    case "outcome":
      return set("success", "retry", "failure");
    case "name":
    case "service":
    case "target":
      return set("storage", "collector", "metrics_aggregator");
    case "from_state":
    case "to_state":
      return set("CLOSED", "OPEN", "HALF_OPEN");
    case "type":
      return set("latency", "error", "outage");
    case "phase":
      return new Set(MISSION_PHASES);
    case "shard":
      return new Set(Array.from({ length: shardCount(env.METRICS_AGGREGATOR_SHARDS) }, (_, i) => String(i)));
    default:
      return undefined;
  }
}

interface Hostile {
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

/** The hostile traffic, generated from a fixed seed. */
function hostileRequests(): Hostile[] {
  const sample = <T>(arb: fc.Arbitrary<T>, numRuns: number) => fc.sample(arb, { seed: SEED, numRuns });
  const unicode = fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 });
  const requests: Hostile[] = [];
  for (const p of sample(fc.webPath(), 25)) requests.push({ method: "GET", path: p.startsWith("/") ? p : `/${p}` });
  for (const s of sample(unicode, 15)) {
    requests.push({ method: "GET", path: `/api/v1/${encodeURIComponent(s)}` });
    requests.push({ method: "POST", path: `/api/v1/anomalies/${encodeURIComponent(s)}/feedback`, body: '{"false_positive":true}' });
    requests.push({ method: "DELETE", path: `/api/v1/chaos/${encodeURIComponent(s)}` });
  }
  for (const q of sample(fc.string({ minLength: 2000, maxLength: 8000 }), 5)) {
    requests.push({ method: "GET", path: `/api/v1/history/anomalies?${encodeURIComponent(q)}=${encodeURIComponent(q)}` });
    requests.push({ method: "GET", path: `/health?q=${encodeURIComponent(q)}` });
  }
  for (const method of RUNTIME_METHODS) for (const path of ["/api/v1/telemetry", "/api/v1/phase", "/nope", "/api/v1/telemetry/latest"]) requests.push({ method, path });
  for (const id of sample(unicode, 15)) requests.push({ method: "POST", path: "/api/v1/telemetry", body: JSON.stringify(nominalPoint({ satellite_id: id })) });
  // Valid, distinct source ids, half of them anomalous: accepted, detected, never a label.
  const ids = sample(fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/), 30);
  ids.forEach((id, i) => requests.push({ method: "POST", path: "/api/v1/telemetry", body: JSON.stringify(i % 2 ? anomalousPoint({ satellite_id: id }) : nominalPoint({ satellite_id: id })) }));
  requests.push({ method: "POST", path: "/api/v1/telemetry/batch", body: JSON.stringify({ telemetry: ids.map((id) => anomalousPoint({ satellite_id: `${id}`.slice(0, 60) + "-b" })) }) });
  return requests;
}

/** The streams every aggregator shard holds: what the next push hands to Prometheus. */
async function aggregatedPoints(bindings: Env): Promise<MetricPoint[]> {
  const points: MetricPoint[] = [];
  for (let shard = 0; shard < shardCount(bindings.METRICS_AGGREGATOR_SHARDS); shard++) {
    const stub = bindings.METRICS_AGGREGATOR.get(bindings.METRICS_AGGREGATOR.idFromName(shardName(shard)));
    points.push(...(await runInDurableObject(stub, (instance: MetricsAggregator) => toMetricPoints(instance.buildResourceMetrics(Date.now())))));
  }
  return points;
}

describe("metric labels under hostile input", () => {
  it("every label value that leaves the isolate is from its closed set", async () => {
    const bindings = env as unknown as Env;
    const collector = captureCollector(String(env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://127.0.0.1:4318"));
    const requests = hostileRequests();
    const contexts: ExecutionContext[] = [];
    const statuses: number[] = [];
    let points: MetricPoint[] = [];
    try {
      // The console is captured: a log line per hostile request would drown the report.
      await captureConsole(async () => {
        for (const r of requests) {
          const ctx = createExecutionContext();
          contexts.push(ctx);
          const headers = r.body !== undefined ? { "Content-Type": "application/json", ...r.headers } : r.headers;
          const res = await app.fetch(new Request(`http://astraguard.test${r.path}`, { method: r.method, headers, body: r.body }), bindings, ctx);
          statuses.push(res.status);
          await res.arrayBuffer();
        }
        for (const ctx of contexts) await waitOnExecutionContext(ctx);
      });
      // Everything recorded so far (the Worker's and the MissionState object's) goes to the aggregator.
      await telemetryFlusher.flush(bindings);
      points = [...(await aggregatedPoints(bindings)), ...toMetricPoints((await metricReader.collect()).resourceMetrics)];
    } finally {
      collector.restore();
    }

    console.log(`metric-labels: seed ${SEED}, ${requests.length} hostile requests, ${points.length} points checked`);
    expect(statuses.every((s) => s < 500), `statuses ${[...new Set(statuses)]}`).toBe(true);
    const names = new Set(points.map((p) => p.name));
    for (const name of ["astra_http_requests_total", "astra_errors_total", "astra_anomalies_detected_total", "astra_memory_engine_misses_total"]) {
      expect(names, name).toContain(name);
    }

    const offending: string[] = [];
    const values = new Map<string, Set<string>>();
    for (const p of points) {
      for (const [label, value] of Object.entries(p.attributes)) {
        const closed = allowed(p.name, label);
        const ok = closed instanceof RegExp ? closed.test(value) : closed?.has(value) === true;
        if (!ok) offending.push(`${p.name}{${label}=${JSON.stringify(value).slice(0, 80)}}`);
        const key = `${p.name}.${label}`;
        values.set(key, (values.get(key) ?? new Set()).add(value));
      }
    }
    expect(offending).toEqual([]);
    // Hundreds of distinct paths and ids went in; a handful of label values came out.
    expect(values.get("astra_http_requests_total.endpoint")!.size).toBeLessThanOrEqual(routePatterns().size);
    expect(values.get("astra_http_requests_total.endpoint")).toContain("unmatched");
  }, 60_000);
});
