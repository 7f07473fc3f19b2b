/**
 * The AstraGuard Edge API: request → middleware (request id, telemetry, security) → route → lib/.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import type { AppEnv } from "../lib/env";
import { requestTelemetry } from "../lib/telemetry/request-telemetry";
import { errorFields, log } from "../lib/telemetry/logger";
import { logQueue } from "../lib/telemetry/log-queue";
import { flushTelemetry } from "./telemetry";
import { ApiError, errorResponse } from "../lib/http/errors";
import { apiCors } from "../lib/http/cors";
import { apiSecurityHeaders } from "../lib/http/security-headers";
import { readAccess } from "../lib/http/read-access";
import { declareKnownSeries } from "../lib/mission/known-series";
import { anomalyRoutes } from "./routes/anomalies";
import { chaosRoutes } from "./routes/chaos";
import { fleetRoutes } from "./routes/fleet";
import { logLevelRoutes } from "./routes/log-level";
import { healthRoutes } from "./routes/health";
import { missionRoutes } from "./routes/mission";
import { telemetryRoutes } from "./routes/telemetry";

export interface CreateAppOptions {
  /** Record metrics and spans and flush them (default true); false is the bench's "bare" variant. */
  telemetry?: boolean;
  /** Middleware mounted before everything else (the bench mounts other instrumentations here). */
  first?: MiddlewareHandler<AppEnv>[];
}

/**
 * Builds the API. The Worker serves `createApp()`; benchmarks build variants from the same code.
 * @example const bare = createApp({ telemetry: false });
 */
export function createApp({ telemetry = true, first = [] }: CreateAppOptions = {}): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  for (const middleware of first) app.use("*", middleware);
  // An incoming X-Request-Id is kept when it matches REQUEST_ID_PATTERN (≤ 128 of [A-Za-z0-9_=-]),
  // else replaced by a new one; either way it is echoed and carried into every log line.
  app.use("*", requestId({ limitLength: 128 }));
  // Span, metrics, log line, then the flush; before everything else, so it sees every request
  // and its final response (errors and 404s included).
  // Request lines below warn wait in the isolate's logQueue for that flush (./telemetry.ts).
  if (telemetry) app.use("*", requestTelemetry({ flush: flushTelemetry, logQueue }));
  // Security headers on every answer (errors included); CORS only for the origins CORS_ALLOW_ORIGINS lists.
  app.use("*", apiSecurityHeaders());
  app.use("*", apiCors());
  // Reads under /api/ need a token only when REQUIRE_READ_TOKEN is "true"; / and /health stay open.
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
  app.route("/api/v1/fleet", fleetRoutes);
  app.route("/api/v1/chaos", chaosRoutes);
  app.route("/api/v1/log-level", logLevelRoutes);

  app.notFound((c) => errorResponse(c, new ApiError(404, "not_found", `no route for ${c.req.method} ${new URL(c.req.url).pathname}`, "path")));

  // Counters of closed label sets start at 0 in Prometheus, not at "No data".
  if (telemetry) declareKnownSeries(app.routes.filter((r) => r.method !== "ALL").map((r) => r.path));

  app.onError((err, c) => {
    if (err instanceof ApiError) return errorResponse(c, err);
    if (err instanceof HTTPException) {
      // Hono's own errors: malformed JSON in the validator, mostly.
      const field = err.status === 400 ? "body" : undefined;
      return errorResponse(c, new ApiError(err.status as 400, err.status === 400 ? "bad_request" : "http_error", err.message, field));
    }
    // Never leak a stack: log the type, answer a generic 500.
    log("error", "unhandled_error", { ...errorFields(err), route: c.req.routePath, request_id: c.get("requestId") });
    return errorResponse(c, new ApiError(500, "internal_error", "internal error"));
  });

  return app;
}

export const app = createApp();
