import { Hono } from "hono";
import { satelliteOfAnomalyId } from "../../lib/domain/ids";
import { anomalyIdSchema, feedbackSchema, historyQuerySchema } from "../../lib/domain/schemas";
import type { AppEnv } from "../../lib/env";
import { requireScope } from "../../lib/http/auth";
import { ApiError } from "../../lib/http/errors";
import { smallJsonBody } from "../../lib/http/json-bounds";
import { requireJson, validate } from "../../lib/http/validation";
import { requireRegistered } from "../../lib/mission/fleet";
import { callMission, callSatellite } from "../../lib/mission/mission-client";
import { instruments } from "../../lib/telemetry/instruments";

export const DEFAULT_HISTORY_LIMIT = 100;

/**
 * Anomaly history (one satellite's from its object, strongly consistent; the fleet's from the
 * mission's index, about a second behind), and operator labels on detections.
 */
export const anomalyRoutes = new Hono<AppEnv>()
  .get("/history/anomalies", validate("query", historyQuerySchema), async (c) => {
    const q = c.req.valid("query");
    const startTime = q.start_time ? Date.parse(q.start_time) : undefined;
    const endTime = q.end_time ? Date.parse(q.end_time) : undefined;
    if (startTime !== undefined && endTime !== undefined && startTime > endTime) {
      throw new ApiError(422, "validation_failed", "start_time must not be after end_time", "start_time");
    }
    const limit = q.limit ?? DEFAULT_HISTORY_LIMIT;
    const query = { limit, ...(startTime !== undefined && { startTime }), ...(endTime !== undefined && { endTime }), ...(q.severity_min !== undefined && { severityMin: q.severity_min }) };
    const satelliteId = q.satellite_id;
    if (satelliteId === undefined) {
      const anomalies = await callMission(c.env, (s) => s.history(query), { retry: "mission.history" });
      return c.json({ scope: "fleet", count: anomalies.length, limit, anomalies });
    }
    await requireRegistered(c.env, satelliteId);
    const anomalies = await callSatellite(c.env, satelliteId, (s) => s.history(satelliteId, query), { retry: "satellite.history" });
    return c.json({ scope: "satellite", satellite_id: satelliteId, count: anomalies.length, limit, anomalies });
  })
  .post(
    "/anomalies/:id/feedback",
    requireScope("operator"),
    validate("param", anomalyIdSchema),
    requireJson(),
    smallJsonBody(),
    validate("json", feedbackSchema),
    async (c) => {
      const { id } = c.req.valid("param");
      const { false_positive } = c.req.valid("json");
      const notFound = () => new ApiError(404, "not_found", `no anomaly with id ${id}`, "id");
      // New ids name their satellite; older ones are found in the mission's fleet index.
      const satelliteId = satelliteOfAnomalyId(id) ?? (await callMission(c.env, (s) => s.locate(id), { retry: "mission.locate" }));
      if (satelliteId === undefined) throw notFound();
      await requireRegistered(c.env, satelliteId, "id");
      const outcome = await callSatellite(c.env, satelliteId, (s) => s.feedback(satelliteId, id, false_positive));
      if (outcome.status === "not_found") throw notFound();
      if (outcome.status === "conflict") {
        throw new ApiError(409, "already_labelled", `anomaly ${id} is already labelled false_positive=${outcome.anomaly?.false_positive}`, "false_positive");
      }
      if (outcome.status === "labelled") {
        if (false_positive && outcome.anomaly) {
          instruments.falsePositives.add(1, { detector: outcome.anomaly.detector, severity: outcome.anomaly.severity_level });
        }
        if (outcome.totals?.accuracy !== undefined) instruments.detectionAccuracy.record(outcome.totals.accuracy);
      }
      return c.json({
        status: outcome.status,
        anomaly: outcome.anomaly,
        // Fleet-wide; null when the mission could not be asked (the label is kept and counted later).
        detection_accuracy: outcome.totals?.accuracy ?? null,
        labelled: outcome.totals?.labelled ?? null,
        false_positives: outcome.totals?.false_positives ?? null,
      });
    },
  );
