import { Hono } from "hono";
import type { AppEnv } from "../../lib/env";
import { requireScope } from "../../lib/http/auth";
import { ApiError } from "../../lib/http/errors";
import { smallJsonBody } from "../../lib/http/json-bounds";
import { requireJson, validate } from "../../lib/http/validation";
import { chaosIdSchema, chaosSpecSchema, controlStub, faultJson, invalidateFaultView, refreshFaultView } from "../../lib/reliability/chaos";
import { MAX_ACTIVE_FAULTS } from "../../lib/objects/chaos-control";
import type { Fault } from "../../lib/reliability/faults";
import { localBreakerStates } from "../../lib/reliability/breakers";
import { instruments } from "../../lib/telemetry/instruments";
import { log } from "../../lib/telemetry/logger";

function countCancelled(faults: Fault[]): void {
  for (const f of faults) instruments.chaosInjections.add(1, { type: f.type, status: "cancelled" });
  if (faults.length) invalidateFaultView();
}

/** Whether faults may be injected: CHAOS_ENABLED="true", or (unset) any environment but production. */
export function chaosAllowed(env: Env): boolean {
  const flag = env.CHAOS_ENABLED?.trim().toLowerCase();
  if (flag !== undefined && flag !== "") return flag === "true";
  return (env.DEPLOYMENT_ENVIRONMENT ?? "development") !== "production";
}

/**
 * Chaos injection (admin only): inject a bounded fault, list faults and their recovery, end them.
 * Injection is refused (403 chaos_disabled) where {@link chaosAllowed} says no; listing and ending
 * faults always work.
 */
export const chaosRoutes = new Hono<AppEnv>()
  .use("*", requireScope("admin"))
  .post("/", requireJson(), smallJsonBody(), validate("json", chaosSpecSchema), async (c) => {
    if (!chaosAllowed(c.env)) {
      throw new ApiError(403, "chaos_disabled", 'chaos injection is off in this deployment (set CHAOS_ENABLED = "true" to allow it)');
    }
    const spec = c.req.valid("json");
    const result = await controlStub(c.env).inject(spec);
    if ("error" in result) {
      throw new ApiError(409, "too_many_faults", `at most ${MAX_ACTIVE_FAULTS} faults may be active at once; DELETE /api/v1/chaos ends them`);
    }
    instruments.chaosInjections.add(1, { type: spec.type, status: "injected" });
    invalidateFaultView();
    log("warn", "chaos_injected", { fault_id: result.fault.id, type: spec.type, target: spec.target, duration_s: spec.duration_s });
    return c.json({ fault: faultJson(result.fault as Fault) }, 201);
  })
  .get("/", async (c) => {
    const now = Date.now();
    const { active, recent } = await controlStub(c.env).list(now);
    const view = await refreshFaultView(c.env);
    return c.json({
      active: (active as Fault[]).map((f) => faultJson(f, now)),
      recent: (recent as Fault[]).map((f) => faultJson(f, now)),
      circuit_breakers: {
        /** The breakers of the isolate that answered. */
        isolate: localBreakerStates(),
        /** The worst state any live isolate reported (what astra_circuit_breaker_state shows). */
        fleet: view.fleet,
      },
    });
  })
  .delete("/", async (c) => {
    const now = Date.now();
    const { cancelled } = await controlStub(c.env).cancel(undefined, now);
    countCancelled(cancelled as Fault[]);
    return c.json({ cancelled: (cancelled as Fault[]).map((f) => faultJson(f, now)) });
  })
  .delete("/:id", validate("param", chaosIdSchema), async (c) => {
    const now = Date.now();
    const { id } = c.req.valid("param");
    const result = await controlStub(c.env).cancel(id, now);
    if (!result.found) throw new ApiError(404, "not_found", `no fault with id ${id}`, "id");
    countCancelled(result.cancelled as Fault[]);
    return c.json({ cancelled: (result.cancelled as Fault[]).map((f) => faultJson(f, now)), fault: result.fault ? faultJson(result.fault as Fault, now) : null });
  });
