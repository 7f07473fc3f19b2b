/**
 * JSON logs joined to traces: one line per request (written by `requestTelemetry()`, ./request-telemetry.ts,
 * through the isolate's flush when it holds them, ./log-queue.ts) and one per notable event
 * (anomaly detected, phase changed, auth failed, unhandled error), written at once.
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
import { context, createContextKey, isSpanContextValid, trace, type Context as OtelContext, type Span } from "@opentelemetry/api";

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogValue = string | number | boolean | null | undefined;
export type LogFields = Record<string, LogValue>;

/** Longest string value kept in a line; longer ones end in "…". */
export const MAX_LOG_STRING = 256;
/** Most caller fields kept in a line. */
export const MAX_LOG_FIELDS = 32;

const SECRET_KEY = /authorization|cookie|token|secret|password|passwd|api[-_]?key/i;

/** A level's rank: its place in LOG_LEVELS. */
const RANK = Object.fromEntries(LOG_LEVELS.map((level, i) => [level, i])) as Record<LogLevel, number>;
/** The level from the deployment's LOG_LEVEL var, and the one set at run time (admin API), which wins. */
let configured: LogLevel = "info";
let configuredFrom: string | undefined;
let override: LogLevel | undefined;
let threshold = RANK.info;

/** `raw` as a level, or undefined when it is not one. */
export const parseLogLevel = (raw: unknown): LogLevel | undefined =>
  typeof raw === "string" && (LOG_LEVELS as readonly string[]).includes(raw.trim().toLowerCase()) ? (raw.trim().toLowerCase() as LogLevel) : undefined;

/** Applies the deployment's LOG_LEVEL (default info; an invalid value counts as unset). Cheap when unchanged. */
export function configureLogLevel(raw: string | undefined): void {
  if (raw === configuredFrom) return;
  configuredFrom = raw;
  configured = parseLogLevel(raw) ?? "info";
  threshold = RANK[override ?? configured];
}

/** Sets (or with undefined, clears) the run-time level that overrides LOG_LEVEL. */
export function setLogLevelOverride(level: LogLevel | undefined): void {
  override = level;
  threshold = RANK[override ?? configured];
}

/** The level in force, and where it comes from. */
export function logLevel(): { level: LogLevel; source: "runtime" | "LOG_LEVEL" } {
  return { level: override ?? configured, source: override ? "runtime" : "LOG_LEVEL" };
}

/** Request ids as the service accepts them (X-Request-Id, and the id carried into Durable Objects). */
export const REQUEST_ID_PATTERN = /^[\w\-=]{1,128}$/;
const REQUEST_ID_KEY = createContextKey("astra.request_id");

/** `ctx` carrying the request id, so every line logged under it names the request. */
export const withRequestId = (ctx: OtelContext, id: string | undefined): OtelContext =>
  id !== undefined && REQUEST_ID_PATTERN.test(id) ? ctx.setValue(REQUEST_ID_KEY, id) : ctx;

/** The request id of `ctx` (default: the active context), if any. */
export const activeRequestId = (ctx: OtelContext = context.active()): string | undefined => ctx.getValue(REQUEST_ID_KEY) as string | undefined;

const SINKS: Record<LogLevel, (line: string) => void> = {
  debug: (line) => console.debug(line),
  info: (line) => console.log(line),
  warn: (line) => console.warn(line),
  error: (line) => console.error(line),
};

/** Writes a finished line with the console method of its level. Never throws. */
export function writeLine(level: LogLevel, line: string): void {
  try {
    SINKS[level](line);
  } catch {
    // A log line is never worth failing a request for.
  }
}

/** Where {@link logRequest} can hold a line instead of writing it (./log-queue.ts). */
export interface LineHold {
  hold(level: LogLevel, line: string): void;
}

function clean(value: LogValue): LogValue {
  if (typeof value === "string") return value.length > MAX_LOG_STRING ? `${value.slice(0, MAX_LOG_STRING - 1)}…` : value;
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
}

/**
 * Writes one JSON log line, unless `level` is below the level in force (then it costs one
 * comparison). `span` defaults to the active span; its ids join the line to the trace, and the
 * active request id (see {@link withRequestId}) joins it to the request.
 *
 * @example
 * log("warn", "auth_failed", { outcome: "invalid_token", route: "/api/v1/phase" });
 * // {"time":"…","level":"warn","msg":"auth_failed","outcome":"invalid_token","route":"/api/v1/phase","trace_id":"4bf9…","span_id":"00f0…"}
 */
export function log(level: LogLevel, msg: string, fields: LogFields = {}, span?: Span): void {
  if (RANK[level] < threshold) return;
  write(level, msg, fields, span);
}

/** Like {@link log}, whatever the level in force: for the few lines an audit needs (a level change). */
export function logAlways(level: LogLevel, msg: string, fields: LogFields = {}, span?: Span): void {
  write(level, msg, fields, span);
}

function write(level: LogLevel, msg: string, fields: LogFields, span: Span | undefined): void {
  try {
    const line: Record<string, LogValue> = { time: new Date().toISOString(), level, msg };
    let kept = 0;
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined || key in line) continue;
      if (kept++ >= MAX_LOG_FIELDS) break;
      line[key] = SECRET_KEY.test(key) ? "[redacted]" : clean(value);
    }
    if (line.request_id === undefined) {
      const id = activeRequestId();
      if (id !== undefined) line.request_id = id;
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

/** The fields of the per-request line, in the order they are written. */
export interface RequestLineFields {
  method: string;
  route: string;
  /** Only for requests no route matched. */
  path?: string;
  status: number;
  duration_ms: number;
  request_id?: string;
  user_agent?: string;
  error_type?: string;
  error_message?: string;
}

const jsonString = (value: string): string => JSON.stringify(clean(value));
const jsonNumber = (value: number): string => (Number.isFinite(value) ? String(value) : JSON.stringify(String(value)));

/**
 * Writes the per-request line (`msg: "request"`): the same JSON text {@link log} writes for these
 * fields, built as one string from fixed keys — no intermediate object, no per-key redaction
 * test (none of these keys is credential-like), one JSON.stringify per string value. Unless
 * `level` is below the level in force (then one comparison). With `hold`, a line below warn is
 * handed to it instead of written (the isolate's flush writes it, ./log-queue.ts). Never throws.
 *
 * @example
 * logRequest("info", { method: "POST", route: "/api/v1/telemetry", status: 200, duration_ms: 1.2, request_id: "r-1" }, span);
 * // {"time":"…","level":"info","msg":"request","method":"POST","route":"/api/v1/telemetry","status":200,"duration_ms":1.2,"request_id":"r-1","trace_id":"…","span_id":"…"}
 */
export function logRequest(level: LogLevel, f: RequestLineFields, span?: Span, hold?: LineHold): void {
  if (RANK[level] < threshold) return;
  try {
    let line = `{"time":"${new Date().toISOString()}","level":"${level}","msg":"request","method":${jsonString(f.method)},"route":${jsonString(f.route)}`;
    if (f.path !== undefined) line += `,"path":${jsonString(f.path)}`;
    line += `,"status":${jsonNumber(f.status)},"duration_ms":${jsonNumber(f.duration_ms)}`;
    const requestId = f.request_id ?? activeRequestId();
    if (requestId !== undefined) line += `,"request_id":${jsonString(requestId)}`;
    if (f.user_agent !== undefined) line += `,"user_agent":${jsonString(f.user_agent)}`;
    if (f.error_type !== undefined) line += `,"error_type":${jsonString(f.error_type)}`;
    if (f.error_message !== undefined) line += `,"error_message":${jsonString(f.error_message)}`;
    const spanContext = (span ?? trace.getSpan(context.active()))?.spanContext();
    if (spanContext && isSpanContextValid(spanContext)) line += `,"trace_id":"${spanContext.traceId}","span_id":"${spanContext.spanId}"`;
    if (hold && RANK[level] < RANK.warn) hold.hold(level, `${line}}`);
    else SINKS[level](`${line}}`);
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

