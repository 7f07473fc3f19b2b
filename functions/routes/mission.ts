import { Hono } from "hono";
import { MISSION_PHASES, phaseChangeSchema, satelliteQuerySchema } from "../../lib/domain/schemas";
import { PHASE_POLICIES, validTransitions } from "../../lib/domain/phase-policy";
import type { AppEnv } from "../../lib/env";
import { requireScope } from "../../lib/http/auth";
import { ApiError } from "../../lib/http/errors";
import { smallJsonBody } from "../../lib/http/json-bounds";
import { requireJson, validate } from "../../lib/http/validation";
import { registrationPolicy, requireRegistered } from "../../lib/mission/fleet";
import { callMission, callSatellite, historyCache, phaseCache, rememberPhase } from "../../lib/mission/mission-client";

/** Mission phase, and the recurrence memory's statistics. */
export const missionRoutes = new Hono<AppEnv>()
  .get("/phase", async (c) => {
    const info = await callMission(c.env, (s) => s.getPhase(), { retry: "mission.getPhase" });
    rememberPhase(info.phase);
    const policy = PHASE_POLICIES[info.phase];
    return c.json({
      ...info,
      description: policy.description,
      allowed_actions: policy.allowedActions,
      valid_transitions: validTransitions(info.phase),
      phases: MISSION_PHASES,
    });
  })
  .post("/phase", requireScope("admin"), requireJson(), smallJsonBody(), validate("json", phaseChangeSchema), async (c) => {
    const { phase, force, reason } = c.req.valid("json");
    const result = await callMission(c.env, (s) => s.setPhase(phase, force ?? false, reason));
    if (!result.changed) {
      throw new ApiError(409, "invalid_transition", result.reason, "phase");
    }
    rememberPhase(result.phase);
    return c.json({ changed: true, previous_phase: result.from, phase: result.phase, reason: result.reason });
  })
  /** The fleet's figures (mission object: registry, fleet index, labels) or one satellite's (its object). */
  .get("/memory/stats", validate("query", satelliteQuerySchema), async (c) => {
    const satelliteId = c.req.valid("query").satellite_id;
    const isolate_cache = { phase: phaseCache.stats(), history: historyCache.stats() };
    if (satelliteId === undefined) {
      const stored = await callMission(c.env, (s) => s.stats(), { retry: "mission.stats" });
      return c.json({ scope: "fleet", recurrence_memory: stored, registration: registrationPolicy(c.env), isolate_cache });
    }
    await requireRegistered(c.env, satelliteId);
    const stored = await callSatellite(c.env, satelliteId, (s) => s.stats(satelliteId), { retry: "satellite.stats" });
    return c.json({ scope: "satellite", recurrence_memory: stored, isolate_cache });
  });
