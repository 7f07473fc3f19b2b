/** guardDependency: retries only when asked, never through an open breaker, and how long failure runs lasted. */
import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { freezeChaosClock } from "./support";
import { breaker } from "../../../lib/reliability/breakers";
import { CircuitOpenError } from "../../../lib/reliability/circuit-breaker";
import { guardDependency, resetFailureRuns } from "../../../lib/reliability/guard";
import { metricReader } from "../../../lib/telemetry/meter-provider";
import { toMetricPoints, type MetricPoint } from "../../../lib/telemetry/export/points";

async function drain(): Promise<MetricPoint[]> {
  return toMetricPoints((await metricReader.collect()).resourceMetrics);
}

beforeEach(async () => {
  resetFailureRuns();
  await drain();
});

/**
 * Date stands still (faked; the breakers, the retries, guardDependency and ChaosControl all read
 * Date.now) from a minute in the past, and the chaos view's timers never fire: no breaker
 * cool-down or slow-call limit, no retry budget and no ChaosControl timeout depends on how fast
 * the machine is.
 */
freezeChaosClock();

const fail = () => Promise.reject(new Error("down"));

describe("guardDependency", () => {
  it("retries a named idempotent operation, and nothing else", async () => {
    let plain = 0;
    await expect(guardDependency(env, "storage", () => (plain++, fail()))).rejects.toThrow("down");
    expect(plain).toBe(1);
    let read = 0;
    await expect(guardDependency(env, "storage", () => (read++, fail()), { retry: "mission.stats", retryOptions: { sleep: async () => undefined } })).rejects.toThrow("down");
    expect(read).toBe(3);
  });

  it("does not retry through an open breaker", async () => {
    for (let i = 0; i < 3; i++) await expect(guardDependency(env, "collector", fail)).rejects.toThrow("down"); // threshold 3
    expect(breaker("collector").state).toBe("OPEN");
    let calls = 0;
    const err = await guardDependency(env, "collector", async () => void calls++, { retry: "mission.latest" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(0);
  });

  it("records how long a run of failures lasted when the dependency answers again", async () => {
    await expect(guardDependency(env, "metrics_aggregator", fail)).rejects.toThrow();
    vi.setSystemTime(Date.now() + 120); // was a real sleep of 120 ms
    await expect(guardDependency(env, "metrics_aggregator", fail)).rejects.toThrow();
    await expect(guardDependency(env, "metrics_aggregator", async () => "back")).resolves.toBe("back");
    await expect(guardDependency(env, "metrics_aggregator", async () => "still fine")).resolves.toBe("still fine");
    const points = (await drain()).filter((p) => p.name === "astra_error_resolution_time_seconds");
    expect(points.map((p) => p.attributes)).toEqual([{ error_type: "metrics_aggregator_unavailable" }]);
    expect(points[0]!.histogram!.count).toBe(1); // one run, recorded once
    expect(points[0]!.histogram!.sum).toBeCloseTo(0.12, 9); // from the first failure to the first success
    expect(points[0]!.histogram!.sum).toBeGreaterThanOrEqual(0.1);
    expect(points[0]!.histogram!.sum).toBeLessThan(2);
  });
});
