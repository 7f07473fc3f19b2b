/**
 * Bad input: every case answers a JSON error with its status and the field it names, and changes
 * no state (the anomaly history and the phase are checked after each).
 */
import { describe, expect, it } from "vitest";
import { adminToken, call, nominalPoint, operatorToken, type CallOptions } from "../support/api";

const ANOMALY_ID = `an_${"0".repeat(32)}`;

interface Case {
  name: string;
  method: string;
  path: string;
  options?: CallOptions | (() => CallOptions);
  status: number;
  field: string;
}

const big = (bytes: number) => JSON.stringify({ ...nominalPoint(), padding: "x".repeat(bytes) });

const cases: Case[] = [
  // Single point: fields
  { name: "missing voltage", method: "POST", path: "/api/v1/telemetry", options: { body: { temperature: 20, gyro: 0 } }, status: 422, field: "voltage" },
  { name: "missing temperature", method: "POST", path: "/api/v1/telemetry", options: { body: { voltage: 28, gyro: 0 } }, status: 422, field: "temperature" },
  { name: "missing gyro", method: "POST", path: "/api/v1/telemetry", options: { body: { voltage: 28, temperature: 20 } }, status: 422, field: "gyro" },
  { name: "voltage above 50", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ voltage: 50.1 }) }, status: 422, field: "voltage" },
  { name: "negative voltage", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ voltage: -1 }) }, status: 422, field: "voltage" },
  { name: "voltage as string", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ voltage: "28" }) }, status: 422, field: "voltage" },
  { name: "voltage null", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ voltage: null }) }, status: 422, field: "voltage" },
  { name: "temperature below -100", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ temperature: -100.5 }) }, status: 422, field: "temperature" },
  { name: "temperature above 150", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ temperature: 151 }) }, status: 422, field: "temperature" },
  { name: "temperature as boolean", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ temperature: true }) }, status: 422, field: "temperature" },
  { name: "gyro as object", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ gyro: { x: 1 } }) }, status: 422, field: "gyro" },
  { name: "gyro as array", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ gyro: [1, 2, 3] }) }, status: 422, field: "gyro" },
  { name: "gyro too large (1e308 literal)", method: "POST", path: "/api/v1/telemetry", options: { raw: '{"voltage":28,"temperature":20,"gyro":1e308}' }, status: 422, field: "gyro" },
  { name: "gyro overflowing to Infinity", method: "POST", path: "/api/v1/telemetry", options: { raw: '{"voltage":28,"temperature":20,"gyro":1e999}' }, status: 422, field: "gyro" },
  { name: "negative current", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ current: -0.1 }) }, status: 422, field: "current" },
  { name: "negative wheel_speed", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ wheel_speed: -5 }) }, status: 422, field: "wheel_speed" },
  { name: "timestamp not ISO", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ timestamp: "yesterday" }) }, status: 422, field: "timestamp" },
  { name: "timestamp without zone", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ timestamp: "2026-11-25T10:00:00" }) }, status: 422, field: "timestamp" },
  { name: "timestamp impossible date", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ timestamp: "2026-13-45T10:00:00Z" }) }, status: 422, field: "timestamp" },
  { name: "timestamp as number", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ timestamp: 1764064800 }) }, status: 422, field: "timestamp" },
  { name: "satellite_id with spaces", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ satellite_id: "sat one" }) }, status: 422, field: "satellite_id" },
  { name: "satellite_id too long", method: "POST", path: "/api/v1/telemetry", options: { body: nominalPoint({ satellite_id: "s".repeat(65) }) }, status: 422, field: "satellite_id" },
  { name: "unknown field (typo)", method: "POST", path: "/api/v1/telemetry", options: { body: { voltage: 28, temprature: 20, temperature: 20, gyro: 0 } }, status: 422, field: "temprature" },
  // Single point: body shape
  { name: "malformed JSON", method: "POST", path: "/api/v1/telemetry", options: { raw: '{"voltage": 28,' }, status: 400, field: "body" },
  { name: "empty body", method: "POST", path: "/api/v1/telemetry", options: { raw: "" }, status: 400, field: "body" },
  { name: "JSON array instead of object", method: "POST", path: "/api/v1/telemetry", options: { body: [nominalPoint()] }, status: 422, field: "body" },
  { name: "JSON string instead of object", method: "POST", path: "/api/v1/telemetry", options: { body: "28V" }, status: 422, field: "body" },
  { name: "JSON null", method: "POST", path: "/api/v1/telemetry", options: { raw: "null" }, status: 422, field: "body" },
  { name: "text/plain content type", method: "POST", path: "/api/v1/telemetry", options: { raw: JSON.stringify(nominalPoint()), headers: { "Content-Type": "text/plain" } }, status: 415, field: "Content-Type" },
  { name: "oversized single point", method: "POST", path: "/api/v1/telemetry", options: { raw: big(17 * 1024) }, status: 413, field: "body" },
  // Batch
  { name: "batch without telemetry", method: "POST", path: "/api/v1/telemetry/batch", options: { body: {} }, status: 422, field: "telemetry" },
  { name: "empty batch", method: "POST", path: "/api/v1/telemetry/batch", options: { body: { telemetry: [] } }, status: 422, field: "telemetry" },
  { name: "batch of 1001", method: "POST", path: "/api/v1/telemetry/batch", options: { body: { telemetry: Array.from({ length: 1001 }, () => ({ voltage: 28, temperature: 20, gyro: 0 })) } }, status: 422, field: "telemetry" },
  { name: "batch not an array", method: "POST", path: "/api/v1/telemetry/batch", options: { body: { telemetry: nominalPoint() } }, status: 422, field: "telemetry" },
  { name: "bad point inside batch", method: "POST", path: "/api/v1/telemetry/batch", options: { body: { telemetry: [nominalPoint(), nominalPoint({ voltage: 99 })] } }, status: 422, field: "telemetry.1.voltage" },
  { name: "oversized batch", method: "POST", path: "/api/v1/telemetry/batch", options: { raw: JSON.stringify({ telemetry: [nominalPoint({ satellite_id: "p".repeat(600_000) })] }) }, status: 413, field: "body" },
  // Phase
  { name: "phase without token", method: "POST", path: "/api/v1/phase", options: { body: { phase: "SAFE_MODE" } }, status: 401, field: "Authorization" },
  { name: "phase with a wrong token", method: "POST", path: "/api/v1/phase", options: { body: { phase: "SAFE_MODE" }, token: "not-the-token" }, status: 401, field: "Authorization" },
  { name: "phase with a Basic scheme", method: "POST", path: "/api/v1/phase", options: () => ({ body: { phase: "SAFE_MODE" }, headers: { Authorization: `Basic ${adminToken()}` } }), status: 401, field: "Authorization" },
  { name: "phase with operator token", method: "POST", path: "/api/v1/phase", options: () => ({ body: { phase: "SAFE_MODE" }, token: operatorToken() }), status: 403, field: "Authorization" },
  { name: "unknown phase", method: "POST", path: "/api/v1/phase", options: () => ({ body: { phase: "ORBIT_RAISE" }, token: adminToken() }), status: 422, field: "phase" },
  { name: "force not boolean", method: "POST", path: "/api/v1/phase", options: () => ({ body: { phase: "LAUNCH", force: "yes" }, token: adminToken() }), status: 422, field: "force" },
  { name: "invalid transition", method: "POST", path: "/api/v1/phase", options: () => ({ body: { phase: "LAUNCH" }, token: adminToken() }), status: 409, field: "phase" },
  // History
  { name: "history limit 0", method: "GET", path: "/api/v1/history/anomalies?limit=0", status: 422, field: "limit" },
  { name: "history limit 1001", method: "GET", path: "/api/v1/history/anomalies?limit=1001", status: 422, field: "limit" },
  { name: "history limit not integer", method: "GET", path: "/api/v1/history/anomalies?limit=2.5", status: 422, field: "limit" },
  { name: "history severity_min above 1", method: "GET", path: "/api/v1/history/anomalies?severity_min=1.5", status: 422, field: "severity_min" },
  { name: "history severity_min text", method: "GET", path: "/api/v1/history/anomalies?severity_min=high", status: 422, field: "severity_min" },
  { name: "history bad start_time", method: "GET", path: "/api/v1/history/anomalies?start_time=tomorrow", status: 422, field: "start_time" },
  { name: "history start after end", method: "GET", path: "/api/v1/history/anomalies?start_time=2026-11-25T12:00:00Z&end_time=2026-11-25T10:00:00Z", status: 422, field: "start_time" },
  { name: "history unknown parameter", method: "GET", path: "/api/v1/history/anomalies?severity=HIGH", status: 422, field: "severity" },
  // Feedback
  { name: "feedback without token", method: "POST", path: `/api/v1/anomalies/${ANOMALY_ID}/feedback`, options: { body: { false_positive: true } }, status: 401, field: "Authorization" },
  { name: "feedback bad id", method: "POST", path: "/api/v1/anomalies/123/feedback", options: () => ({ body: { false_positive: true }, token: operatorToken() }), status: 422, field: "id" },
  { name: "feedback unknown id", method: "POST", path: `/api/v1/anomalies/${ANOMALY_ID}/feedback`, options: () => ({ body: { false_positive: true }, token: operatorToken() }), status: 404, field: "id" },
  { name: "feedback missing label", method: "POST", path: `/api/v1/anomalies/${ANOMALY_ID}/feedback`, options: () => ({ body: {}, token: operatorToken() }), status: 422, field: "false_positive" },
  { name: "feedback label as string", method: "POST", path: `/api/v1/anomalies/${ANOMALY_ID}/feedback`, options: () => ({ body: { false_positive: "true" }, token: operatorToken() }), status: 422, field: "false_positive" },
  // Routing
  { name: "unknown route", method: "GET", path: "/api/v1/nope", status: 404, field: "path" },
  { name: "wrong method on telemetry", method: "GET", path: "/api/v1/telemetry", status: 405, field: "method" },
  { name: "wrong method on batch", method: "PUT", path: "/api/v1/telemetry/batch", options: { body: { telemetry: [] } }, status: 405, field: "method" },
];

describe("bad input", () => {
  it("has at least 30 distinct cases", () => {
    expect(new Set(cases.map((c) => c.name)).size).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)("$name → $status naming $field, state unchanged", async ({ method, path, options, status, field }) => {
    const before = await state();
    const res = await call(method, path, typeof options === "function" ? options() : options);
    expect(res.status).toBe(status);
    expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
    expect(res.body.error).toMatchObject({ status, field, message: expect.any(String) });
    expect(res.body.error.message.length).toBeGreaterThan(3);
    expect(await state()).toEqual(before);
  });
});

/** What a bad request must not change: stored anomalies, labels, readings, latest, phase. */
async function state() {
  const [memory, phase] = await Promise.all([call("GET", "/api/v1/memory/stats"), call("GET", "/api/v1/phase")]);
  // Calls served change with every read; what is stored must not.
  const { calls_since_start: _calls, ...stored } = memory.body.recurrence_memory;
  return { stored, phase: phase.body.phase, transitions: phase.body.transitions.length };
}
