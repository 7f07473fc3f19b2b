/**
 * JSON logs joined to traces: one line per request (written by `requestTelemetry()`, ./request-telemetry.ts) and
 * one per notable event (anomaly detected, phase changed, auth failed, unhandled error).
 *
 * Each line is one JSON object on `console.log` / `console.warn` / `console.error` (the method
 * matches the level, which is what Workers Logs files the line under), with `time`, `level`,
 * `msg`, the caller's fields, and `trace_id` / `span_id` of the active span (or the span passed
 * in), so a line can be looked up in Jaeger and a span's logs found by its trace id.
 *
 * Never logged: bodies, headers other than the user agent, anything whose key looks like a
 * credential (`authorization`, `cookie`, `token`, `secret`, `password`, `api_key` → `[redacted]`).
 * Strings are cut at {@link MAX_LOG_STRING} characters and a line keeps at most
 * {@link MAX_LOG_FIELDS} fields. Logging never throws.
 */
import { errorType } from "./labels";
import { context, isSpanContextValid, trace, type Span } from "@opentelemetry/api";

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogValue = string | number | boolean | null | undefined;
export type LogFields = Record<string, LogValue>;

/** Longest string value kept in a line; longer ones end in "…". */
export const MAX_LOG_STRING = 256;
/** Most caller fields kept in a line. */
export const MAX_LOG_FIELDS = 32;

const SECRET_KEY = /authorization|cookie|token|secret|password|passwd|api[-_]?key/i;

const SINKS: Record<LogLevel, (line: string) => void> = {
  debug: (line) => console.debug(line),
  info: (line) => console.log(line),
  warn: (line) => console.warn(line),
  error: (line) => console.error(line),
};

function clean(value: LogValue): LogValue {
  if (typeof value === "string") return value.length > MAX_LOG_STRING ? `${value.slice(0, MAX_LOG_STRING - 1)}…` : value;
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
}

/**
 * Writes one JSON log line. `span` defaults to the active span; its ids join the line to the trace.
 *
 * @example
 * log("warn", "auth_failed", { outcome: "invalid_token", route: "/api/v1/phase" });
 * // {"time":"…","level":"warn","msg":"auth_failed","outcome":"invalid_token","route":"/api/v1/phase","trace_id":"4bf9…","span_id":"00f0…"}
 */
export function log(level: LogLevel, msg: string, fields: LogFields = {}, span?: Span): void {
  try {
    const line: Record<string, LogValue> = { time: new Date().toISOString(), level, msg };
    let kept = 0;
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined || key in line) continue;
      if (kept++ >= MAX_LOG_FIELDS) break;
      line[key] = SECRET_KEY.test(key) ? "[redacted]" : clean(value);
    }
    const spanContext = (span ?? trace.getSpan(context.active()))?.spanContext();
    if (spanContext && isSpanContextValid(spanContext)) {
      line.trace_id = spanContext.traceId;
      line.span_id = spanContext.spanId;
    }
    SINKS[level](JSON.stringify(line));
  } catch {
    // A log line is never worth failing a request for.
  }
}

/**
 * An error as log fields: its type (an API error's code, else the class name) and a short
 * message (never the stack: it can quote input).
 *
 * @example
 * log("error", "unhandled_error", { ...errorFields(err), route });
 */
export function errorFields(err: unknown): { error_type: string; error_message: string } {
  const message = err instanceof Error ? err.message : String(err);
  return { error_type: errorType(err), error_message: message.slice(0, 200) };
}

