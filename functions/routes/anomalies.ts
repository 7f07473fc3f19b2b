import { Hono } from "hono";
import { anomalyIdSchema, feedbackSchema, historyQuerySchema } from "../../lib/domain/schemas";
import type { AppEnv } from "../../lib/env";
import { requireScope } from "../../lib/http/auth";
import { ApiError } from "../../lib/http/errors";
import { smallJsonBody } from "../../lib/http/json-bounds";
import { requireJson, validate } from "../../lib/http/validation";
import { callMission } from "../../lib/mission/mission-client";
import { instruments } from "../../lib/telemetry/instruments";

export const DEFAULT_HISTORY_LIMIT = 100;

/** Anomaly history, and operator labels on detections. */
export const anomalyRoutes = new Hono<AppEnv>()
  .get("/history/anomalies", validate("query", historyQuerySchema), async (c) => {
    const q = c.req.valid("query");
    const startTime = q.start_time ? Date.parse(q.start_time) : undefined;
    const endTime = q.end_time ? Date.parse(q.end_time) : undefined;
    if (startTime !== undefined && endTime !== undefined && startTime > endTime) {
      throw new ApiError(422, "validation_failed", "start_time must not be after end_time", "start_time");
    }
    const limit = q.limit ?? DEFAULT_HISTORY_LIMIT;
    const anomalies = await callMission(c.env, (s) =>
      s.history({ limit, ...(startTime !== undefined && { startTime }), ...(endTime !== undefined && { endTime }), ...(q.severity_min !== undefined && { severityMin: q.severity_min }) }),
      { retry: "mission.history" },
    );
    return c.json({ count: anomalies.length, limit, anomalies });
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
      const outcome = await callMission(c.env, (s) => s.feedback(id, false_positive));
      if (outcome.status === "not_found") throw new ApiError(404, "not_found", `no anomaly with id ${id}`, "id");
      if (outcome.status === "conflict") {
        throw new ApiError(409, "already_labelled", `anomaly ${id} is already labelled false_positive=${outcome.anomaly?.false_positive}`, "false_positive");
      }
      if (outcome.status === "labelled") {
        if (false_positive && outcome.anomaly) {
          instruments.falsePositives.add(1, { detector: outcome.anomaly.detector, severity: outcome.anomaly.severity_level });
        }
        if (outcome.accuracy !== undefined) instruments.detectionAccuracy.record(outcome.accuracy);
      }
      return c.json({
        status: outcome.status,
        anomaly: outcome.anomaly,
        detection_accuracy: outcome.accuracy ?? null,
        labelled: outcome.labelled,
        false_positives: outcome.false_positives,
      });
    },
  );
