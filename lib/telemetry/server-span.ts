/**
 * The SERVER span of a request and its JSON log line: the `serverSpan()` middleware. Public API
 * via ./tracing.ts.
 */
import { context, SpanKind, SpanStatusCode, trace, type Context as OtelContext, type Span, type Tracer } from "@opentelemetry/api";
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from "@opentelemetry/semantic-conventions";
import { ATTR_CLOUD_PROVIDER, ATTR_CLOUD_REGION } from "@opentelemetry/semantic-conventions/incubating";
import type { Context, MiddlewareHandler } from "hono";
import { endpointOf } from "./http-metrics";
import { errorFields, log, type LogLevel } from "./logger";
import { defined, errorType, extractTraceContext, httpMethod, safely } from "./spans";
import { tracer as serviceTracer } from "./tracer-provider";

/** User agents longer than this are cut (they are client-controlled). */
const MAX_USER_AGENT = 256;

/** Options of {@link serverSpan}. */
export interface ServerSpanOptions {
  /** Tracer of the server span. Default: the service tracer (./tracer-provider.ts). */
  tracer?: Tracer;
  /** Write one JSON log line per request (./logger.ts). Default true. */
  logRequests?: boolean;
}

/** `request.cf` where the runtime sets it (not in every test harness). */
function cfColo(c: Context): string | undefined {
  const cf = (c.req.raw as Request & { cf?: { colo?: unknown } }).cf;
  return typeof cf?.colo === "string" && cf.colo ? cf.colo : undefined;
}

function levelOf(status: number): LogLevel {
  return status >= 500 ? "error" : status >= 400 ? "warn" : "info";
}

/**
 * A SERVER span per request, with OpenTelemetry HTTP semantic conventions, active for the rest of
 * the chain; and one JSON log line per request carrying its `trace_id`/`span_id`.
 *
 * - Parent: the incoming W3C `traceparent`/`tracestate` when valid (its trace id is kept and its
 *   sampled flag decides, parent-based); else a new root, sampled at OTEL_TRACES_SAMPLER_ARG.
 * - Name `${method} ${route}` with the route pattern (never the raw path); just the method when
 *   no route matched.
 * - Attributes: http.request.method, http.route, http.response.status_code, url.path,
 *   url.scheme, server.address, user_agent.original (≤256 chars), cloud.provider=cloudflare,
 *   cloud.region = `request.cf.colo` where present.
 * - 5xx: ERROR status and `error.type` (the API error code, the exception class, or the status);
 *   a thrown error is recorded as an exception event. 4xx stay UNSET (semantic conventions).
 *
 * Mount it inside `httpMetrics()` (which flushes after the span has ended) and after
 * `requestId()` (the log line and span carry the request id).
 *
 * @example
 * app.use("*", httpMetrics());
 * app.use("*", requestId());
 * app.use("*", serverSpan());
 */
export function serverSpan(options: ServerSpanOptions = {}): MiddlewareHandler {
  const logRequests = options.logRequests ?? true;

  return async function serverSpan(c, next) {
    const started = performance.now();
    const { method, original } = httpMethod(c.req.method);
    let path = "";
    let span: Span | undefined;
    let active: OtelContext | undefined;
    try {
      const url = new URL(c.req.url);
      path = url.pathname;
      // The incoming traceparent, else whatever is active (a root context in production).
      const parent = extractTraceContext(c.req.raw.headers, context.active());
      const route = endpointOf(c, "");
      span = (options.tracer ?? serviceTracer).startSpan(
        route ? `${method === "_OTHER" ? "HTTP" : method} ${route}` : method === "_OTHER" ? "HTTP" : method,
        {
          kind: SpanKind.SERVER,
          attributes: defined({
            [ATTR_HTTP_REQUEST_METHOD]: method,
            [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: original,
            [ATTR_HTTP_ROUTE]: route || undefined,
            [ATTR_URL_PATH]: url.pathname,
            [ATTR_URL_SCHEME]: url.protocol.replace(/:$/, ""),
            [ATTR_SERVER_ADDRESS]: url.hostname,
            [ATTR_USER_AGENT_ORIGINAL]: c.req.header("User-Agent")?.slice(0, MAX_USER_AGENT),
            [ATTR_CLOUD_PROVIDER]: "cloudflare",
            [ATTR_CLOUD_REGION]: cfColo(c),
            "astra.request.id": (c.get("requestId") as string | undefined) ?? undefined,
          }),
        },
        parent,
      );
      active = trace.setSpan(parent, span);
    } catch {
      span = undefined;
    }

    let thrown: unknown;
    try {
      if (active) await context.with(active, next);
      else await next();
    } catch (err) {
      thrown = err ?? new Error("thrown without a value");
      throw err;
    } finally {
      const route = safeRoute(c);
      const status = thrown === undefined ? c.res.status : 500;
      const err: unknown = thrown ?? c.error;
      if (span) {
        const s = span;
        safely(() => {
          if (route) {
            s.updateName(`${method === "_OTHER" ? "HTTP" : method} ${route}`);
            s.setAttribute(ATTR_HTTP_ROUTE, route);
          }
          s.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
          if (status >= 500) {
            if (err !== undefined) s.recordException(err instanceof Error ? err : String(err));
            s.setAttribute(ATTR_ERROR_TYPE, err !== undefined ? errorType(err) : String(status));
            s.setStatus({ code: SpanStatusCode.ERROR });
          }
          s.end();
        });
      }
      if (logRequests) {
        log(
          levelOf(status),
          "request",
          {
            method: c.req.method.slice(0, 16),
            route: route || "unmatched",
            path: route ? undefined : path.slice(0, 128),
            status,
            duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
            request_id: (c.get("requestId") as string | undefined) ?? undefined,
            user_agent: c.req.header("User-Agent"),
            ...(err !== undefined && errorFields(err)),
          },
          span,
        );
      }
    }
  };
}

function safeRoute(c: Context): string {
  try {
    return endpointOf(c, "");
  } catch {
    return "";
  }
}
