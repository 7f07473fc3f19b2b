/**
 * Reads (GET and HEAD under /api/) are open by default, as a telemetry dashboard expects. A
 * deployment that must not publish its mission state sets `REQUIRE_READ_TOKEN = "true"`: reads
 * then need `Authorization: Bearer` with the `READ_TOKEN`, `OPERATOR_TOKEN` or `ADMIN_TOKEN`
 * secret (./auth.ts, scope "read"). Liveness (`/`, `/health`) stays open for load balancers and
 * uptime checks; it tells only healthy/degraded, the version and the phase.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { requireScope } from "./auth";

/** Options of {@link readAccess}; every field has a default. */
export interface ReadAccessOptions {
  /** Whether reads need a token. Default: `env.REQUIRE_READ_TOKEN === "true"`. */
  required?: (env: Env) => boolean;
  /** Methods that count as reads. Default GET, HEAD. */
  methods?: readonly string[];
}

/**
 * Requires the "read" scope for reads when the deployment asks for it; otherwise passes through.
 * Mount it on the paths to protect (the API, not liveness).
 *
 * Defaults: required when `REQUIRE_READ_TOKEN === "true"`, reads are GET and HEAD.
 *
 * @example
 * app.use("/api/*", readAccess());
 * // REQUIRE_READ_TOKEN=true: curl -H "Authorization: Bearer $READ_TOKEN" .../api/v1/phase
 */
export function readAccess(options: ReadAccessOptions = {}): MiddlewareHandler<AppEnv> {
  const required = options.required ?? ((env: Env) => env.REQUIRE_READ_TOKEN === "true");
  const methods = new Set(options.methods ?? ["GET", "HEAD"]);
  const scope = requireScope("read");

  return async function readAccess(c, next) {
    if (!methods.has(c.req.method) || !required(c.env)) return next();
    return scope(c, next);
  };
}
