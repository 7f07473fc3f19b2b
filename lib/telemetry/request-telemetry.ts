/**
 * The request's telemetry, in one middleware and in this order: the SERVER span (active for the
 * rest of the chain), then, once the response is final, the span's end, the service-health
 * metrics, the JSON log line, and `flush(env)` (in `waitUntil` when it answers a promise) — so the
 * flush always finds the span ended and the metrics recorded. Mount it right after `requestId()` and before everything else:
 *
 *   app.use("*", requestId());
 *   app.use("*", requestTelemetry({ flush: flushTelemetry }));
 *
 * Labels come from closed sets only (./labels.ts): `endpoint` is the matched route pattern,
 * "unmatched" when none matched; `error_type` comes from the status code.
 */
import { context, SpanKind, SpanStatusCode, trace, type Attributes, type Context as OtelContext, type Span, type Tracer } from "@opentelemetry/api";
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
import { safely } from "../support/safely";
import { endpointAttributes, errorAttributes, NO_ATTRIBUTES, requestAttributes } from "./bound-attributes";
import { instruments } from "./instruments";
import { recordingQueue } from "./meter-provider";
import { measureJson, utf8Length } from "./json-size";
import { endpointOf, errorType, errorTypeOf } from "./labels";
import { configureLogLevel, errorFields, logRequest, withRequestId, type LineHold, type LogLevel } from "./logger";
import { extractTraceContext, httpMethod } from "./spans";
import { tracer as serviceTracer } from "./tracer-provider";

/** Options of {@link requestTelemetry}. */
export interface RequestTelemetryOptions {
  /**
   * The isolate's flush, called after every request (the composition root wires it). What it
   * answers goes to `waitUntil`; undefined when there is nothing to keep alive (the call joined an
   * export that another request's `waitUntil` holds: `TelemetryFlusher.schedule`).
   */
  flush: (env: Env) => Promise<void> | undefined;
  /** Tracer of the server span. Default: the service tracer (./tracer-provider.ts). */
  tracer?: Tracer;
  /** Write one JSON log line per request (./logger.ts). Default true. */
  logRequests?: boolean;
  /**
   * Hold the request lines below warn here instead of writing each at once; whatever writes the
   * queue must run in `flush` (the isolate's flusher writes the isolate's `logQueue`,
   * ./log-queue.ts). Default: none, every line written at once.
   */
  logQueue?: LineHold;
  /** `endpoint` label of requests no route matched. Default "unmatched". */
  unmatchedEndpoint?: string;
}

/** User agents longer than this are cut (they are client-controlled). */
const MAX_USER_AGENT = 256;

/**
 * The Cloudflare colo (`cloud.region`), read from `request.cf` once per isolate: an isolate
 * never moves between data centers, and `request.cf` is built on access (it was the costliest
 * line of the server span's attributes). Undefined where the runtime sets no `cf`.
 */
let colo: { value: string | undefined } | undefined;
function cfColo(c: Context): string | undefined {
  if (colo) return colo.value;
  const cf = (c.req.raw as Request & { cf?: { colo?: unknown } }).cf;
  if (!cf) return undefined; // not known yet (a test harness without cf): ask again next time
  colo = { value: typeof cf.colo === "string" && cf.colo ? cf.colo : undefined };
  return colo.value;
}

const levelOf = (status: number): LogLevel => (status >= 500 ? "error" : status >= 400 ? "warn" : "info");
const spanName = (method: string, route: string): string => {
  const verb = method === "_OTHER" ? "HTTP" : method;
  return route ? `${verb} ${route}` : verb;
};

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
  if (cache.text) return cache.text.then((t) => utf8Length(t)).catch(() => 0);
  return 0;
}

/** The scheme and host of the last origin seen: one isolate serves one or a few origins, so a URL is parsed only when it changes. */
let lastOrigin: { origin: string; scheme: string; host: string } | undefined;

/** `url.scheme`, `server.address` and `url.path` of a request URL (normalized by the runtime, as `Request.url` always is). */
function urlParts(url: string): { scheme: string; host: string; path: string } {
  const authority = url.indexOf("://") + 3;
  let start = url.indexOf("/", authority);
  if (start < 0) start = url.length;
  let end = start;
  while (end < url.length && url.charCodeAt(end) !== 63 /* ? */ && url.charCodeAt(end) !== 35 /* # */) end++;
  const origin = url.slice(0, start);
  if (lastOrigin?.origin !== origin) {
    const parsed = new URL(origin);
    lastOrigin = { origin, scheme: parsed.protocol.replace(/:$/, ""), host: parsed.hostname };
  }
  return { scheme: lastOrigin.scheme, host: lastOrigin.host, path: start < end ? url.slice(start, end) : "/" };
}

/** The server span's attributes at its start (built only for a span that records; undefined values are left out). */
function serverSpanAttributes(c: Context, method: string, original: string | undefined, route: string): Attributes {
  const url = urlParts(c.req.url);
  return {
    [ATTR_HTTP_REQUEST_METHOD]: method,
    [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: original,
    [ATTR_HTTP_ROUTE]: route || undefined,
    [ATTR_URL_PATH]: url.path,
    [ATTR_URL_SCHEME]: url.scheme,
    [ATTR_SERVER_ADDRESS]: url.host,
    [ATTR_USER_AGENT_ORIGINAL]: c.req.header("User-Agent")?.slice(0, MAX_USER_AGENT),
    [ATTR_CLOUD_PROVIDER]: "cloudflare",
    [ATTR_CLOUD_REGION]: cfColo(c),
    "astra.request.id": (c.get("requestId") as string | undefined) ?? undefined,
  };
}

/**
 * Starts the request's SERVER span; undefined if that fails (telemetry never fails the request).
 * Attributes are set after the sampling decision, and only on a span that records: an unsampled
 * request (90 % of them at OTEL_TRACES_SAMPLER_ARG=0.1) builds none. (The sampler is parent-based
 * ratio sampling, which reads no attributes.)
 */
function startServerSpan(c: Context, tracer: Tracer, method: string, original: string | undefined, requestId: string | undefined): { span: Span; active: OtelContext } | undefined {
  try {
    // The incoming traceparent, else whatever is active (a root context in production).
    const parent = extractTraceContext(c.req.raw.headers, context.active());
    const route = endpointOf(c, "");
    const span = tracer.startSpan(spanName(method, route), { kind: SpanKind.SERVER }, parent);
    if (span.isRecording()) span.setAttributes(serverSpanAttributes(c, method, original, route));
    return { span, active: withRequestId(trace.setSpan(parent, span), requestId) };
  } catch {
    return undefined;
  }
}

/** Ends the span with the final route and status; 5xx are errors, 4xx stay UNSET (semantic conventions). */
function endServerSpan(span: Span, method: string, route: string, status: number, err: unknown): void {
  safely(() => {
    if (span.isRecording()) {
      if (route) {
        span.updateName(spanName(method, route));
        span.setAttribute(ATTR_HTTP_ROUTE, route);
      }
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (status >= 500) {
        if (err !== undefined) span.recordException(err instanceof Error ? err : String(err));
        span.setAttribute(ATTR_ERROR_TYPE, err !== undefined ? errorType(err) : String(status));
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    span.end();
  });
}

/**
 * Records astra_http_requests_total {method, endpoint, status}, astra_http_request_duration_seconds,
 * astra_http_request_size_bytes and astra_http_response_size_bytes {endpoint}, and
 * astra_errors_total {error_type, endpoint} for responses ≥ 400, with attribute sets made once
 * per route (./bound-attributes.ts), through the isolate's recording queue (applied at the next
 * collection, ./recording-queue.ts). Answers undefined when all is recorded, else a promise that
 * resolves when sizes that need a body read (a request body without Content-Length, a response
 * not built by `c.json`) are recorded.
 */
function recordMetrics(c: Context, endpoint: string, status: number, seconds: number, jsonBytes: number | undefined): Promise<void> | undefined {
  let pending: Promise<unknown>[] | undefined;
  safely(() => {
    const byEndpoint = endpointAttributes(endpoint);
    recordingQueue.add(instruments.httpRequests, 1, requestAttributes(c.req.method, endpoint, status));
    recordingQueue.record(instruments.httpRequestDuration, seconds, byEndpoint);
    const requestSize = requestBodySize(c);
    if (typeof requestSize === "number") recordingQueue.record(instruments.httpRequestSize, requestSize, byEndpoint);
    else (pending ??= []).push(requestSize.then((n) => recordingQueue.record(instruments.httpRequestSize, n, byEndpoint)));
    const type = errorTypeOf(status);
    if (type) recordingQueue.add(instruments.errors, 1, errorAttributes(type, endpoint));
    const res = c.res;
    // The body c.json built (the runtime sends its Content-Length itself); else a declared length.
    const length = jsonBytes !== undefined && /json/i.test(res.headers.get("content-type") ?? "") ? jsonBytes : contentLength(res.headers);
    if (length !== undefined || !res.body) recordingQueue.record(instruments.httpResponseSize, length ?? 0, byEndpoint);
    // Any other body (none in this API today): measured from a clone, off the response path.
    else (pending ??= []).push(res.clone().arrayBuffer().then((b) => recordingQueue.record(instruments.httpResponseSize, b.byteLength, byEndpoint)));
  });
  return pending && Promise.all(pending.map((p) => p.catch(() => undefined))).then(() => undefined);
}

/** Calls the flush once the request's metrics are recorded, and keeps what it answers alive with `waitUntil`. */
function flushAfter(c: Context, recorded: Promise<void> | undefined, flush: RequestTelemetryOptions["flush"]): void {
  safely(() => {
    const env = c.env as Env;
    const pending = recorded ? recorded.then(() => flush(env)) : flush(env);
    if (pending) c.executionCtx.waitUntil(pending);
  });
}

/**
 * One middleware for a request's telemetry: a SERVER span with OpenTelemetry HTTP semantic
 * conventions (parent: a valid incoming W3C `traceparent`, else a new root sampled at
 * OTEL_TRACES_SAMPLER_ARG; name `${method} ${route pattern}`; `http.*`, `url.*`,
 * `server.address`, `user_agent.original` ≤ 256 chars, `cloud.provider`, `cloud.region` = colo;
 * 5xx → ERROR with `error.type`), the service-health metrics, in-flight requests
 * (astra_active_connections), one JSON log line with `trace_id`/`span_id` (held for the flush
 * with `logQueue`), then the flush, in `waitUntil` when it answers a promise. The response is never rebuilt (the runtime sets Content-Length; the size metric
 * comes from the body `c.json` serialized). Recording never throws.
 *
 * @example
 * const app = new Hono<AppEnv>();
 * app.use("*", requestId());
 * app.use("*", requestTelemetry({ flush: (env) => flusher.schedule(env), logQueue }));
 */
export function requestTelemetry(options: RequestTelemetryOptions): MiddlewareHandler {
  const { flush } = options;
  const tracer = options.tracer ?? serviceTracer;
  const logRequests = options.logRequests ?? true;
  const logQueue = options.logQueue;
  const unmatched = options.unmatchedEndpoint ?? "unmatched";

  return async function requestTelemetry(c, next) {
    const started = performance.now();
    recordingQueue.add(instruments.activeConnections, 1, NO_ATTRIBUTES);
    configureLogLevel((c.env as Partial<Env> | undefined)?.LOG_LEVEL);
    const requestId = c.get("requestId") as string | undefined;
    const { method, original } = httpMethod(c.req.method);
    const server = startServerSpan(c, tracer, method, original, requestId);
    const jsonBytes = measureJson(c);
    let thrown: unknown;
    try {
      await context.with(server?.active ?? withRequestId(context.active(), requestId), next);
    } catch (err) {
      thrown = err ?? new Error("thrown without a value");
      throw err;
    } finally {
      let route = "";
      safely(() => (route = endpointOf(c, "")));
      const status = thrown === undefined ? c.res.status : 500;
      const err: unknown = thrown ?? c.error;
      const seconds = Math.max(0, (performance.now() - started) / 1000);
      if (server) endServerSpan(server.span, method, route, status, err);
      const recorded = recordMetrics(c, route || unmatched, status, seconds, thrown === undefined ? jsonBytes() : undefined);
      recordingQueue.add(instruments.activeConnections, -1, NO_ATTRIBUTES);
      if (logRequests)
        logRequest(
          levelOf(status),
          {
            method: c.req.method.slice(0, 16),
            route: route || "unmatched",
            path: route ? undefined : new URL(c.req.url).pathname.slice(0, 128),
            status,
            duration_ms: Math.round(seconds * 1e6) / 1000,
            request_id: requestId,
            user_agent: c.req.header("User-Agent"),
            ...(err !== undefined && errorFields(err)),
          },
          server?.span,
          logQueue,
        );
      flushAfter(c, recorded, flush);
    }
  };
}
