/** With the MissionState object failing, ingest still answers (not persisted) and reads say 503. */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../../functions/app";
import { anomalousPoint, nominalPoint } from "../support/api";

/** A namespace whose object always fails, as when storage is down. */
const failingNamespace = {
  idFromName: (name: string) => env.MISSION_STATE.idFromName(name),
  get: () => new Proxy({}, { get: () => () => Promise.reject(new Error("storage down (injected)")) }),
};
const brokenEnv = { ...env, MISSION_STATE: failingNamespace as unknown as typeof env.MISSION_STATE };

async function request(method: string, path: string, body?: unknown) {
  const ctx = createExecutionContext();
  const init: RequestInit = { method, ...(body !== undefined && { body: JSON.stringify(body), headers: { "Content-Type": "application/json" } }) };
  const res = await app.request(path, init, brokenEnv, ctx);
  await waitOnExecutionContext(ctx);
  return { status: res.status, body: (await res.json()) as any };
}

describe("storage down", () => {
  it("ingest still detects and says the verdict was not persisted", async () => {
    const nominal = await request("POST", "/api/v1/telemetry", nominalPoint());
    expect(nominal.status).toBe(200);
    expect(nominal.body).toMatchObject({ is_anomaly: false, persisted: false });
    const anomaly = await request("POST", "/api/v1/telemetry", anomalousPoint());
    expect(anomaly.status).toBe(200);
    expect(anomaly.body).toMatchObject({ is_anomaly: true, severity_level: "CRITICAL", persisted: false, recurrence_count: 0 });
    const batch = await request("POST", "/api/v1/telemetry/batch", { telemetry: [nominalPoint({ satellite_id: "fresh" }), anomalousPoint({ satellite_id: "other" })] });
    expect(batch.body).toMatchObject({ total_processed: 2, anomalies_detected: 1, persisted: false });
  });

  it.each(["/api/v1/phase", "/api/v1/memory/stats", "/api/v1/history/anomalies", "/api/v1/telemetry/latest"])("GET %s answers 503 JSON", async (path) => {
    const res = await request("GET", path);
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ status: 503, code: "storage_unavailable" });
  });

  it("/health stays 200 and reports storage degraded", async () => {
    const res = await request("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("degraded");
    expect(res.body.dependencies.storage.status).toBe("degraded");
  });
});
