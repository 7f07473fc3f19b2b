/**
 * What the metrics exactness tests share: a deterministic request mix sent to the Worker, the
 * tally of what the responses say Prometheus must show (never the Worker's own counters), and
 * the comparison with Prometheus's raw samples (counter resets accounted for and counted).
 *
 * @example
 * const tally = new Tally();
 * await load(edge, tally, { millis: 10_000, rate: 40, concurrency: 8, offset: 0 });
 * const { millis, comparison } = await freshness(prometheusUrl, tally);
 * expect(comparison.mismatches).toEqual([]);
 */
import type { AggregatorStats, LeafStats } from "../../lib/objects/aggregation-stats";
import { sleep } from "./stack";

/** Where requests go: isolate `i` of several (Miniflare workers), or one HTTP Worker. */
export interface Edge {
  names: string[];
  fetch(i: number, path: string, init?: RequestInit): Promise<Response>;
}

/** One Worker behind an HTTP URL, as an {@link Edge} of one isolate. */
export const httpEdge = (url: string): Edge => ({ names: [url], fetch: (_i, path, init) => fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(15_000) }) });

/** error_type by status for the statuses this mix produces (the closed set of lib/telemetry/labels.ts). */
export const ERROR_TYPE: Record<number, string> = { 400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_error", 429: "rate_limited", 500: "internal_error", 503: "unavailable" };

// ------------------------------------------------------------------------------------------------
// The tally: what the responses say Prometheus must show
// ------------------------------------------------------------------------------------------------

export class Tally {
  readonly counters = new Map<string, number>();
  readonly histogramCounts = new Map<string, number>();
  /** Exact histogram sums we can know from outside: request and response body bytes per endpoint. */
  readonly histogramSums = new Map<string, number>();
  requests = 0;
  lastResponseAt = 0;
  anomalyIds: string[] = [];
  lastAccuracy: number | undefined;

  static key(name: string, labels: Record<string, string>): string {
    return `${name}${JSON.stringify(Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))))}`;
  }

  add(map: Map<string, number>, name: string, labels: Record<string, string>, by = 1): void {
    const k = Tally.key(name, labels);
    map.set(k, (map.get(k) ?? 0) + by);
  }

  /** One HTTP exchange: the service-health metrics it must produce. */
  http(method: string, endpoint: string, status: number, requestBytes: number, responseBytes: number): void {
    this.requests++;
    this.add(this.histogramSums, "astra_http_request_size_bytes", { endpoint }, requestBytes);
    this.add(this.histogramSums, "astra_http_response_size_bytes", { endpoint }, responseBytes);
    this.lastResponseAt = Date.now();
    this.add(this.counters, "astra_http_requests_total", { method, endpoint, status: String(status) });
    for (const h of ["astra_http_request_duration_seconds", "astra_http_request_size_bytes", "astra_http_response_size_bytes"]) this.add(this.histogramCounts, h, { endpoint });
    if (status >= 400) {
      const errorType = ERROR_TYPE[status];
      if (!errorType) throw new Error(`the mix got an unexpected status ${status} for ${method} ${endpoint}`);
      this.add(this.counters, "astra_errors_total", { error_type: errorType, endpoint });
    }
  }

  /** Detection results of an ingest response (one per evaluated point). */
  detections(results: Array<{ id: string; is_anomaly: boolean; severity_level: string; detector: string | null }>): void {
    for (const r of results) {
      this.add(this.histogramCounts, "astra_detection_latency_seconds", {});
      if (r.is_anomaly) {
        this.add(this.counters, "astra_anomalies_detected_total", { detector: String(r.detector), severity: r.severity_level });
        this.anomalyIds.push(r.id);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// The mix
// ------------------------------------------------------------------------------------------------

const SATELLITES = ["sat-1", "sat-2", "sat-3", "sat-4"];
const nominal = (i: number) => ({ voltage: 28, temperature: 20, gyro: 0.1, current: 2, wheel_speed: 3000, satellite_id: SATELLITES[i % SATELLITES.length] });
const anomalous = (i: number) => ({ voltage: 2, temperature: 140, gyro: 0.1, satellite_id: SATELLITES[i % SATELLITES.length] });

export type Kind = "good" | "anomalous" | "bad_range" | "bad_json" | "batch" | "bad_batch" | "health" | "unmatched";
/** Deterministic mix: the k-th request's kind. */
export const MIX: Kind[] = ["good", "good", "good", "anomalous", "bad_range", "batch", "good", "health", "bad_json", "unmatched", "good", "bad_batch"];

export async function send(edge: Edge, tally: Tally, k: number, kind: Kind): Promise<void> {
  const isolate = k % edge.names.length;
  let sentBody = "";
  const json = (body: unknown) => ({ method: "POST", headers: { "content-type": "application/json" }, body: (sentBody = JSON.stringify(body)) });
  let method = "POST";
  let endpoint = "/api/v1/telemetry";
  let res: Response;
  switch (kind) {
    case "good":
      res = await edge.fetch(isolate, "/api/v1/telemetry", json(nominal(k)));
      break;
    case "anomalous":
      res = await edge.fetch(isolate, "/api/v1/telemetry", json(anomalous(k)));
      break;
    case "bad_range":
      res = await edge.fetch(isolate, "/api/v1/telemetry", json({ voltage: 99, temperature: 20, gyro: 0 }));
      break;
    case "bad_json":
      sentBody = '{"voltage": 28,';
      res = await edge.fetch(isolate, "/api/v1/telemetry", { method: "POST", headers: { "content-type": "application/json" }, body: sentBody });
      break;
    case "batch":
      endpoint = "/api/v1/telemetry/batch";
      res = await edge.fetch(isolate, endpoint, json({ telemetry: [nominal(k), anomalous(k + 1), nominal(k + 2), ...(k % 2 ? [anomalous(k + 3)] : [])] }));
      break;
    case "bad_batch":
      endpoint = "/api/v1/telemetry/batch";
      res = await edge.fetch(isolate, endpoint, json({ telemetry: [nominal(k), { voltage: -5, temperature: 20, gyro: 0 }] }));
      break;
    case "health":
      method = "GET";
      endpoint = "/health";
      res = await edge.fetch(isolate, "/health");
      break;
    case "unmatched":
      method = "GET";
      endpoint = "unmatched";
      res = await edge.fetch(isolate, `/api/v1/no-such-thing/${k}`);
      break;
  }
  const text = await res.text();
  tally.http(method, endpoint, res.status, Buffer.byteLength(sentBody), Buffer.byteLength(text));
  if (res.status === 200 && (kind === "good" || kind === "anomalous")) tally.detections([JSON.parse(text)]);
  if (res.status === 200 && kind === "batch") tally.detections(JSON.parse(text).results);
}

/** Paced load over `millis`: request k starts no earlier than k/rate s; bounded in count and time. */
export async function load(edge: Edge, tally: Tally, options: { millis: number; rate: number; concurrency: number; offset: number }): Promise<number> {
  const total = Math.floor((options.millis / 1000) * options.rate);
  const started = Date.now();
  const hardStop = started + options.millis * 3;
  let next = 0;
  const failures: unknown[] = [];
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      for (;;) {
        const k = next++;
        if (k >= total || Date.now() > hardStop) return;
        const due = started + (k * 1000) / options.rate;
        if (due > Date.now()) await sleep(due - Date.now());
        try {
          await send(edge, tally, options.offset + k, MIX[(options.offset + k) % MIX.length]!);
        } catch (error) {
          failures.push(error);
          if (failures.length > 5) throw error;
        }
      }
    }),
  );
  if (failures.length) throw failures[0];
  return total;
}

/** Operator feedback on anomalies, sequentially (so the last accuracy is the final one). */
export async function feedback(edge: Edge, tally: Tally, ids: string[], operatorToken: string): Promise<void> {
  for (const [i, id] of ids.entries()) {
    const falsePositive = i % 3 === 0;
    const sentBody = JSON.stringify({ false_positive: falsePositive });
    const res = await edge.fetch(i % edge.names.length, `/api/v1/anomalies/${id}/feedback`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${operatorToken}` },
      body: sentBody,
    });
    const text = await res.text();
    const body = JSON.parse(text) as { status?: string; anomaly?: { detector?: string; severity_level?: string }; detection_accuracy?: number | null };
    tally.http("POST", "/api/v1/anomalies/:id/feedback", res.status, Buffer.byteLength(sentBody), Buffer.byteLength(text));
    if (res.status === 200 && body.status === "labelled") {
      if (falsePositive) tally.add(tally.counters, "astra_false_positives_total", { detector: String(body.anomaly?.detector), severity: String(body.anomaly?.severity_level) });
      if (typeof body.detection_accuracy === "number") tally.lastAccuracy = body.detection_accuracy;
    }
    await sleep(5);
  }
}

// ------------------------------------------------------------------------------------------------
// Reading Prometheus
// ------------------------------------------------------------------------------------------------

export interface Series {
  labels: Record<string, string>;
  samples: Array<[number, number]>;
}

/** Raw samples of every series matching `selector` over the last `window` (a range-vector query). */
export async function rawSeries(url: string, selector: string, window = "30m"): Promise<Series[]> {
  const params = new URLSearchParams({ query: `${selector}[${window}]` });
  const response = await fetch(`${url}/api/v1/query?${params}`, { signal: AbortSignal.timeout(15_000) });
  const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> } };
  if (body.status !== "success" || body.data?.resultType !== "matrix") throw new Error(`range query ${selector}: ${body.error ?? body.data?.resultType}`);
  return body.data.result.map((r) => ({ labels: r.metric, samples: r.values.map(([t, v]) => [t, Number(v)] as [number, number]) }));
}

/** A counter's total over its samples, counter resets accounted for (as increase() would). */
export function resetAdjustedTotal(samples: Array<[number, number]>): { total: number; resets: number } {
  let total = 0;
  let resets = 0;
  let previous = 0;
  for (const [, v] of samples) {
    if (v < previous) {
      resets++;
      total += previous;
    }
    previous = v;
  }
  return { total: total + previous, resets };
}

export const dropTarget = (labels: Record<string, string>) => {
  const { __name__, job, instance, ...rest } = labels;
  return { name: __name__ ?? "", rest };
};

export interface Comparison {
  expected: number;
  matched: number;
  mismatches: string[];
  resets: number;
}

/** Compares every expected counter and histogram _count with what Prometheus holds now. */
export async function compare(url: string, tally: Tally): Promise<Comparison> {
  const all = await rawSeries(url, '{__name__=~"astra_.+"}');
  const got = new Map<string, { total: number; resets: number }>();
  for (const s of all) {
    const { name, rest } = dropTarget(s.labels);
    got.set(Tally.key(name, rest), resetAdjustedTotal(s.samples));
  }
  const mismatches: string[] = [];
  let matched = 0;
  let resets = 0;
  const check = (key: string, want: number) => {
    const have = got.get(key);
    if (have && have.total === want) matched++;
    else mismatches.push(`${key}: want ${want}, have ${have?.total ?? "no series"}`);
    resets += have?.resets ?? 0;
  };
  for (const [k, v] of tally.counters) check(k, v);
  for (const [k, v] of tally.histogramCounts) {
    const name = k.slice(0, k.indexOf("{"));
    check(`${name}_count${k.slice(k.indexOf("{"))}`, v);
  }
  for (const [k, v] of tally.histogramSums) {
    const name = k.slice(0, k.indexOf("{"));
    check(`${name}_sum${k.slice(k.indexOf("{"))}`, v);
  }
  return { expected: tally.counters.size + tally.histogramCounts.size + tally.histogramSums.size, matched, mismatches, resets };
}

/** Stats of every owner shard, by RPC from Node. */
export async function shardStats(edge: { aggregator(i: number): Promise<any> }, shards: number): Promise<AggregatorStats[]> {
  return Promise.all(Array.from({ length: shards }, async (_, i) => (await edge.aggregator(i)).stats() as Promise<AggregatorStats>));
}

/** Stats of every leaf, by RPC from Node. */
export async function leafStats(edge: { leaf(i: number): Promise<any> }, leaves: number): Promise<LeafStats[]> {
  return Promise.all(Array.from({ length: leaves }, async (_, i) => (await edge.leaf(i)).stats() as Promise<LeafStats>));
}

export const sum = <T>(rows: T[], f: (row: T) => number) => rows.reduce((n, r) => n + f(r), 0);

export const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
};

/** Polls until every expected count is in Prometheus; returns ms from the last response. */
export async function freshness(url: string, tally: Tally, timeoutMillis = 90_000): Promise<{ millis: number; comparison: Comparison }> {
  const deadline = Date.now() + timeoutMillis;
  let comparison: Comparison | undefined;
  for (;;) {
    comparison = await compare(url, tally);
    if (comparison.mismatches.length === 0) return { millis: Date.now() - tally.lastResponseAt, comparison };
    if (Date.now() > deadline) return { millis: Number.POSITIVE_INFINITY, comparison };
    await sleep(200);
  }
}

// ------------------------------------------------------------------------------------------------
