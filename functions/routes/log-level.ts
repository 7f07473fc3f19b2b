import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../lib/env";
import { requireScope } from "../../lib/http/auth";
import { smallJsonBody } from "../../lib/http/json-bounds";
import { requireJson, validate } from "../../lib/http/validation";
import { controlStub, refreshFaultView } from "../../lib/reliability/chaos";
import { instruments } from "../../lib/telemetry/instruments";
import { LOG_LEVELS, logAlways, logLevel } from "../../lib/telemetry/logger";

const logLevelSchema = z.strictObject({
  level: z.enum(LOG_LEVELS, { error: `level must be one of ${LOG_LEVELS.join(", ")}, or null to return to LOG_LEVEL` }).nullable(),
});

/**
 * The run-time log level (admin): kept in the ChaosControl object and handed to every isolate with
 * its ~1 s sync, so no redeploy is needed. `{"level": null}` returns to the LOG_LEVEL var.
 */
export const logLevelRoutes = new Hono<AppEnv>()
  .use("*", requireScope("admin"))
  .get("/", async (c) => {
    const stored = await controlStub(c.env).getLogLevel();
    return c.json({ ...logLevel(), runtime_level: stored.level, set_at: stored.setAtMs === null ? null : new Date(stored.setAtMs).toISOString(), configured: c.env.LOG_LEVEL ?? "info" });
  })
  .put("/", requireJson(), smallJsonBody(), validate("json", logLevelSchema), async (c) => {
    const { level } = c.req.valid("json");
    const changed = await controlStub(c.env).setLogLevel(level);
    // This isolate at once; the others with their next sync.
    await refreshFaultView(c.env);
    instruments.logLevelChanges.add(1, { level: level ?? "LOG_LEVEL" });
    // Written whatever the new level is: the change itself must stay visible.
    logAlways("warn", "log_level_changed", { level: level ?? null, previous: changed.previous });
    return c.json({ ...logLevel(), previous_runtime_level: changed.previous, propagation: "every isolate within about 1 s of serving requests (its next ChaosControl sync)" });
  });
