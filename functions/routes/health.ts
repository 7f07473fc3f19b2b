import { Hono } from "hono";
import type { AppEnv } from "../../lib/env";
import { healthReport } from "../../lib/mission/health";
import { logLevel } from "../../lib/telemetry/logger";

export const SERVICE_NAME = "astraguard-edge";

/** Liveness and dependency health; always 200 while the Worker answers (status says degraded). */
export const healthRoutes = new Hono<AppEnv>()
  .get("/", async (c) => c.json({ service: SERVICE_NAME, ...(await healthReport(c.env)) }))
  .get("/health", async (c) => c.json({ service: SERVICE_NAME, ...(await healthReport(c.env)) }))
  .get("/api/v1/status", async (c) => {
    const health = await healthReport(c.env);
    return c.json({
      service: SERVICE_NAME,
      status: health.status,
      version: health.version,
      uptime_seconds: health.uptime_seconds,
      mission_phase: health.mission_phase,
      log_level: logLevel(),
      components: {
        api: { status: "healthy" },
        anomaly_detector: { status: "healthy", kind: "physical limits, rate of change, stuck sensor, drift" },
        ...health.dependencies,
      },
    });
  });
