/** Helpers of the telemetry tests: capture what is pushed to the collector, build points. */
import { vi } from "vitest";
import type { MetricPoint } from "../../../lib/telemetry/export/points";

export interface CapturedRequest {
  url: string;
  headers: Record<string, string>;
  body: any;
}

/**
 * Replaces global fetch for URLs under `prefix` (the runtime's other fetches pass through):
 * records each request's URL, headers and JSON body (gunzipped when the request is gzipped), and answers with `respond()` (default 200),
 * or rejects like a refused connection when `respond` returns "refuse".
 */
export function captureCollector(prefix: string, respond: () => number | "refuse" = () => 200) {
  const requests: CapturedRequest[] = [];
  const original = globalThis.fetch;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input as RequestInfo, init as RequestInit);
    if (!request.url.startsWith(prefix)) return original(input as RequestInfo, init as RequestInit);
    const headers: Record<string, string> = {};
    request.headers.forEach((v, k) => (headers[k] = v));
    // Span exports are gzipped (Content-Encoding: gzip): recorded as the collector decodes them.
    const text =
      headers["content-encoding"] === "gzip" && request.body
        ? await new Response(request.body.pipeThrough(new DecompressionStream("gzip"))).text()
        : await request.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON: kept as text.
    }
    requests.push({ url: request.url, headers, body });
    const outcome = respond();
    if (outcome === "refuse") throw new TypeError("Network connection lost.");
    return new Response("{}", { status: outcome, headers: { "content-type": "application/json" } });
  });
  return { requests, restore: () => spy.mockRestore() };
}

/** All OTLP JSON metrics in one pushed body, by name. */
export function otlpMetrics(body: any): Map<string, any> {
  const out = new Map<string, any>();
  for (const rm of body?.resourceMetrics ?? []) for (const sm of rm.scopeMetrics ?? []) for (const m of sm.metrics ?? []) out.set(m.name, m);
  return out;
}

/** OTLP JSON attributes → plain record. */
export function otlpAttributes(attrs: any[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of attrs ?? []) out[a.key] = String(a.value?.stringValue ?? a.value?.intValue ?? a.value?.doubleValue ?? a.value?.boolValue ?? "");
  return out;
}

export const counterPoint = (name: string, value: number, attributes: Record<string, string> = {}, timeMs = Date.now()): MetricPoint => ({
  name,
  description: `${name} description`,
  unit: "",
  kind: "counter",
  attributes,
  value,
  timeMs,
});

export const gaugePoint = (name: string, value: number, timeMs: number, attributes: Record<string, string> = {}): MetricPoint => ({
  name,
  description: "",
  unit: "",
  kind: "gauge",
  attributes,
  value,
  timeMs,
});

export const histogramPoint = (name: string, boundaries: number[], bucketCounts: number[], sum: number, attributes: Record<string, string> = {}): MetricPoint => ({
  name,
  description: "",
  unit: "s",
  kind: "histogram",
  attributes,
  histogram: { boundaries, bucketCounts, sum, count: bucketCounts.reduce((a, b) => a + b, 0) },
  timeMs: Date.now(),
});
