import { Hono } from "hono";
import { fleetQuerySchema, fleetRegistrationSchema } from "../../lib/domain/schemas";
import type { AppEnv } from "../../lib/env";
import { requireScope } from "../../lib/http/auth";
import { smallJsonBody } from "../../lib/http/json-bounds";
import { requireJson, validate } from "../../lib/http/validation";
import { registrationPolicy } from "../../lib/mission/fleet";
import { callMission } from "../../lib/mission/mission-client";

/** The fleet registry: which satellites may send telemetry (and so have a Durable Object). */
export const fleetRoutes = new Hono<AppEnv>()
  .get("/", validate("query", fleetQuerySchema), async (c) => {
    const { limit, after } = c.req.valid("query");
    const page = await callMission(c.env, (s) => s.fleet(limit ?? 100, after ?? 0), { retry: "mission.fleet" });
    return c.json({ ...page, registration: registrationPolicy(c.env) });
  })
  .put("/satellites", requireScope("admin"), requireJson(), smallJsonBody({ maxBytes: 80 * 1024 }), validate("json", fleetRegistrationSchema), async (c) => {
    const { satellite_ids } = c.req.valid("json");
    const { maxSatellites } = registrationPolicy(c.env);
    return c.json(await callMission(c.env, (s) => s.register(satellite_ids, maxSatellites)));
  });
