/** Retries: bounded in attempts and in total time, full-jitter backoff, and what they record. */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { backoffDelay, retry } from "../../../lib/reliability/retry";
import { metricReader } from "../../../lib/telemetry/meter-provider";
import { toMetricPoints, type MetricPoint } from "../../../lib/telemetry/export/points";

async function drain(): Promise<MetricPoint[]> {
  return toMetricPoints((await metricReader.collect()).resourceMetrics);
}
const sum = (points: MetricPoint[], name: string, attrs: Record<string, string>) =>
  points.filter((p) => p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => n + (p.value ?? p.histogram?.count ?? 0), 0);

/** A fake clock whose sleep advances it, and which records every wait. */
function fakeTime() {
  let t = 0;
  const waits: number[] = [];
  return {
    now: () => t,
    sleep: async (ms: number) => {
      waits.push(ms);
      t += ms;
    },
    advance: (ms: number) => (t += ms),
    waits,
  };
}

beforeEach(async () => {
  await drain();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("retry()", () => {
  it("stops after maxAttempts and rethrows the last error", async () => {
    const time = fakeTime();
    let calls = 0;
    const err = await retry("mission.getPhase", async (attempt) => {
      calls++;
      throw new Error(`fail ${attempt}`);
    }, { maxAttempts: 4, maxTotalMillis: 60_000, sleep: time.sleep, now: time.now, random: () => 0.5 }).catch((e: Error) => e);
    expect((err as Error).message).toBe("fail 4");
    expect(calls).toBe(4);
    expect(time.waits).toHaveLength(3);
    const points = await drain();
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.getPhase", outcome: "retry" })).toBe(3);
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.getPhase", outcome: "failure" })).toBe(1);
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.getPhase", outcome: "success" })).toBe(0);
    expect(sum(points, "astra_retry_latency_seconds", { endpoint: "mission.getPhase" })).toBe(1);
  });

  it("never starts a wait that would pass maxTotalMillis", async () => {
    const time = fakeTime();
    const waitEnds: number[] = [];
    let calls = 0;
    await expect(
      retry("mission.history", async () => {
        calls++;
        time.advance(400); // each attempt takes 400 ms
        throw new Error("slow failure");
      }, {
        maxAttempts: 100,
        baseDelayMillis: 100,
        maxDelayMillis: 100,
        maxTotalMillis: 1000,
        sleep: async (ms) => {
          await time.sleep(ms);
          waitEnds.push(time.now());
        },
        now: time.now,
        random: () => 0.999,
      }),
    ).rejects.toThrow("slow failure");
    // 400 → wait 99 (ends 499) → 899 → wait 99 (ends 998) → 1398 → a wait would end at 1497: stop.
    expect(calls).toBe(3);
    expect(waitEnds).toEqual([499, 998]);
    // So the total is bounded by maxTotalMillis plus one attempt.
    expect(time.now()).toBeLessThanOrEqual(1000 + 400);
  });

  it("succeeds after retries, counting success, retry, retry_succeeded and the time spent", async () => {
    const time = fakeTime();
    const result = await retry("mission.stats", async (attempt) => {
      if (attempt < 3) throw new Error("flaky");
      return attempt;
    }, { sleep: time.sleep, now: time.now, random: () => 0.5 });
    expect(result).toBe(3);
    const points = await drain();
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.stats", outcome: "retry" })).toBe(2);
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.stats", outcome: "success" })).toBe(1);
    expect(sum(points, "astra_recovery_actions_total", { action_type: "retry_succeeded", status: "success" })).toBe(1);
    const latency = points.find((p) => p.name === "astra_retry_latency_seconds" && p.attributes.endpoint === "mission.stats");
    expect(latency?.histogram?.count).toBe(1);
    expect(latency?.histogram?.sum).toBeCloseTo(time.waits.reduce((a, b) => a + b, 0) / 1000, 6);
  });

  it("does not retry an error isRetryable refuses, nor a first-attempt success", async () => {
    let calls = 0;
    await expect(
      retry("mission.latest", async () => {
        calls++;
        throw new RangeError("permanent");
      }, { isRetryable: (e) => !(e instanceof RangeError), sleep: async () => undefined }),
    ).rejects.toThrow("permanent");
    expect(calls).toBe(1);
    await expect(retry("mission.latest", async () => "first")).resolves.toBe("first");
    const points = await drain();
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.latest", outcome: "failure" })).toBe(1);
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.latest", outcome: "success" })).toBe(1);
    expect(sum(points, "astra_retry_attempts_total", { endpoint: "mission.latest", outcome: "retry" })).toBe(0);
    expect(points.some((p) => p.name === "astra_retry_latency_seconds")).toBe(false);
  });

  it("backs off exponentially with full jitter, capped", () => {
    expect(backoffDelay(1, () => 0.999, 50, 1000)).toBe(49);
    expect(backoffDelay(2, () => 0.999, 50, 1000)).toBe(99);
    expect(backoffDelay(3, () => 0.999, 50, 1000)).toBe(199);
    expect(backoffDelay(10, () => 0.999, 50, 1000)).toBe(999);
    expect(backoffDelay(3, () => 0, 50, 1000)).toBe(0);
    // Jitter spreads the waits: many draws are not all equal and stay under the cap.
    const draws = Array.from({ length: 200 }, () => backoffDelay(4, Math.random, 50, 1000));
    expect(new Set(draws).size).toBeGreaterThan(20);
    expect(Math.max(...draws)).toBeLessThan(400);
  });

  it("is bounded with the default sleep and clock too (defaults: 3 attempts within 2 s)", async () => {
    // No sleep or clock passed: the defaults (setTimeout, Date.now) run, on vitest's fake timers,
    // so the time spent is exactly the waits retry() scheduled, however slow the machine. The
    // largest jitter draw makes each wait its cap: 49 ms (base 50), then 99 ms.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const started = Date.now();
    let calls = 0;
    const outcome = expect(
      retry("mission.ping", async () => {
        calls++;
        throw new Error("down");
      }, { random: () => 0.999 }),
    ).rejects.toThrow("down");
    await vi.advanceTimersByTimeAsync(48);
    expect(calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(98);
    expect(calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    await outcome;
    expect(calls).toBe(3);
    expect(vi.getTimerCount()).toBe(0); // no third wait
    expect(Date.now() - started).toBe(49 + 99);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
