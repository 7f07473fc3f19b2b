/**
 * The AstraGuard Edge API: request → middleware (request id, telemetry, security) → route → lib/.
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { methodNotAllowed } from "hono/method-not-allowed";
import { requestId } from "hono/request-id";
import type { AppEnv } from "../lib/env";
import { httpMetrics } from "../lib/telemetry/http-metrics";
import { ApiError, errorResponse } from "../lib/http/errors";
import { anomalyRoutes } from "./routes/anomalies";
import { healthRoutes } from "./routes/health";
import { missionRoutes } from "./routes/mission";
import { telemetryRoutes } from "./routes/telemetry";

export const app = new Hono<AppEnv>();

// First, so it sees every request and the final response, and flushes after the span has ended.
app.use("*", httpMetrics());
app.use("*", requestId());
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
    // Hono's own errors: malformed JSON in the validator, mostly.
    const field = err.status === 400 ? "body" : undefined;
    return errorResponse(c, new ApiError(err.status as 400, err.status === 400 ? "bad_request" : "http_error", err.message, field));
  }
  // Never leak a stack: log the type, answer a generic 500.
  console.error(JSON.stringify({ level: "error", event: "unhandled_error", error_type: err?.name ?? "Error", message: String(err?.message ?? err).slice(0, 200), request_id: c.get("requestId") }));
  return errorResponse(c, new ApiError(500, "internal_error", "internal error"));
});
