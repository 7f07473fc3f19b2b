import { describe, expect, it } from "vitest";
import { adminToken, anomalousPoint, call, deliverToFleet, nominalPoint, operatorToken } from "../support/api";

describe("health and status", () => {
  it.each(["/", "/health"])("%s reports version, uptime and each dependency", async (path) => {
    const { status, body } = await call("GET", path);
    expect(status).toBe(200);
    expect(body).toMatchObject({ service: "astraguard-edge", version: expect.any(String), uptime_seconds: expect.any(Number), mission_phase: "NOMINAL_OPS" });
    expect(Object.keys(body.dependencies)).toEqual(["storage", "collector", "metrics_aggregator"]);
    expect(body.dependencies.storage.status).toBe("ok");
  });

  it("GET /api/v1/status lists components and the phase", async () => {
    const { status, body } = await call("GET", "/api/v1/status");
    expect(status).toBe(200);
    expect(body.components.api.status).toBe("healthy");
    expect(body.mission_phase).toBe("NOMINAL_OPS");
  });
});

describe("POST /api/v1/telemetry", () => {
  it("answers a nominal point with the full anomaly response", async () => {
    const { status, body } = await call("POST", "/api/v1/telemetry", { body: nominalPoint() });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      is_anomaly: false,
      anomaly_score: 0,
      anomaly_type: "NONE",
      severity_level: "LOW",
      mission_phase: "NOMINAL_OPS",
      recommended_action: "LOG_ONLY",
      escalation_level: "NONE",
      is_allowed: true,
      should_escalate_to_safe_mode: false,
      recurrence_count: 0,
      persisted: true,
    });
    for (const key of ["id", "severity_score", "allowed_actions", "confidence", "reasoning", "timestamp"]) expect(body).toHaveProperty(key);
    expect(body.id).toMatch(/^tp_[0-9a-f]{32}_default$/);
  });

  it("detects an anomaly, stores it, and counts recurrences of the same source and type", async () => {
    const first = await call("POST", "/api/v1/telemetry", { body: { voltage: 20, temperature: 20, gyro: 0, satellite_id: "sat-a" } });
    expect(first.body).toMatchObject({ is_anomaly: true, anomaly_type: "POWER_UNDERVOLTAGE", recurrence_count: 0 });
    expect(first.body.id).toMatch(/^an_/);
    const second = await call("POST", "/api/v1/telemetry", { body: { voltage: 20, temperature: 20, gyro: 0, satellite_id: "sat-a" } });
    expect(second.body.recurrence_count).toBe(1);
    expect(second.body.severity_score).toBeGreaterThan(first.body.severity_score);
    const other = await call("POST", "/api/v1/telemetry", { body: { voltage: 20, temperature: 20, gyro: 0, satellite_id: "sat-b" } });
    expect(other.body.recurrence_count).toBe(0);
  });

  it("escalates a critical anomaly to SAFE_MODE and says so", async () => {
    const { body } = await call("POST", "/api/v1/telemetry", { body: anomalousPoint() });
    expect(body).toMatchObject({ is_anomaly: true, severity_level: "CRITICAL", should_escalate_to_safe_mode: true, escalation_level: "SAFE_MODE" });
    const phase = await call("GET", "/api/v1/phase");
    expect(phase.body.phase).toBe("SAFE_MODE");
    expect(phase.body.transitions[0].reason).toMatch(/^auto: CRITICAL/);
  });

  it("uses the source's history for rate of change", async () => {
    // A fall of 2 V in 1 s, inside the band: only the source's previous reading shows it.
    await call("POST", "/api/v1/telemetry", { body: nominalPoint({ satellite_id: "sat-r", voltage: 28, timestamp: "2026-11-25T10:00:00Z" }) });
    const { body } = await call("POST", "/api/v1/telemetry", { body: nominalPoint({ satellite_id: "sat-r", voltage: 26, timestamp: "2026-11-25T10:00:01Z" }) });
    expect(body.anomaly_type).toBe("RATE_OF_CHANGE");
    expect(body.timestamp).toBe("2026-11-25T10:00:01.000Z");
  });
});

describe("POST /api/v1/telemetry/batch and GET latest", () => {
  it("answers one response per point plus totals", async () => {
    const telemetry = [nominalPoint(), nominalPoint({ voltage: 29 }), { voltage: 15, temperature: 20, gyro: 0, satellite_id: "sat-x" }];
    const { status, body } = await call("POST", "/api/v1/telemetry/batch", { body: { telemetry } });
    expect(status).toBe(200);
    expect(body.total_processed).toBe(3);
    expect(body.anomalies_detected).toBe(1);
    expect(body.results).toHaveLength(3);
    expect(body.results[2].satellite_id).toBe("sat-x");
    const latest = await call("GET", "/api/v1/telemetry/latest");
    expect(latest.status).toBe(200);
    expect(latest.body.point.id).toBe(body.results[2].id);
  });

  it("judges a batch's points exactly as the same points sent one by one", async () => {
    // A steady warming of 1 °C a minute: each point sees the satellite's state after the one before.
    const points = (sat: string) =>
      Array.from({ length: 14 }, (_, i) => nominalPoint({ satellite_id: sat, temperature: 10 + i, timestamp: new Date(Date.UTC(2026, 10, 25, 10, i)).toISOString() }));
    const batch = (await call("POST", "/api/v1/telemetry/batch", { body: { telemetry: points("batch-sat") } })).body.results;
    const single = [];
    for (const p of points("single-sat")) single.push((await call("POST", "/api/v1/telemetry", { body: p })).body);
    const verdict = (r: any) => [r.is_anomaly, r.anomaly_type, r.anomaly_score];
    expect(batch.map(verdict)).toEqual(single.map(verdict));
  });

  it("accepts the largest batch, 1000 points", async () => {
    const telemetry = Array.from({ length: 1000 }, (_, i) => nominalPoint({ satellite_id: `sat-${i % 10}`, voltage: 27 + (i % 3) * 0.1 }));
    const { status, body } = await call("POST", "/api/v1/telemetry/batch", { body: { telemetry } });
    expect(status).toBe(200);
    expect(body.total_processed).toBe(1000);
  });

  it("GET latest is 404 before any telemetry", async () => {
    const { status, body } = await call("GET", "/api/v1/telemetry/latest");
    expect(status).toBe(404);
    expect(body.error.code).toBe("not_found");
  });
});

describe("mission phase", () => {
  it("reads the phase with its policy", async () => {
    const { body } = await call("GET", "/api/v1/phase");
    expect(body).toMatchObject({ phase: "NOMINAL_OPS", valid_transitions: ["PAYLOAD_OPS", "SAFE_MODE"] });
    expect(body.allowed_actions).toContain("ENTER_SAFE_MODE");
  });

  it("changes phase with the admin token, refuses invalid transitions unless forced", async () => {
    const ok = await call("POST", "/api/v1/phase", { body: { phase: "PAYLOAD_OPS" }, token: adminToken() });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ changed: true, previous_phase: "NOMINAL_OPS", phase: "PAYLOAD_OPS" });
    const refused = await call("POST", "/api/v1/phase", { body: { phase: "LAUNCH" }, token: adminToken() });
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "invalid_transition", field: "phase" });
    expect(refused.body.error.message).toMatch(/only NOMINAL_OPS, SAFE_MODE/);
    const forced = await call("POST", "/api/v1/phase", { body: { phase: "LAUNCH", force: true, reason: "re-test" }, token: adminToken() });
    expect(forced.status).toBe(200);
    expect((await call("GET", "/api/v1/phase")).body.phase).toBe("LAUNCH");
  });

  it("refuses a phase change without a token (401) and with the operator token (403)", async () => {
    expect((await call("POST", "/api/v1/phase", { body: { phase: "SAFE_MODE" } })).status).toBe(401);
    const wrongScope = await call("POST", "/api/v1/phase", { body: { phase: "SAFE_MODE" }, token: operatorToken() });
    expect(wrongScope.status).toBe(403);
    expect((await call("GET", "/api/v1/phase")).body.phase).toBe("NOMINAL_OPS");
  });
});

describe("history, feedback and memory", () => {
  async function anomaly(voltage: number, timestamp: string) {
    return (await call("POST", "/api/v1/telemetry", { body: { voltage, temperature: 20, gyro: 0, timestamp, satellite_id: `h-${voltage}` } })).body;
  }

  it("filters anomaly history by time, severity and limit", async () => {
    const mild = await anomaly(22, "2026-11-25T09:00:00Z");
    const strong = await anomaly(14, "2026-11-25T11:00:00Z");
    // One satellite's history is its object's: exact at once.
    const own = await call("GET", "/api/v1/history/anomalies?satellite_id=h-14");
    expect(own.body).toMatchObject({ scope: "satellite", satellite_id: "h-14", count: 1 });
    expect(own.body.anomalies[0].id).toBe(strong.id);
    // The fleet's comes from the mission's index, which the satellites feed within about a second.
    await deliverToFleet();
    const all = await call("GET", "/api/v1/history/anomalies");
    expect(all.body.scope).toBe("fleet");
    expect(all.body.anomalies.map((a: any) => a.id)).toEqual([strong.id, mild.id]);
    const late = await call("GET", "/api/v1/history/anomalies?start_time=2026-11-25T10:00:00Z");
    expect(late.body.anomalies.map((a: any) => a.id)).toEqual([strong.id]);
    const severe = await call("GET", `/api/v1/history/anomalies?severity_min=${(mild.severity_score + strong.severity_score) / 2}`);
    expect(severe.body.anomalies.map((a: any) => a.id)).toEqual([strong.id]);
    const one = await call("GET", "/api/v1/history/anomalies?limit=1");
    expect(one.body).toMatchObject({ count: 1, limit: 1 });
  });

  it("labels a detection once, reports accuracy, and refuses a contradicting label", async () => {
    const a = await anomaly(20, "2026-11-25T09:00:00Z");
    const b = await anomaly(19, "2026-11-25T09:00:01Z");
    const fp = await call("POST", `/api/v1/anomalies/${a.id}/feedback`, { body: { false_positive: true }, token: operatorToken() });
    expect(fp.status).toBe(200);
    expect(fp.body).toMatchObject({ status: "labelled", detection_accuracy: 0, labelled: 1, false_positives: 1 });
    const tp = await call("POST", `/api/v1/anomalies/${b.id}/feedback`, { body: { false_positive: false }, token: adminToken() });
    expect(tp.body).toMatchObject({ detection_accuracy: 0.5, labelled: 2 });
    const again = await call("POST", `/api/v1/anomalies/${a.id}/feedback`, { body: { false_positive: true }, token: operatorToken() });
    expect(again.body.status).toBe("unchanged");
    const conflict = await call("POST", `/api/v1/anomalies/${a.id}/feedback`, { body: { false_positive: false }, token: operatorToken() });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.field).toBe("false_positive");
  });

  it("reports recurrence memory and isolate cache statistics", async () => {
    await anomaly(20, "2026-11-25T09:00:00Z");
    await call("POST", "/api/v1/telemetry", { body: nominalPoint() });
    await call("POST", "/api/v1/telemetry", { body: nominalPoint() });
    const { status, body } = await call("GET", "/api/v1/memory/stats");
    expect(status).toBe(200);
    expect(body.scope).toBe("fleet");
    expect(body.recurrence_memory).toMatchObject({ satellites: 2 });
    expect(body.registration).toEqual({ mode: "auto", maxSatellites: 1000 });
    await deliverToFleet();
    expect((await call("GET", "/api/v1/memory/stats")).body.recurrence_memory).toMatchObject({ anomalies: 1, satellites: 2 });
    const one = await call("GET", "/api/v1/memory/stats?satellite_id=default");
    expect(one.body).toMatchObject({ scope: "satellite", recurrence_memory: { satellite_id: "default", anomalies: 0, pending_fleet_items: 0 } });
    expect(body.isolate_cache.history.hits).toBeGreaterThan(0);
    expect(body.isolate_cache.history.entries).toBeGreaterThan(0);
    expect(body.isolate_cache.history.bytes).toBeGreaterThan(0);
  });
});
