/** ChaosControl: fault lifetimes, exactly-once recovery, and the fleet view of the breakers. */
import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { freezeChaosClock } from "./support";
import { BOARD_TTL_MS } from "../../../lib/objects/chaos-control";
import { guardTransport } from "../../../lib/reliability/guard";
import { breaker } from "../../../lib/reliability/breakers";
import { CircuitOpenError } from "../../../lib/reliability/circuit-breaker";
import { ChaosFaultError, invalidateFaultView } from "../../../lib/reliability/chaos";

const control = () => env.CHAOS_CONTROL.get(env.CHAOS_CONTROL.idFromName("chaos"));

/**
 * Date stands still (faked; the breakers, the retries, guardDependency and ChaosControl all read
 * Date.now) from a minute in the past, and the chaos view's timers never fire: no breaker
 * cool-down or slow-call limit, no retry budget and no ChaosControl timeout depends on how fast
 * the machine is.
 */
freezeChaosClock();

describe("ChaosControl", () => {
  it("ends a fault by expiry, lists it as ended, and lets only the first isolate record its recovery", async () => {
    const stub = control();
    const t0 = 1_900_000_000_000;
    const { fault } = (await stub.inject({ type: "error", target: "storage", duration_s: 10 }, t0)) as any;
    expect((await stub.list(t0 + 9_999)).active.map((f) => f.id)).toEqual([fault.id]);
    // Not ended yet: cannot recover.
    expect((await stub.markRecovered(fault.id, t0 + 5000, t0 + 5000)).recorded).toBe(false);
    const later = await stub.list(t0 + 10_000);
    expect(later.active).toEqual([]);
    expect(later.recent[0]).toMatchObject({ id: fault.id, endReason: "expired", endedAtMs: t0 + 10_000, recoveredAtMs: null });
    const sync = await stub.sync("isolate-a", {}, t0 + 10_500);
    expect(sync.unrecovered.map((f) => f.id)).toEqual([fault.id]);
    const first = await stub.markRecovered(fault.id, t0 + 12_000, t0 + 12_000);
    const second = await stub.markRecovered(fault.id, t0 + 12_100, t0 + 12_100);
    expect(first.recorded).toBe(true);
    expect(second.recorded).toBe(false);
    expect(second.fault?.recoveredAtMs).toBe(t0 + 12_000);
    expect((await stub.sync("isolate-a", {}, t0 + 13_000)).unrecovered).toEqual([]);
  });

  it("shows the worst state any live isolate reported, forgetting isolates that stopped reporting", async () => {
    const stub = control();
    const t0 = 1_900_000_000_000;
    await stub.sync("a", { storage: "CLOSED", collector: "CLOSED" }, t0);
    await stub.sync("b", { storage: "HALF_OPEN" }, t0 + 10);
    expect((await stub.sync("c", { storage: "CLOSED" }, t0 + 20)).fleet).toEqual({ storage: "HALF_OPEN", collector: "CLOSED" });
    await stub.sync("a", { storage: "OPEN", collector: "CLOSED" }, t0 + 30);
    expect((await stub.sync("c", { storage: "CLOSED" }, t0 + 40)).fleet.storage).toBe("OPEN");
    // "a" and "b" go quiet; "c" keeps reporting CLOSED: once their entries are stale, the fleet is CLOSED.
    const fleet = (await stub.sync("c", { storage: "CLOSED" }, t0 + 30 + BOARD_TTL_MS + 1)).fleet;
    expect(fleet).toEqual({ storage: "CLOSED" });
  });
});

describe("guardTransport (the hook for the telemetry transports)", () => {
  it("counts a refused export as a failure and fails fast once the collector breaker is open", async () => {
    let sent = 0;
    const exportSpans = guardTransport("collector", async (_e: typeof env, spans: number[]) => {
      sent += spans.length;
      return false;
    });
    for (let i = 0; i < 3; i++) await expect(exportSpans(env, [1])).rejects.toThrow("collector refused the export");
    expect(breaker("collector").state).toBe("OPEN");
    await expect(exportSpans(env, [1])).rejects.toBeInstanceOf(CircuitOpenError);
    expect(sent).toBe(3);
  });

  it("applies chaos faults of its target: an outage never reaches the transport", async () => {
    await control().inject({ type: "outage", target: "metrics_aggregator", duration_s: 30 });
    invalidateFaultView();
    let called = 0;
    const send = guardTransport("metrics_aggregator", async () => {
      called++;
    });
    await expect(send(env)).rejects.toBeInstanceOf(ChaosFaultError);
    expect(called).toBe(0);
  });
});

describe("guardTransport reports the dependency's health", () => {
  it("shows the collector degraded in /health after a refused export, ok after a good one", async () => {
    const { call } = await import("../support/api");
    const { dependencyStatus } = await import("../../../lib/reliability/dependency-health");
    let answer = false;
    const exportSpans = guardTransport("collector", async () => answer);
    await expect(exportSpans(env)).rejects.toThrow();
    expect(dependencyStatus("collector").status).toBe("degraded");
    const health = await call("GET", "/health");
    expect(health.body.dependencies.collector).toMatchObject({ status: "degraded", circuit_breaker: "CLOSED" });
    answer = true;
    await expect(exportSpans(env)).resolves.toBe(true);
    expect(dependencyStatus("collector")).toMatchObject({ status: "ok", consecutive_failures: 0 });
  });
});
