import { describe, expect, it } from "vitest";
import { DETECTORS } from "../../../lib/domain/detector";
import { SEVERITY_LEVELS } from "../../../lib/domain/phase-policy";
import { declareKnownSeries, resetKnownSeries } from "../../../lib/mission/known-series";
import { metricReader } from "../../../lib/telemetry/meter-provider";
import { toMetricPoints, type MetricPoint } from "../../../lib/telemetry/export/points";
import { IDEMPOTENT_OPERATIONS, RETRY_OUTCOMES } from "../../../lib/reliability/retry";

const collect = async (): Promise<MetricPoint[]> => toMetricPoints((await metricReader.collect()).resourceMetrics);
const named = (points: MetricPoint[], name: string) => points.filter((p) => p.name === name);

describe("declareKnownSeries", () => {
  it("declares every closed label set that panels rate or divide at 0, once, and then sends nothing more", async () => {
    await collect(); // whatever earlier tests recorded
    resetKnownSeries();
    declareKnownSeries(["/api/v1/telemetry", "/health", "/health"]);
    declareKnownSeries(["/other"]); // once per isolate: a second call adds nothing
    const points = await collect();

    for (const name of ["astra_anomalies_detected_total", "astra_false_positives_total"]) {
      const series = named(points, name);
      expect(series).toHaveLength(SEVERITY_LEVELS.length * DETECTORS.length);
      expect(series.every((p) => p.kind === "counter" && p.value === 0)).toBe(true);
      expect(new Set(series.map((p) => `${p.attributes.severity}/${p.attributes.detector}`)).size).toBe(16);
    }
    expect(named(points, "astra_circuit_breaker_transitions_total").map((p) => `${p.attributes.name}:${p.attributes.from_state}>${p.attributes.to_state}`).sort()).toEqual(
      ["collector", "metrics_aggregator", "storage"].flatMap((n) => [`${n}:CLOSED>OPEN`, `${n}:HALF_OPEN>CLOSED`, `${n}:HALF_OPEN>OPEN`, `${n}:OPEN>HALF_OPEN`]).sort(),
    );
    expect(named(points, "astra_retry_attempts_total")).toHaveLength(IDEMPOTENT_OPERATIONS.length * RETRY_OUTCOMES.length);
    expect(named(points, "astra_recovery_actions_total").map((p) => p.attributes.action_type).sort()).toEqual(
      ["close_breaker", "escalate_safe_mode", "fallback_isolate_cache", "open_breaker", "retry_succeeded"],
    );
    expect(named(points, "astra_chaos_injections_total")).toHaveLength(3 * 3);
    expect(named(points, "astra_health_check_failures_total")).toHaveLength(3);
    expect(named(points, "astra_errors_total").map((p) => `${p.attributes.endpoint} ${p.attributes.error_type}`).sort()).toEqual([
      "/api/v1/telemetry internal_error",
      "/api/v1/telemetry unavailable",
      "/health internal_error",
      "/health unavailable",
    ]);
    // Gauges are not seeded: no made-up accuracy, no fleet breaker state overwritten.
    expect(named(points, "astra_detection_accuracy")).toEqual([]);
    expect(named(points, "astra_circuit_breaker_state")).toEqual([]);
    expect(points.every((p) => p.value === 0)).toBe(true);

    // Declared streams are not re-sent by later collections: only real recordings travel.
    expect(await collect()).toEqual([]);
  });
});
