import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { telemetryBatchSchema, telemetryPointSchema } from "../../lib/domain/schemas";
import type { AppEnv } from "../../lib/env";
import { ApiError } from "../../lib/http/errors";
import { ingestKey } from "../../lib/http/ingest-key";
import { jsonBounds } from "../../lib/http/json-bounds";
import { ingestRateLimit } from "../../lib/http/rate-limit";
import { requireJson, validate } from "../../lib/http/validation";
import { ingestTelemetry } from "../../lib/mission/ingest";
import { callMission } from "../../lib/mission/mission-client";

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
    const { responses } = await ingestTelemetry(c.env, [c.req.valid("json")]);
    return c.json(responses[0]!);
  })
  .post("/batch", limit(MAX_BATCH_BYTES), ingestKey(), ingestRateLimit(), requireJson(), jsonBounds(), validate("json", telemetryBatchSchema), async (c) => {
    const { responses, persisted } = await ingestTelemetry(c.env, c.req.valid("json").telemetry);
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
  .get("/latest", async (c) => {
    const latest = await callMission(c.env, (s) => s.latest(), { retry: "mission.latest" });
    if (!latest) throw new ApiError(404, "not_found", "no telemetry received yet");
    return c.json(latest);
  });
