import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { Hono } from "hono";
import { beforeEach, describe, expect, it } from "vitest";
import { app } from "../../../functions/app";
import { telemetryFlusher } from "../../../functions/telemetry";
import { endpointOf, errorTypeOf } from "../../../lib/telemetry/labels";
import { requestTelemetry } from "../../../lib/telemetry/request-telemetry";
import { metricReader } from "../../../lib/telemetry/meter-provider";
import { toMetricPoints, type MetricPoint } from "../../../lib/telemetry/export/points";

const testEnv = env as unknown as Env;

/** Drains the isolate's (delta) reader: what was recorded since the previous drain. */
async function drain(): Promise<MetricPoint[]> {
  return toMetricPoints((await metricReader.collect()).resourceMetrics);
}

const sumOf = (points: MetricPoint[], name: string, attributes: Record<string, string>) =>
  points
    .filter((p) => p.name === name && JSON.stringify(p.attributes) === JSON.stringify(Object.fromEntries(Object.entries(attributes).sort())))
    .reduce((n, p) => n + (p.value ?? p.histogram?.sum ?? 0), 0);

const countOf = (points: MetricPoint[], name: string, endpoint: string) =>
  points.filter((p) => p.name === name && p.attributes.endpoint === endpoint).reduce((n, p) => n + (p.histogram?.count ?? 0), 0);

function testApp(flushed: Env[]) {
  const a = new Hono<{ Bindings: Env }>();
  a.use("*", requestTelemetry({ flush: async (e) => void flushed.push(e), logRequests: false }));
  a.get("/items/:id", (c) => c.json({ id: c.req.param("id") }));
  a.post("/items", async (c) => c.json({ got: await c.req.text() }, 201));
  a.get("/boom", () => {
    throw new Error("kaput");
  });
  a.notFound((c) => c.json({ error: "nope" }, 404));
  a.onError((_e, c) => c.json({ error: "internal" }, 500));
  return a;
}

async function request(a: { fetch: (r: Request, e: Env, c: ExecutionContext) => Response | Promise<Response> }, method: string, path: string, body?: string, e: Env = testEnv) {
  const ctx = createExecutionContext();
  const res = await a.fetch(new Request(`http://edge.test${path}`, { method, body, headers: body ? { "content-type": "application/json" } : {} }), e, ctx);
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { res, text };
}

beforeEach(async () => {
  await drain();
});

describe("requestTelemetry() metrics", () => {
  it("records requests by method, route pattern and status, never the raw path, and flushes each request", async () => {
    const flushed: Env[] = [];
    const a = testApp(flushed);
    await request(a, "GET", "/items/42");
    await request(a, "GET", "/items/43?q=secret");
    const post = await request(a, "POST", "/items", '{"a":12345}');
    await request(a, "GET", "/boom");
    await request(a, "GET", "/no/such/path");
    const points = await drain();
    expect(sumOf(points, "astra_http_requests_total", { method: "GET", endpoint: "/items/:id", status: "200" })).toBe(2);
    expect(sumOf(points, "astra_http_requests_total", { method: "POST", endpoint: "/items", status: "201" })).toBe(1);
    expect(sumOf(points, "astra_http_requests_total", { method: "GET", endpoint: "/boom", status: "500" })).toBe(1);
    expect(sumOf(points, "astra_http_requests_total", { method: "GET", endpoint: "unmatched", status: "404" })).toBe(1);
    expect(points.some((p) => Object.values(p.attributes).some((v) => v.includes("42") || v.includes("secret") || v.includes("/no/such")))).toBe(false);
    expect(countOf(points, "astra_http_request_duration_seconds", "/items/:id")).toBe(2);
    expect(sumOf(points, "astra_http_request_size_bytes", { endpoint: "/items" })).toBe('{"a":12345}'.length);
    expect(sumOf(points, "astra_http_response_size_bytes", { endpoint: "/items" })).toBe(new TextEncoder().encode(post.text).byteLength);
    expect(sumOf(points, "astra_errors_total", { error_type: "internal_error", endpoint: "/boom" })).toBe(1);
    expect(sumOf(points, "astra_errors_total", { error_type: "not_found", endpoint: "unmatched" })).toBe(1);
    expect(points.filter((p) => p.name === "astra_errors_total").reduce((n, p) => n + p.value!, 0)).toBe(2);
    // +1 and -1 per request: nothing left in flight, but the stream exists.
    expect(points.find((p) => p.name === "astra_active_connections")?.value).toBe(0);
    expect(flushed).toHaveLength(5);
  });

  it("counts a request as in flight until its response is ready", async () => {
    let seen: MetricPoint[] = [];
    const a = new Hono<{ Bindings: Env }>();
    a.use("*", requestTelemetry({ flush: async () => {}, logRequests: false }));
    a.get("/slow", async (c) => {
      seen = await drain(); // collected while this request is in flight
      return c.text("ok");
    });
    await request(a, "GET", "/slow");
    expect(seen.find((p) => p.name === "astra_active_connections")?.value).toBe(1);
    expect((await drain()).find((p) => p.name === "astra_active_connections")?.value).toBe(-1);
  });

  it("maps statuses to a closed set of error types", () => {
    expect([200, 400, 404, 413, 422, 429, 418, 500, 503, 599].map(errorTypeOf)).toEqual([
      undefined,
      "bad_request",
      "not_found",
      "payload_too_large",
      "validation_error",
      "rate_limited",
      "client_error",
      "internal_error",
      "unavailable",
      "server_error",
    ]);
    expect(endpointOf({} as never)).toBe("unmatched");
  });
});

describe("the API with telemetry (functions/app.ts, mounted once)", () => {
  const aggregator = () => testEnv.METRICS_AGGREGATOR.get(testEnv.METRICS_AGGREGATOR.idFromName("metrics-shard-0"));
  const counted = async (labels: Record<string, string>) => (await aggregator().read("astra_http_requests_total", "counter", labels))?.value ?? 0;

  it("answers normally when the collector is unreachable, and the flush completes without throwing", async () => {
    const unreachable: Env = { ...testEnv, OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9" };
    const before = { ...telemetryFlusher.stats };
    const good = await request(app, "POST", "/api/v1/telemetry", JSON.stringify({ voltage: 28, temperature: 20, gyro: 0.1 }), unreachable);
    expect(good.res.status).toBe(200);
    expect(JSON.parse(good.text)).toMatchObject({ is_anomaly: false, id: expect.any(String) });
    const bad = await request(app, "POST", "/api/v1/telemetry", JSON.stringify({ voltage: 99, temperature: 20, gyro: 0 }), unreachable);
    expect([400, 422]).toContain(bad.res.status);
    const health = await request(app, "GET", "/health", undefined, unreachable);
    expect(health.res.status).toBe(200);
    expect(telemetryFlusher.stats.exports).toBeGreaterThan(before.exports);
  });

  it("counts each request exactly once, by route pattern, in the aggregator", async () => {
    const body = JSON.stringify({ telemetry: [{ voltage: 28, temperature: 20, gyro: 0.1 }, { voltage: 27, temperature: 21, gyro: 0.1 }] }); // nominal: no phase change for other tests
    const labels = { endpoint: "/api/v1/telemetry/batch", method: "POST", status: "200" };
    const before = { stats: { ...telemetryFlusher.stats }, count: await counted(labels) };
    const { res } = await request(app, "POST", "/api/v1/telemetry/batch", body);
    expect(res.status).toBe(200);
    expect(telemetryFlusher.stats.exports).toBe(before.stats.exports + 1);
    expect(await counted(labels)).toBe(before.count + 1);
    const twice = await Promise.all([request(app, "POST", "/api/v1/telemetry/batch", body), request(app, "POST", "/api/v1/telemetry/batch", body)]);
    expect(twice.map((r) => r.res.status)).toEqual([200, 200]);
    expect(await counted(labels)).toBe(before.count + 3);
  });
});
