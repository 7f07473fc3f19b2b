import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { satelliteQuerySchema, telemetryBatchSchema, telemetryPointSchema } from "../../lib/domain/schemas";
import type { AppEnv } from "../../lib/env";
import { ApiError } from "../../lib/http/errors";
import { ingestKey } from "../../lib/http/ingest-key";
import { jsonBounds } from "../../lib/http/json-bounds";
import { ingestRateLimit } from "../../lib/http/rate-limit";
import { requireJson, validate } from "../../lib/http/validation";
import { ingestTelemetry } from "../../lib/mission/ingest";
import { fleetView, requireRegistered } from "../../lib/mission/fleet";
import { callMission, callSatellite } from "../../lib/mission/mission-client";

/** A latest point as the API answers it (the objects hand back the JSON they stored). */
const latestBody = (scope: "fleet" | "satellite", latest: { received_at: number; point: string }) => ({
  scope,
  received_at: new Date(latest.received_at).toISOString(),
  point: JSON.parse(latest.point) as Record<string, unknown>,
});

/** Body limits, enforced before parsing (README: Limits). */
export const MAX_POINT_BYTES = 16 * 1024;
export const MAX_BATCH_BYTES = 512 * 1024;

const limit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `request body must be at most ${maxSize} bytes`, "body");
    },
  });

/**
 * Ingest chain: body limit → API key (when REQUIRE_INGEST_KEY) → rate limit → JSON media type →
 * depth/string bounds → schema. Key and rate limit run before the body is read.
 */
export const telemetryRoutes = new Hono<AppEnv>()
  .post("/", limit(MAX_POINT_BYTES), ingestKey(), ingestRateLimit(), requireJson(), jsonBounds(), validate("json", telemetryPointSchema), async (c) => {
    const { responses } = await ingestTelemetry(c.env, [c.req.valid("json")], { fieldOf: () => "satellite_id" });
    c.executionCtx.waitUntil(fleetView.reportSoon(c.env));
    return c.json(responses[0]!);
  })
  .post("/batch", limit(MAX_BATCH_BYTES), ingestKey(), ingestRateLimit(), requireJson(), jsonBounds(), validate("json", telemetryBatchSchema), async (c) => {
    const { responses, persisted } = await ingestTelemetry(c.env, c.req.valid("json").telemetry);
    c.executionCtx.waitUntil(fleetView.reportSoon(c.env));
    const anomalies = responses.filter((r) => r.is_anomaly);
    const bySeverity: Record<string, number> = {};
    for (const r of anomalies) bySeverity[r.severity_level] = (bySeverity[r.severity_level] ?? 0) + 1;
    return c.json({
      total_processed: responses.length,
      anomalies_detected: anomalies.length,
      by_severity: bySeverity,
      persisted,
      results: responses,
    });
  })
  /**
   * One satellite's latest point (from its object: exact), or the fleet's: the newest of what the
   * isolates reported to the mission (each at most ~2 s late) and what this isolate recorded.
   */
  .get("/latest", validate("query", satelliteQuerySchema), async (c) => {
    const satelliteId = c.req.valid("query").satellite_id;
    if (satelliteId !== undefined) {
      await requireRegistered(c.env, satelliteId);
      const latest = await callSatellite(c.env, satelliteId, (s) => s.latest(satelliteId), { retry: "satellite.latest" });
      if (!latest) throw new ApiError(404, "not_found", `no telemetry received from ${satelliteId} yet`, "satellite_id");
      return c.json(latestBody("satellite", latest));
    }
    const reported = await callMission(c.env, (s) => s.latest(), { retry: "mission.latest" });
    const own = fleetView.newestRecorded();
    const newest = own && (!reported || own.received_at >= reported.received_at) ? own : reported;
    if (!newest) throw new ApiError(404, "not_found", "no telemetry received yet");
    return c.json(latestBody("fleet", newest));
  });
