import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { AGGREGATOR_INSTANCE_ID, HEARTBEAT_METRIC, aggregatorConfig, nextPushDelayMillis, type MetricsAggregator } from "../../../lib/objects/metrics-aggregator";
import { captureCollector, counterPoint, gaugePoint, histogramPoint, otlpAttributes, otlpMetrics } from "./support";

const ENDPOINT = env.OTEL_EXPORTER_OTLP_ENDPOINT as string;
let n = 0;
const freshShard = () => env.METRICS_AGGREGATOR.get(env.METRICS_AGGREGATOR.idFromName(`aggregator-test-${Date.now()}-${n++}`));

let restore: (() => void) | undefined;
afterEach(() => restore?.());

describe("MetricsAggregator.ingest", () => {
  it("adds counter deltas per label set, from any number of batches", async () => {
    const shard = freshShard();
    await shard.ingest("iso-a-0", [counterPoint("astra_http_requests_total", 3, { method: "GET", endpoint: "/health", status: "200" })]);
    await shard.ingest("iso-b-0", [
      counterPoint("astra_http_requests_total", 2, { status: "200", endpoint: "/health", method: "GET" }),
      counterPoint("astra_http_requests_total", 1, { method: "POST", endpoint: "/api/v1/telemetry", status: "422" }),
    ]);
    expect(await shard.read("astra_http_requests_total", "counter", { method: "GET", endpoint: "/health", status: "200" })).toMatchObject({ value: 5 });
    expect(await shard.read("astra_http_requests_total", "counter", { method: "POST", endpoint: "/api/v1/telemetry", status: "422" })).toMatchObject({ value: 1 });
    expect((await shard.stats()).streams).toBe(2);
  });

  it("sums UpDownCounter deltas of several isolates (in-flight requests across isolates)", async () => {
    const shard = freshShard();
    const p = (v: number) => ({ ...counterPoint("astra_active_connections", v), kind: "updowncounter" as const });
    await shard.ingest("a-0", [p(2)]);
    await shard.ingest("b-0", [p(3)]);
    await shard.ingest("a-1", [p(-2)]);
    expect(await shard.read("astra_active_connections", "updowncounter", {})).toMatchObject({ value: 3 });
  });

  it("drops the UpDownCounter contribution of an isolate not heard from for senderLiveMillis", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const shard = freshShard();
    const p = (v: number) => ({ ...counterPoint("astra_memory_engine_size_bytes", v, { store_type: "readings" }), kind: "updowncounter" as const });
    await shard.ingest("alive-0", [p(100)]);
    await shard.ingest("gone-0", [p(1)]); // e.g. an isolate that died with a request in flight
    expect(await shard.read("astra_memory_engine_size_bytes", "updowncounter", { store_type: "readings" })).toMatchObject({ value: 101 });
    await runInDurableObject(shard, (_i, state) => state.storage.sql.exec(`UPDATE senders SET seen_ms = 0 WHERE sender = 'gone'`));
    expect(await shard.read("astra_memory_engine_size_bytes", "updowncounter", { store_type: "readings" })).toMatchObject({ value: 100 });
    await runInDurableObject(shard, (instance: MetricsAggregator) => instance.pushNow());
    expect(otlpMetrics(collector.requests[0]!.body).get("astra_memory_engine_size_bytes").sum).toMatchObject({ isMonotonic: false, aggregationTemporality: 2, dataPoints: [expect.objectContaining({ asDouble: 100 })] });
    // The alarm forgets it for good after senderForgetMillis.
    await runDurableObjectAlarm(shard);
    expect(await runInDurableObject(shard, (_i, state) => state.storage.sql.exec(`SELECT count(*) AS n FROM contributions WHERE sender = 'gone'`).one().n)).toBe(0);
    expect((await shard.stats()).senders).toBe(1);
  });

  it("adds histograms bucket by bucket, with sum, count, min and max", async () => {
    const shard = freshShard();
    const bounds = [0.01, 0.05, 0.1];
    await shard.ingest("a-0", [{ ...histogramPoint("astra_http_request_duration_seconds", bounds, [1, 0, 2, 0], 0.3, { endpoint: "/x" }), histogram: { boundaries: bounds, bucketCounts: [1, 0, 2, 0], sum: 0.3, count: 3, min: 0.005, max: 0.09 } }]);
    await shard.ingest("b-0", [{ ...histogramPoint("astra_http_request_duration_seconds", bounds, [0, 1, 0, 4], 9, { endpoint: "/x" }), histogram: { boundaries: bounds, bucketCounts: [0, 1, 0, 4], sum: 9, count: 5, min: 0.02, max: 4 } }]);
    const got = await shard.read("astra_http_request_duration_seconds", "histogram", { endpoint: "/x" });
    expect(got?.histogram).toEqual({ boundaries: bounds, bucketCounts: [1, 1, 2, 4], sum: 9.3, count: 8, min: 0.005, max: 4 });
  });

  it("keeps the gauge value with the latest time, whatever the arrival order", async () => {
    const shard = freshShard();
    await shard.ingest("a-0", [gaugePoint("astra_circuit_breaker_state", 1, 2000, { name: "storage" })]);
    await shard.ingest("b-0", [gaugePoint("astra_circuit_breaker_state", 0, 1000, { name: "storage" })]); // late arrival, older
    expect(await shard.read("astra_circuit_breaker_state", "gauge", { name: "storage" })).toMatchObject({ value: 1 });
    await shard.ingest("b-1", [gaugePoint("astra_circuit_breaker_state", 2, 3000, { name: "storage" })]);
    expect(await shard.read("astra_circuit_breaker_state", "gauge", { name: "storage" })).toMatchObject({ value: 2 });
  });

  it("counts a batch id once: a re-sent batch is acknowledged and ignored", async () => {
    const shard = freshShard();
    const batch = [counterPoint("astra_errors_total", 4, { error_type: "validation_error", endpoint: "/api/v1/telemetry" })];
    expect(await shard.ingest("iso-x-7", batch)).toEqual({ accepted: true, merged: 1 });
    expect(await shard.ingest("iso-x-7", batch)).toEqual({ accepted: false, merged: 0 });
    expect(await shard.read("astra_errors_total", "counter", { error_type: "validation_error", endpoint: "/api/v1/telemetry" })).toMatchObject({ value: 4 });
    expect(await shard.stats()).toMatchObject({ batchesAccepted: 1, batchesDuplicate: 1, senders: 1 });
    await shard.ingest("iso-y-0", batch);
    expect((await shard.stats()).senders).toBe(2);
  });

  it("skips invalid points without throwing and counts them", async () => {
    const shard = freshShard();
    const bad: any[] = [{ name: "", kind: "counter", attributes: {}, value: 1 }, { ...counterPoint("c_total", Number.NaN) }, histogramPoint("h", [1], [1], 1)];
    bad[2]!.histogram!.bucketCounts = [1]; // wrong length
    const result = await shard.ingest("bad-0", bad as any);
    expect(result).toEqual({ accepted: true, merged: 0 });
    expect((await shard.stats()).pointsDropped).toBe(3);
  });
});

describe("MetricsAggregator alarm push", () => {
  it("schedules an alarm on ingest and pushes every stream as cumulative OTLP, bearer-authenticated, one instance id", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const shard = freshShard();
    await shard.ingest("a-0", [
      counterPoint("astra_http_requests_total", 7, { method: "GET", endpoint: "/health", status: "200" }),
      gaugePoint("astra_detection_accuracy", 0.75, Date.now()),
      histogramPoint("astra_detection_latency_seconds", [0.001, 0.005], [2, 1, 0], 0.004),
    ]);
    await shard.ingest("b-0", [counterPoint("astra_http_requests_total", 5, { method: "GET", endpoint: "/health", status: "200" })]);
    const alarm = await runInDurableObject(shard, (_i, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(await runDurableObjectAlarm(shard)).toBe(true);

    expect(collector.requests).toHaveLength(1);
    const push = collector.requests[0]!;
    expect(push.url).toBe(`${ENDPOINT}/v1/metrics`);
    expect(push.headers.authorization).toBe(`Bearer ${env.OTEL_EXPORTER_OTLP_TOKEN}`);
    const resource = otlpAttributes(push.body.resourceMetrics[0].resource.attributes);
    expect(resource).toMatchObject({ "service.name": "astraguard-edge", "service.instance.id": AGGREGATOR_INSTANCE_ID, "service.version": expect.any(String), "deployment.environment.name": expect.any(String) });
    const metrics = otlpMetrics(push.body);
    const requests = metrics.get("astra_http_requests_total");
    expect(requests.sum.aggregationTemporality).toBe(2); // CUMULATIVE
    expect(requests.sum.isMonotonic).toBe(true);
    expect(requests.sum.dataPoints).toHaveLength(1);
    expect(requests.sum.dataPoints[0].asDouble).toBe(12);
    expect(otlpAttributes(requests.sum.dataPoints[0].attributes)).toEqual({ method: "GET", endpoint: "/health", status: "200" });
    expect(metrics.get("astra_detection_accuracy").gauge.dataPoints[0].asDouble).toBe(0.75);
    const h = metrics.get("astra_detection_latency_seconds").histogram;
    expect(h.aggregationTemporality).toBe(2);
    expect(h.dataPoints[0]).toMatchObject({ count: 3, sum: 0.004, explicitBounds: [0.001, 0.005], bucketCounts: [2, 1, 0] });
  });

  it("stamps each push strictly after the previous one, with a fixed start time per stream", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const shard = freshShard();
    await shard.ingest("a-0", [counterPoint("astra_anomalies_detected_total", 1, { severity: "HIGH" })]);
    for (let i = 0; i < 3; i++) await runInDurableObject(shard, (instance: MetricsAggregator) => instance.pushNow());
    const points = collector.requests.map((r) => otlpMetrics(r.body).get("astra_anomalies_detected_total").sum.dataPoints[0]);
    expect(points).toHaveLength(3);
    const times = points.map((p) => BigInt(p.timeUnixNano));
    expect(times[1]! > times[0]! && times[2]! > times[1]!).toBe(true);
    expect(new Set(points.map((p) => p.startTimeUnixNano)).size).toBe(1);
    expect(BigInt(points[0].startTimeUnixNano) < times[0]!).toBe(true);
    expect(points.map((p) => p.asDouble)).toEqual([1, 1, 1]);
  });

  it("keeps the cumulative state through a failed push: the next alarm pushes the full total", async () => {
    let up = false;
    const collector = captureCollector(ENDPOINT, () => (up ? 200 : "refuse"));
    restore = collector.restore;
    const shard = freshShard();
    await shard.ingest("a-0", [counterPoint("astra_http_requests_total", 2, { method: "POST", endpoint: "/api/v1/telemetry", status: "200" })]);
    await runDurableObjectAlarm(shard); // collector down
    expect((await shard.stats()).pushFailures).toBe(1);
    const retryAt = await runInDurableObject(shard, (_i, state) => state.storage.getAlarm());
    expect(retryAt).not.toBeNull(); // retry scheduled
    await shard.ingest("b-0", [counterPoint("astra_http_requests_total", 3, { method: "POST", endpoint: "/api/v1/telemetry", status: "200" })]);
    up = true;
    await runDurableObjectAlarm(shard);
    const last = collector.requests.at(-1)!;
    expect(otlpMetrics(last.body).get("astra_http_requests_total").sum.dataPoints[0].asDouble).toBe(5);
    expect(await shard.stats()).toMatchObject({ pushes: 1, pushFailures: 1 });
  });

  it("pushes only the streams its shard owns under the current shard count", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const shard = freshShard();
    // With METRICS_AGGREGATOR_SHARDS unset (1 shard) every metric belongs to shard 0, so an object
    // that was shard 1 (under an older, larger shard count) no longer pushes what it holds.
    await shard.ingest("a-0", [counterPoint("astra_errors_total", 1, { error_type: "not_found", endpoint: "unmatched" })], 1);
    await runInDurableObject(shard, (instance: MetricsAggregator) => instance.pushNow());
    expect(collector.requests).toHaveLength(0);
    const owner = freshShard();
    await owner.ingest("a-0", [counterPoint("astra_errors_total", 1, { error_type: "not_found", endpoint: "unmatched" })], 0);
    await runInDurableObject(owner, (instance: MetricsAggregator) => instance.pushNow());
    expect(otlpMetrics(collector.requests[0]!.body).get("astra_errors_total").sum.dataPoints[0].asDouble).toBe(1);
  });

  it("re-pushes the whole state with a fresh heartbeat on every alarm, with no idle stop", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const shard = freshShard();
    await shard.ingest("a-0", [counterPoint("astra_false_positives_total", 1, { detector: "limit", severity: "LOW" }), gaugePoint("astra_detection_accuracy", 0.75, Date.now())], 0);
    const stamps: number[] = [];
    // Each alarm is a keepalive once the change was pushed; the schedule has no notion of
    // "idle for long" (nextPushDelayMillis below), so this holds after 11 minutes or 11 days.
    for (let i = 0; i < 4; i++) {
      const before = Date.now();
      expect(await runDurableObjectAlarm(shard)).toBe(true);
      const next = await runInDurableObject(shard, (_i, state) => state.storage.getAlarm());
      expect(next).not.toBeNull();
      expect(next! - before).toBeLessThanOrEqual(aggregatorConfig.keepaliveMillis + 1000);
      const pushed = otlpMetrics(collector.requests[i]!.body);
      expect(pushed.get("astra_false_positives_total").sum.dataPoints[0].asDouble).toBe(1);
      expect(pushed.get("astra_detection_accuracy").gauge.dataPoints[0].asDouble).toBe(0.75);
      const beat = pushed.get(HEARTBEAT_METRIC).gauge.dataPoints[0];
      expect(otlpAttributes(beat.attributes)).toEqual({ shard: "0" });
      stamps.push(beat.asDouble);
    }
    expect(collector.requests).toHaveLength(4);
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]!).toBeGreaterThan(stamps[i - 1]!);
    expect(aggregatorConfig.keepaliveMillis).toBeLessThanOrEqual(30_000);
  });

  it("keeps its alarm through failed pushes, backing off", async () => {
    const collector = captureCollector(ENDPOINT, () => 400); // not retried inside the exporter
    restore = collector.restore;
    const shard = freshShard();
    await shard.ingest("a-0", [counterPoint("astra_errors_total", 2, { error_type: "unavailable", endpoint: "/health" })], 0);
    for (let i = 0; i < 3; i++) {
      const before = Date.now();
      await runDurableObjectAlarm(shard);
      const next = await runInDurableObject(shard, (_i, state) => state.storage.getAlarm());
      expect(next! - before).toBeLessThanOrEqual(aggregatorConfig.maxRetryMillis + 1000);
    }
    expect((await shard.stats()).pushFailures).toBeGreaterThanOrEqual(3);
  });

  it("ends its alarm only when it owns no stream", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const orphan = freshShard(); // shard 3 of a larger, older shard count: owns nothing under 1 shard
    await orphan.ingest("a-0", [counterPoint("astra_errors_total", 1, { error_type: "not_found", endpoint: "unmatched" })], 3);
    await runDurableObjectAlarm(orphan);
    expect(await runInDurableObject(orphan, (_i, state) => state.storage.getAlarm())).toBeNull();
    expect(collector.requests).toHaveLength(0);
  });
});

describe("MetricsAggregator push timing", () => {
  it("pushes a change at once after a quiet interval, else one interval after the last push", async () => {
    const collector = captureCollector(ENDPOINT);
    restore = collector.restore;
    const shard = freshShard();
    await shard.ingest("a-0", [counterPoint("astra_timing_total", 1)]);
    const pushedAt = Date.now();
    await runDurableObjectAlarm(shard); // pushes; the next alarm is the keepalive
    await shard.ingest("a-1", [counterPoint("astra_timing_total", 1)]);
    const busy = await runInDurableObject(shard, (_i, state) => state.storage.getAlarm());
    expect(busy).toBeGreaterThanOrEqual(pushedAt + aggregatorConfig.pushIntervalMillis);
    expect(busy).toBeLessThan(Date.now() + aggregatorConfig.keepaliveMillis);
    await runDurableObjectAlarm(shard);
    // Quiet for more than an interval (the wait is at least that on any machine).
    await new Promise((resolve) => setTimeout(resolve, aggregatorConfig.pushIntervalMillis + 50));
    await shard.ingest("a-2", [counterPoint("astra_timing_total", 1)]);
    const quiet = await runInDurableObject(shard, (_i, state) => state.storage.getAlarm());
    expect(quiet === null || quiet <= Date.now()).toBe(true);
  });
});

describe("nextPushDelayMillis", () => {
  const config = { pushIntervalMillis: 1000, keepaliveMillis: 15_000, maxRetryMillis: 10_000 };
  it("pushes a change after pushIntervalMillis and keeps alive every keepaliveMillis otherwise", () => {
    expect(nextPushDelayMillis({ ok: true, failures: 0, dirty: true }, config)).toBe(1000);
    expect(nextPushDelayMillis({ ok: true, failures: 0, dirty: false }, config)).toBe(15_000);
  });
  it("backs off exponentially after failures, capped at maxRetryMillis", () => {
    expect([1, 2, 3, 4, 5, 9].map((failures) => nextPushDelayMillis({ ok: false, failures, dirty: true }, config))).toEqual([1000, 2000, 4000, 8000, 10_000, 10_000]);
  });
});
