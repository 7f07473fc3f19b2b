/**
 * Closed label values, computed in one place: the route pattern a request matched (`endpoint`,
 * `http.route`), the `error_type` of a status code, and the `error.type` of an exception.
 */
import type { Context } from "hono";
import { matchedRoutes } from "hono/route";

/** The closed set of `error_type` values, by status code; other 4xx/5xx map to client_error/server_error. */
export const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  405: "method_not_allowed",
  408: "timeout",
  409: "conflict",
  413: "payload_too_large",
  415: "unsupported_media_type",
  422: "validation_error",
  429: "rate_limited",
  500: "internal_error",
  502: "bad_gateway",
  503: "unavailable",
  504: "timeout",
};

/** The `error_type` of a status, or undefined below 400. */
export function errorTypeOf(status: number): string | undefined {
  if (status < 400) return undefined;
  return ERROR_TYPES[status] ?? (status < 500 ? "client_error" : "server_error");
}

/**
 * The route pattern a request was routed to: the route that answered, when it was registered for
 * a method; else the last matched route registered for a method (middlewares registered with
 * `use` have the method "ALL" and are skipped); else `unmatched`.
 */
export function endpointOf(c: Context, unmatched = "unmatched"): string {
  try {
    const routes = matchedRoutes(c);
    const answering = routes[c.req.routeIndex];
    if (answering && answering.method !== "ALL") return answering.path;
    for (let i = routes.length - 1; i >= 0; i--) {
      const route = routes[i]!;
      if (route.method !== "ALL") return route.path;
    }
  } catch {
    // No match result (e.g. a context built by hand).
  }
  return unmatched;
}

/**
 * The low-cardinality type of an error: an API error's code (e.g. "storage_unavailable"), else
 * the class name, else "_OTHER" (semantic conventions' `error.type`). Used by spans and log lines.
 */
export function errorType(err: unknown): string {
  if (err && typeof err === "object" && "code" in err && typeof err.code === "string" && err.code) return err.code;
  if (err instanceof Error) return err.name || "Error";
  return "_OTHER";
}
