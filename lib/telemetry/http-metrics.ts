/**
 * HTTP metrics middleware: records the service-health instruments for every request and hands
 * the isolate's telemetry flush to `waitUntil`. Mount it first, so it sees every request and the
 * final response (including those of `onError` and `notFound`):
 *
 *   app.use("*", httpMetrics());
 *
 * Labels come from closed sets only: `endpoint` is the matched route pattern (never the raw
 * path), or "unmatched" when no route matched; `error_type` is derived from the status code.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { Env } from "../env";
import { flushTelemetry } from "./flush";
import { instruments } from "./instruments";

/** Options of {@link httpMetrics}. */
export interface HttpMetricsOptions {
  /** `endpoint` label of requests no route matched. Default "unmatched". */
  unmatchedEndpoint?: string;
  /** The flush handed to `waitUntil`. Default: the isolate's `flushTelemetry`. */
  flush?: (env: Env) => Promise<void>;
}

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

function safely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.warn("telemetry: recording failed", err);
  }
}

function contentLength(headers: Headers): number | undefined {
  const raw = headers.get("content-length");
  if (raw === null) return undefined;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/**
 * The request body size: its Content-Length; else the length of the body the handler read
 * (Hono caches it); else 0 (no body, or a body without Content-Length that nobody read).
 */
function requestBodySize(c: Context): number | Promise<number> {
  const declared = contentLength(c.req.raw.headers);
  if (declared !== undefined) return declared;
  const cache = c.req.bodyCache as { arrayBuffer?: Promise<ArrayBuffer>; text?: Promise<string> };
  if (cache.arrayBuffer) return cache.arrayBuffer.then((b) => b.byteLength).catch(() => 0);
  if (cache.text) return cache.text.then((t) => new TextEncoder().encode(t).byteLength).catch(() => 0);
  return 0;
}

/** The largest body buffered to set Content-Length; bigger ones keep streaming. */
const MAX_BUFFERED_RESPONSE_BYTES = 1024 * 1024;

/**
 * Gives a JSON response built in memory (c.json) its Content-Length: one read of a body that is
 * already a string, instead of teeing the stream to measure it; clients get the length too.
 */
async function withContentLength(c: Context): Promise<void> {
  try {
    const res = c.res;
    if (!res.body || res.headers.has("content-length") || !/json/i.test(res.headers.get("content-type") ?? "")) return;
    const body = await res.arrayBuffer();
    if (body.byteLength > MAX_BUFFERED_RESPONSE_BYTES) {
      c.res = new Response(body, res);
      return;
    }
    const sized = new Response(body, res);
    sized.headers.set("content-length", String(body.byteLength));
    c.res = sized;
  } catch {
    // Measuring must never break the response: fall back to the clone below.
  }
}

/**
 * Records astra_http_requests_total {method, endpoint, status}, astra_http_request_duration_seconds,
 * astra_http_request_size_bytes and astra_http_response_size_bytes {endpoint},
 * astra_active_connections (+1 while in flight) and astra_errors_total {error_type, endpoint}
 * for responses ≥ 400, then `waitUntil(flush(env))`. Recording never throws.
 *
 * Sizes: the request size is its Content-Length, else the length of the body the handler read
 * (0 without a body); the response size is its Content-Length, or else the length of its body,
 * read from a clone in `waitUntil` (never delaying the response).
 *
 * @example
 * const app = new Hono<AppEnv>();
 * app.use("*", httpMetrics());
 */
export function httpMetrics(options: HttpMetricsOptions = {}): MiddlewareHandler {
  const unmatched = options.unmatchedEndpoint ?? "unmatched";
  const flush = options.flush ?? flushTelemetry;

  return async function httpMetrics(c, next) {
    const started = performance.now();
    safely(() => instruments.activeConnections.add(1));
    try {
      await next();
      await withContentLength(c);
    } finally {
      let pending: Promise<void> = Promise.resolve();
      let pendingRequest: Promise<void> = Promise.resolve();
      safely(() => {
        const endpoint = endpointOf(c, unmatched);
        const status = c.res.status;
        const seconds = Math.max(0, (performance.now() - started) / 1000);
        instruments.httpRequests.add(1, { method: c.req.method, endpoint, status: String(status) });
        instruments.httpRequestDuration.record(seconds, { endpoint });
        const requestSize = requestBodySize(c);
        if (typeof requestSize === "number") instruments.httpRequestSize.record(requestSize, { endpoint });
        else pendingRequest = requestSize.then((n) => instruments.httpRequestSize.record(n, { endpoint }));
        const errorType = errorTypeOf(status);
        if (errorType) instruments.errors.add(1, { error_type: errorType, endpoint });
        const length = contentLength(c.res.headers);
        if (length !== undefined || !c.res.body) {
          instruments.httpResponseSize.record(length ?? 0, { endpoint });
        } else {
          // A streamed body (none in this API today): measured from a clone, off the response path.
          const clone = c.res.clone();
          pending = clone
            .arrayBuffer()
            .then((body) => instruments.httpResponseSize.record(body.byteLength, { endpoint }))
            .catch(() => undefined);
        }
        pending = Promise.all([pending, pendingRequest]).then(() => undefined);
      });
      safely(() => instruments.activeConnections.add(-1));
      safely(() => {
        const env = c.env as Env;
        c.executionCtx.waitUntil(pending.then(() => flush(env)));
      });
    }
  };
}
