/** The breaker's state machine, on a fake clock, and what it records. */
import { beforeEach, describe, expect, it } from "vitest";
import { BREAKER_STATE_VALUE, CircuitBreaker, CircuitOpenError, type BreakerState } from "../../../lib/reliability/circuit-breaker";
import { metricReader } from "../../../lib/telemetry/meter-provider";
import { toMetricPoints, type MetricPoint } from "../../../lib/telemetry/export/points";

async function drain(): Promise<MetricPoint[]> {
  return toMetricPoints((await metricReader.collect()).resourceMetrics);
}
const sum = (points: MetricPoint[], name: string, attrs: Record<string, string>) =>
  points.filter((p) => p.name === name && Object.entries(attrs).every(([k, v]) => p.attributes[k] === v)).reduce((n, p) => n + (p.value ?? 0), 0);

const ok = () => Promise.resolve("ok");
const boom = () => Promise.reject(new Error("dependency down"));

function fixture(options: ConstructorParameters<typeof CircuitBreaker>[1] = {}) {
  let t = 1_000_000;
  const transitions: Array<[BreakerState, BreakerState]> = [];
  const breaker = new CircuitBreaker("test_dep", { now: () => t, onTransition: (from, to) => transitions.push([from, to]), ...options });
  return { breaker, transitions, advance: (ms: number) => (t += ms) };
}

async function fail(breaker: CircuitBreaker, times: number): Promise<void> {
  for (let i = 0; i < times; i++) await expect(breaker.execute(boom)).rejects.toThrow("dependency down");
}

beforeEach(async () => {
  await drain();
});

describe("CircuitBreaker", () => {
  it("opens after N consecutive failures and then fails fast without calling the dependency", async () => {
    const { breaker, transitions } = fixture({ failureThreshold: 3 });
    await fail(breaker, 2);
    expect(breaker.state).toBe("CLOSED");
    await breaker.execute(ok); // a success resets the consecutive count
    await fail(breaker, 2);
    expect(breaker.state).toBe("CLOSED");
    await fail(breaker, 1);
    expect(breaker.state).toBe("OPEN");
    expect(transitions).toEqual([["CLOSED", "OPEN"]]);

    let called = 0;
    const err = await breaker.execute(async () => void called++).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CircuitOpenError);
    expect((err as CircuitOpenError).retryAfterMillis).toBeGreaterThan(0);
    expect((err as CircuitOpenError).retryAfterMillis).toBe(3000); // the default cool-down: the clock has not moved
    expect(called).toBe(0);
    expect(breaker.snapshot().rejected).toBe(1);
  });

  it("goes HALF_OPEN after the cool-down, closes on a successful probe", async () => {
    const { breaker, transitions, advance } = fixture({ failureThreshold: 2, coolDownMillis: 5000 });
    await fail(breaker, 2);
    advance(4999);
    expect(breaker.state).toBe("OPEN");
    advance(1);
    expect(breaker.state).toBe("HALF_OPEN");
    await expect(breaker.execute(ok)).resolves.toBe("ok");
    expect(breaker.state).toBe("CLOSED");
    expect(transitions).toEqual([
      ["CLOSED", "OPEN"],
      ["OPEN", "HALF_OPEN"],
      ["HALF_OPEN", "CLOSED"],
    ]);
  });

  it("re-opens on a failed probe, with a fresh cool-down", async () => {
    const { breaker, transitions, advance } = fixture({ failureThreshold: 2, coolDownMillis: 1000 });
    await fail(breaker, 2);
    advance(1000);
    await fail(breaker, 1); // the probe
    expect(breaker.state).toBe("OPEN");
    advance(999);
    expect(breaker.state).toBe("OPEN");
    advance(1);
    expect(breaker.state).toBe("HALF_OPEN");
    expect(transitions.map(([f, t]) => `${f}>${t}`)).toEqual(["CLOSED>OPEN", "OPEN>HALF_OPEN", "HALF_OPEN>OPEN", "OPEN>HALF_OPEN"]);
  });

  it("lets one probe through at a time while HALF_OPEN", async () => {
    const { breaker, advance } = fixture({ failureThreshold: 1, coolDownMillis: 10 });
    await fail(breaker, 1);
    advance(10);
    let release!: () => void;
    const probe = breaker.execute(() => new Promise<string>((r) => (release = () => r("probed"))));
    await expect(breaker.execute(ok)).rejects.toBeInstanceOf(CircuitOpenError);
    release();
    await expect(probe).resolves.toBe("probed");
    expect(breaker.state).toBe("CLOSED");
    await expect(breaker.execute(ok)).resolves.toBe("ok");
  });

  it("opens on the failure ratio in the window once enough calls were seen", async () => {
    const { breaker, advance } = fixture({ failureThreshold: 100, failureRateThreshold: 0.5, minimumCalls: 10, windowMillis: 1000 });
    // Alternating: never 2 failures in a row, but half of all calls fail.
    for (let i = 0; i < 9; i++) {
      if (i % 2 === 0) await fail(breaker, 1);
      else await breaker.execute(ok);
    }
    expect(breaker.state).toBe("CLOSED"); // 9 calls < minimumCalls
    await breaker.execute(ok); // 10 calls, 5 failures
    expect(breaker.state).toBe("CLOSED"); // the ratio is only checked on a failure
    await fail(breaker, 1); // 11 calls, 6 failures
    expect(breaker.state).toBe("OPEN");

    // Outcomes older than the window do not count.
    const { breaker: other, advance: advanceOther } = fixture({ failureThreshold: 100, minimumCalls: 4, windowMillis: 1000 });
    await fail(other, 3);
    advanceOther(1001);
    await other.execute(ok);
    await fail(other, 1);
    expect(other.snapshot()).toMatchObject({ state: "CLOSED", windowCalls: 2, windowFailures: 1 });
    void advance;
  });

  it("counts a slow success as a failure, and ignores errors isFailure rejects", async () => {
    const { breaker, advance } = fixture({ failureThreshold: 2, slowCallMillis: 100 });
    const slow = async () => {
      advance(150);
      return "late";
    };
    await expect(breaker.execute(slow)).resolves.toBe("late");
    await expect(breaker.execute(slow)).resolves.toBe("late");
    expect(breaker.state).toBe("OPEN");

    const { breaker: picky } = fixture({ failureThreshold: 1, isFailure: (e) => !(e instanceof TypeError) });
    await expect(picky.execute(() => Promise.reject(new TypeError("caller's fault")))).rejects.toThrow(TypeError);
    expect(picky.state).toBe("CLOSED");
  });

  it("records transitions {name, from_state, to_state} and open/close recovery actions", async () => {
    const { breaker, advance } = fixture({ failureThreshold: 1, coolDownMillis: 10 });
    await fail(breaker, 1);
    advance(10);
    await breaker.execute(ok);
    const points = await drain();
    const t = "astra_circuit_breaker_transitions_total";
    expect(sum(points, t, { name: "test_dep", from_state: "CLOSED", to_state: "OPEN" })).toBe(1);
    expect(sum(points, t, { name: "test_dep", from_state: "OPEN", to_state: "HALF_OPEN" })).toBe(1);
    expect(sum(points, t, { name: "test_dep", from_state: "HALF_OPEN", to_state: "CLOSED" })).toBe(1);
    expect(sum(points, "astra_recovery_actions_total", { action_type: "open_breaker", status: "success" })).toBe(1);
    expect(sum(points, "astra_recovery_actions_total", { action_type: "close_breaker", status: "success" })).toBe(1);
    expect(BREAKER_STATE_VALUE).toEqual({ CLOSED: 0, OPEN: 1, HALF_OPEN: 2 });
  });
});
