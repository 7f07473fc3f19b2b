/**
 * Per-satellite state: one object per registered satellite, the mission object for what is global.
 * Batches fan out per satellite and judge like sequential requests; feedback, history, stats and
 * accuracy work across satellites; escalation happens once; hostile ids create nothing; data of the
 * single-object layout stays visible after the upgrade.
 */
import { createExecutionContext, env, listDurableObjectIds, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../../functions/app";
import { phaseCache } from "../../../lib/mission/mission-client";
import type { MissionState } from "../../../lib/objects/mission-state";
import { adminToken, anomalousPoint, call, deliverToFleet, nominalPoint, operatorToken } from "../support/api";

/** A request to the app with some vars changed (the registration policy is the Worker's, read per request). */
async function callWith(vars: Partial<Env>, method: string, path: string, body?: unknown, token?: string) {
  const ctx = createExecutionContext();
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await app.request(path, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) }, { ...env, ...vars } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: (await res.json()) as any };
}

const satelliteObjects = async () => (await listDurableObjectIds(env.SATELLITE_STATE)).length;
const strip = ({ id: _id, satellite_id: _s, ...rest }: Record<string, unknown>) => rest;

describe("a batch across satellites", () => {
  /** Three satellites, interleaved, with undervoltage twice (a recurrence) and a stuck current sensor. */
  const scenario = (prefix: string) =>
    Array.from({ length: 24 }, (_, i) => {
      const sat = `${prefix}-${i % 3}`;
      const t = new Date(Date.UTC(2026, 10, 25, 10, 0, i * 10)).toISOString();
      const voltage = i === 10 ? 22 : i === 13 ? 22.5 : 27 + (i % 5) * 0.2;
      return nominalPoint({ satellite_id: sat, timestamp: t, voltage, temperature: 15 + (i % 7), gyro: 0.01 * i, current: i % 3 === 2 && i >= 9 ? 2 : 1 + 0.01 * i, wheel_speed: 3000 + i });
    });

  it("is judged exactly as the same points sent one by one", async () => {
    // LAUNCH never escalates: both runs see the same phase whatever the detector finds.
    expect((await call("POST", "/api/v1/phase", { body: { phase: "LAUNCH", force: true }, token: adminToken() })).status).toBe(200);
    const batch = await call("POST", "/api/v1/telemetry/batch", { body: { telemetry: scenario("b") } });
    expect(batch.status).toBe(200);
    expect(batch.body.persisted).toBe(true);
    const sequential = [];
    for (const point of scenario("s")) sequential.push((await call("POST", "/api/v1/telemetry", { body: point })).body);
    for (let i = 0; i < sequential.length; i++) expect(strip(batch.body.results[i]), `point ${i}`).toEqual(strip(sequential[i]));
    // The scenario is not trivial: anomalies, a recurrence, more than one detector.
    expect(sequential.every((r) => r.mission_phase === "LAUNCH")).toBe(true);
    const anomalies = sequential.filter((r) => r.is_anomaly);
    expect(anomalies.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...anomalies.map((r) => r.recurrence_count))).toBeGreaterThan(0);
    expect(new Set(anomalies.map((r) => r.detector)).size).toBeGreaterThan(1);
    // Each satellite's object holds its own points only; ids name it.
    for (const r of batch.body.results) expect(r.id.endsWith(`_${r.satellite_id}`)).toBe(true);
    const one = await call("GET", "/api/v1/memory/stats?satellite_id=b-1");
    expect(one.body.recurrence_memory).toMatchObject({ satellite_id: "b-1", detector_state_bytes: expect.any(Number) });
    expect(one.body.recurrence_memory.detector_state_bytes).toBeGreaterThan(0);
  });
});

describe("queries, feedback and accuracy across satellites", () => {
  it("routes feedback by the id, counts accuracy fleet-wide, and serves each view with its scope", async () => {
    const a = (await call("POST", "/api/v1/telemetry", { body: { voltage: 20, temperature: 20, gyro: 0, satellite_id: "q-a" } })).body;
    const b = (await call("POST", "/api/v1/telemetry", { body: { voltage: 19, temperature: 20, gyro: 0, satellite_id: "q-b" } })).body;
    expect(a.id).toMatch(/^an_[0-9a-f]{32}_q-a$/);
    const fp = await call("POST", `/api/v1/anomalies/${a.id}/feedback`, { body: { false_positive: true }, token: operatorToken() });
    expect(fp.body).toMatchObject({ status: "labelled", detection_accuracy: 0, labelled: 1, false_positives: 1 });
    const tp = await call("POST", `/api/v1/anomalies/${b.id}/feedback`, { body: { false_positive: false }, token: operatorToken() });
    expect(tp.body).toMatchObject({ status: "labelled", detection_accuracy: 0.5, labelled: 2, false_positives: 1 });

    const own = await call("GET", "/api/v1/history/anomalies?satellite_id=q-b");
    expect(own.body.anomalies).toEqual([expect.objectContaining({ id: b.id, false_positive: false })]);
    const fleet = await call("GET", "/api/v1/history/anomalies");
    // Labels travel with the delivery the feedback made: the fleet index is current without waiting.
    expect(fleet.body.anomalies).toHaveLength(2);
    expect(fleet.body.anomalies.map((x: any) => [x.id, x.false_positive])).toEqual(expect.arrayContaining([[a.id, true], [b.id, false]]));
    const stats = await call("GET", "/api/v1/memory/stats");
    expect(stats.body.recurrence_memory).toMatchObject({ satellites: 2, anomalies: 2, labelled: 2, false_positives: 1, accuracy: 0.5 });
    const statsA = await call("GET", "/api/v1/memory/stats?satellite_id=q-a");
    expect(statsA.body.recurrence_memory).toMatchObject({ anomalies: 1, labelled: 1, false_positives: 1, accuracy: 0, pending_fleet_items: 0 });

    const latestA = await call("GET", "/api/v1/telemetry/latest?satellite_id=q-a");
    expect(latestA.body).toMatchObject({ scope: "satellite", point: { id: a.id, satellite_id: "q-a" } });
    const latest = await call("GET", "/api/v1/telemetry/latest");
    expect(latest.body).toMatchObject({ scope: "fleet", point: { id: b.id } });
  });

  it("the fleet index catches up from each satellite's outbox (alarm) without loss or double counting", async () => {
    const ids: string[] = [];
    for (const sat of ["o-1", "o-2", "o-3"]) for (const v of [20, 21]) ids.push((await call("POST", "/api/v1/telemetry", { body: { voltage: v, temperature: 20, gyro: 0, satellite_id: sat } })).body.id);
    await deliverToFleet();
    await deliverToFleet();
    const fleet = await call("GET", "/api/v1/history/anomalies?limit=1000");
    expect(fleet.body.anomalies.map((x: any) => x.id).sort()).toEqual([...ids].sort());
    expect((await call("GET", "/api/v1/memory/stats?satellite_id=o-2")).body.recurrence_memory.pending_fleet_items).toBe(0);
  });
});

describe("escalation across satellites", () => {
  it("changes the mission's phase exactly once under concurrent critical anomalies from several satellites", async () => {
    const sats = ["e-1", "e-2", "e-3", "e-4", "e-5", "e-6"];
    // Registered and cached first, so the critical points race on the escalation itself.
    for (const sat of sats) await call("POST", "/api/v1/telemetry", { body: nominalPoint({ satellite_id: sat }) });
    const answers = await Promise.all(sats.map((sat) => call("POST", "/api/v1/telemetry", { body: anomalousPoint({ satellite_id: sat }) })));
    for (const r of answers) expect(r.body).toMatchObject({ is_anomaly: true, severity_level: "CRITICAL", should_escalate_to_safe_mode: true });
    const phase = await call("GET", "/api/v1/phase");
    expect(phase.body.phase).toBe("SAFE_MODE");
    const auto = phase.body.transitions.filter((t: any) => t.to === "SAFE_MODE");
    expect(auto).toHaveLength(1);
    expect(auto[0].reason).toMatch(/^auto: CRITICAL .* anomaly an_[0-9a-f]{32}_e-\d$/);
    // Every isolate's view follows within the phase cache's TTL; this one already knows.
    expect(phaseCache.get("phase")).toBe("SAFE_MODE");
  });
});

describe("hostile input cannot mint objects", () => {
  const ADMIN_ONLY = { SATELLITE_REGISTRATION: "admin" };

  it("refuses ingest for a satellite that is not registered (422 naming the field) and creates nothing", async () => {
    const before = await satelliteObjects();
    const single = await callWith(ADMIN_ONLY, "POST", "/api/v1/telemetry", nominalPoint({ satellite_id: "ghost" }));
    expect(single.status).toBe(422);
    expect(single.body.error).toMatchObject({ code: "unknown_satellite", field: "satellite_id" });
    const batch = await callWith(ADMIN_ONLY, "POST", "/api/v1/telemetry/batch", { telemetry: [nominalPoint({ satellite_id: "ghost" }), nominalPoint({ satellite_id: "ghost-2" })] });
    expect(batch.status).toBe(422);
    expect(batch.body.error.field).toBe("telemetry.0.satellite_id");
    expect(await satelliteObjects()).toBe(before);
  });

  it("admits satellites an admin registered, and only up to MAX_SATELLITES", async () => {
    expect((await callWith(ADMIN_ONLY, "PUT", "/api/v1/fleet/satellites", { satellite_ids: ["reg-1"] })).status).toBe(401);
    const reg = await callWith({ ...ADMIN_ONLY, MAX_SATELLITES: "2" }, "PUT", "/api/v1/fleet/satellites", { satellite_ids: ["reg-1", "reg-2", "reg-3"] }, adminToken());
    expect(reg.body).toMatchObject({ registered: ["reg-1", "reg-2"], refused: ["reg-3"], satellites: 2, max_satellites: 2 });
    const ok = await callWith(ADMIN_ONLY, "POST", "/api/v1/telemetry", nominalPoint({ satellite_id: "reg-2" }));
    expect(ok.status).toBe(200);
    expect(ok.body.persisted).toBe(true);
    const bad = await callWith(ADMIN_ONLY, "PUT", "/api/v1/fleet/satellites", { satellite_ids: ["bad id"] }, adminToken());
    expect(bad.status).toBe(422);
    expect(bad.body.error.field).toBe("satellite_ids.0");
    const fleet = await call("GET", "/api/v1/fleet");
    expect(fleet.body).toMatchObject({ total: 2, registration: { mode: "auto", maxSatellites: 1000 } });
    expect(fleet.body.satellites.map((s: any) => s.satellite_id)).toEqual(["reg-1", "reg-2"]);
  });

  it("stops auto-registration at the cap with a clear error", async () => {
    const cap = { MAX_SATELLITES: "2" };
    const before = await satelliteObjects();
    for (const sat of ["cap-1", "cap-2"]) expect((await callWith(cap, "POST", "/api/v1/telemetry", nominalPoint({ satellite_id: sat }))).status).toBe(200);
    const third = await callWith(cap, "POST", "/api/v1/telemetry", nominalPoint({ satellite_id: "cap-3" }));
    expect(third.status).toBe(422);
    expect(third.body.error).toMatchObject({ code: "fleet_full", field: "satellite_id" });
    expect(await satelliteObjects()).toBe(before + 2);
  });

  it("answers 404 for reads, feedback and forged ids of unknown satellites without creating an object", async () => {
    await call("POST", "/api/v1/telemetry", { body: nominalPoint({ satellite_id: "known" }) });
    const before = await satelliteObjects();
    for (const path of ["/api/v1/history/anomalies?satellite_id=nobody", "/api/v1/telemetry/latest?satellite_id=nobody", "/api/v1/memory/stats?satellite_id=nobody"]) {
      const r = await call("GET", path);
      expect(r.status, path).toBe(404);
      expect(r.body.error.field).toBe("satellite_id");
    }
    const forged = [`an_${"ab".repeat(16)}_nobody`, `an_${"ab".repeat(16)}_known`, `an_${"ab".repeat(16)}`];
    for (const id of forged) {
      const r = await call("POST", `/api/v1/anomalies/${id}/feedback`, { body: { false_positive: true }, token: operatorToken() });
      expect(r.status, id).toBe(404);
      expect(r.body.error.field).toBe("id");
    }
    expect((await call("GET", "/api/v1/history/anomalies?satellite_id=..%2F")).status).toBe(422);
    expect(await satelliteObjects()).toBe(before);
  });
});

describe("upgrade from the single mission object", () => {
  it("keeps phase, history, labels and readings visible, and routes feedback on old ids", async () => {
    const stub = env.MISSION_STATE.get(env.MISSION_STATE.idFromName("mission"));
    const t0 = Date.UTC(2026, 10, 25, 9, 0, 0);
    const oldA = `an_${"1".repeat(32)}`;
    const oldB = `an_${"2".repeat(32)}`;
    // What the previous version wrote: rows of every satellite in the mission object, ids without a satellite.
    await runInDurableObject(stub, (instance: MissionState, state) => {
      const sql = state.storage.sql;
      sql.exec("DELETE FROM meta WHERE key = 'layout'");
      sql.exec("INSERT INTO meta (key, value) VALUES ('phase', 'PAYLOAD_OPS') ON CONFLICT(key) DO UPDATE SET value = excluded.value");
      for (let i = 1; i <= 3; i++) {
        const reading = { voltage: 28, temperature: 20, gyro: 0, time: t0 + i * 1000 };
        sql.exec("INSERT INTO readings (satellite_id, seq, time, reading) VALUES ('old-1', ?, ?, ?)", i, reading.time, JSON.stringify(reading));
      }
      sql.exec("INSERT INTO latest (satellite_id, received_at, point) VALUES ('old-1', ?, ?), ('*', ?, ?)", t0, JSON.stringify({ id: "tp_x", satellite_id: "old-1" }), t0, JSON.stringify({ id: "tp_x", satellite_id: "old-1" }));
      const row = (id: string, fp: number | null, time: number) =>
        sql.exec(
          `INSERT INTO anomalies (id, satellite_id, time, received_at, anomaly_type, anomaly_score, severity_score, severity_level, mission_phase,
             recurrence_count, recommended_action, detector, false_positive) VALUES (?, 'old-1', ?, ?, 'POWER_UNDERVOLTAGE', 0.6, 0.6, 'MEDIUM', 'NOMINAL_OPS', 0, 'LOAD_SHED', 'limit', ?)`,
          id, time, time, fp,
        );
      row(oldA, 1, t0 + 1000);
      row(oldB, null, t0 + 2000);
      instance.upgradeLayout();
    });

    // Admin-only registration: the old fleet was registered by the upgrade.
    const ADMIN_ONLY = { SATELLITE_REGISTRATION: "admin" };
    expect((await call("GET", "/api/v1/phase")).body.phase).toBe("PAYLOAD_OPS");
    const fleet = await call("GET", "/api/v1/history/anomalies");
    expect(fleet.body.anomalies.map((a: any) => a.id)).toEqual([oldB, oldA]);
    expect((await call("GET", "/api/v1/memory/stats")).body.recurrence_memory).toMatchObject({ satellites: 1, labelled: 1, false_positives: 1, legacy_readings: 3 });

    const fb = await callWith(ADMIN_ONLY, "POST", `/api/v1/anomalies/${oldB}/feedback`, { false_positive: false }, operatorToken());
    expect(fb.body).toMatchObject({ status: "labelled", labelled: 2, false_positives: 1, detection_accuracy: 0.5 });
    const own = await call("GET", "/api/v1/history/anomalies?satellite_id=old-1");
    expect(own.body.anomalies.map((a: any) => [a.id, a.false_positive])).toEqual([[oldB, false], [oldA, true]]);
    // The satellite's object took its readings (replayed into its detector state): a fall from the
    // last old reading is a rate-of-change finding, which a satellite without history cannot have.
    const next = await callWith(ADMIN_ONLY, "POST", "/api/v1/telemetry", { voltage: 25.5, temperature: 20, gyro: 0, satellite_id: "old-1", timestamp: new Date(t0 + 4000).toISOString() });
    expect(next.status).toBe(200);
    expect(next.body.reasoning.join(" ")).toMatch(/voltage changed 2\.5\/s since its last nominal value 28/);
    expect(next.body.recurrence_count).toBe(0);
    expect((await call("GET", "/api/v1/memory/stats")).body.recurrence_memory.legacy_readings).toBe(0);
    expect((await call("GET", "/api/v1/memory/stats?satellite_id=old-1")).body.recurrence_memory).toMatchObject({ anomalies: 3 });
  });
});
