/**
 * The bench's copy of functions/app.ts WITHOUT our telemetry middleware (httpMetrics, serverSpan):
 * the same route modules, request id, security headers, CORS, read access, 405 handling, notFound
 * and onError,
 * with the variant's own middleware mounted first.
 * `bare` mounts nothing; `hono-otel` mounts `@hono/otel`; `otel-cf-workers` wraps the result.
 *
 * Keep it in step with functions/app.ts (any non-telemetry middleware added there belongs here
 * too, or the ratio ours/bare is unfair to ours). A `createApp({ telemetry })` factory in
 * functions/app.ts would remove this copy; see bench/README in the report.
 *
 * Note: domain code records a few instruments itself (lib/mission/ingest.ts: detection latency,
 * anomalies, recovery actions). In every variant these still record into the isolate's SDK
 * MeterProvider; only `ours` ever collects and exports them.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import type { AppEnv } from "../../../lib/env";
import { apiCors } from "../../../lib/http/cors";
import { ApiError, errorResponse } from "../../../lib/http/errors";
import { readAccess } from "../../../lib/http/read-access";
import { apiSecurityHeaders } from "../../../lib/http/security-headers";
import { anomalyRoutes } from "../../../functions/routes/anomalies";
import { healthRoutes } from "../../../functions/routes/health";
import { missionRoutes } from "../../../functions/routes/mission";
import { telemetryRoutes } from "../../../functions/routes/telemetry";

/** The API with `first` mounted before everything else (as httpMetrics is in functions/app.ts). */
export function composeApp(first: MiddlewareHandler[] = []): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  for (const mw of first) app.use("*", mw);
  app.use("*", requestId());
  app.use("*", apiSecurityHeaders());
  app.use("*", apiCors());
  app.use("/api/*", readAccess());
  app.use(
    "*",
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) => {
        c.header("Allow", methods.join(", "));
        return errorResponse(c, new ApiError(405, "method_not_allowed", `${c.req.method} is not allowed here; use ${methods.join(", ")}`, "method"));
      },
    }),
  );
  app.route("/", healthRoutes);
  app.route("/api/v1/telemetry", telemetryRoutes);
  app.route("/api/v1", missionRoutes);
  app.route("/api/v1", anomalyRoutes);
  app.notFound((c) => errorResponse(c, new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, "path")));
  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err);
    if (err instanceof HTTPException) {
      const field = err.status === 400 ? "body" : undefined;
      return errorResponse(c, new ApiError(err.status as 400, err.status === 400 ? "bad_request" : "http_error", err.message, field));
    }
    return errorResponse(c, new ApiError(500, "internal_error", "internal error"));
  });
  return app;
}
