/** JSON log lines: shape, trace ids of the active span, redaction, bounds, never throwing. */
import { afterEach, describe, expect, it, vi } from "vitest";
import { errorFields, log, MAX_LOG_FIELDS, MAX_LOG_STRING } from "../../../lib/telemetry/logger";
import { spanBuffer } from "../../../lib/telemetry/tracer-provider";
import { withSpan } from "../../../lib/telemetry/spans";

function capture() {
  const out: Array<{ method: string; line: any }> = [];
  const spies = (["debug", "log", "warn", "error"] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation((text: unknown) => void out.push({ method: m, line: JSON.parse(String(text)) })),
  );
  return { out, restore: () => spies.forEach((s) => s.mockRestore()) };
}

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  spanBuffer.drain();
});

describe("log()", () => {
  it("writes one JSON line on the console method of its level, with time, level, msg and the fields", () => {
    const c = capture();
    restore = c.restore;
    log("info", "request", { route: "/x", status: 200, ok: true, none: null, skipped: undefined });
    log("warn", "auth_failed", { outcome: "invalid_token" });
    log("error", "unhandled_error", { error_type: "TypeError" });
    expect(c.out.map((o) => o.method)).toEqual(["log", "warn", "error"]);
    const first = c.out[0]!.line;
    expect(Object.keys(first).slice(0, 3)).toEqual(["time", "level", "msg"]);
    expect(first).toMatchObject({ level: "info", msg: "request", route: "/x", status: 200, ok: true, none: null });
    expect("skipped" in first).toBe(false);
    expect(Number.isNaN(Date.parse(first.time))).toBe(false);
    expect(first.trace_id).toBeUndefined();
  });

  it("carries trace_id and span_id of the active span", () => {
    const c = capture();
    restore = c.restore;
    const ids = withSpan("work", {}, (span) => {
      log("info", "inside");
      return span.spanContext();
    });
    expect(c.out[0]!.line).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId });
  });

  it("redacts credential-like keys, cuts long strings, keeps at most MAX_LOG_FIELDS fields, and cannot be overridden on time/level/msg", () => {
    const c = capture();
    restore = c.restore;
    const many = Object.fromEntries(Array.from({ length: MAX_LOG_FIELDS + 10 }, (_, i) => [`f${i}`, i]));
    log("info", "x", { authorization: "Bearer abc", api_key: "k", OTEL_EXPORTER_OTLP_TOKEN: "t", Cookie: "c", password: "p", long: "y".repeat(5000), level: "fake", msg: "fake" });
    log("info", "y", many);
    const [a, b] = c.out.map((o) => o.line);
    for (const key of ["authorization", "api_key", "OTEL_EXPORTER_OTLP_TOKEN", "Cookie", "password"]) expect(a[key]).toBe("[redacted]");
    expect(a.long).toHaveLength(MAX_LOG_STRING);
    expect(a).toMatchObject({ level: "info", msg: "x" });
    expect(Object.keys(b).filter((k) => k.startsWith("f"))).toHaveLength(MAX_LOG_FIELDS);
  });

  it("never throws, even when the console does", () => {
    const spy = vi.spyOn(console, "log").mockImplementation(() => {
      throw new Error("console broken");
    });
    restore = () => spy.mockRestore();
    expect(() => log("info", "x", { n: Number.NaN })).not.toThrow();
  });
});

describe("errorFields()", () => {
  it("names an API error by its code, others by class; never the stack; message bounded", () => {
    const apiError = Object.assign(new Error("storage is down"), { name: "ApiError", code: "storage_unavailable" });
    expect(errorFields(apiError)).toEqual({ error_type: "storage_unavailable", error_message: "storage is down" });
    expect(errorFields(new TypeError("x".repeat(1000))).error_message).toHaveLength(200);
    expect(errorFields(new TypeError("bad")).error_type).toBe("TypeError");
    // One naming for spans and logs (labels.ts errorType): a thrown non-Error is "_OTHER", as in semantic conventions.
    expect(errorFields("plain").error_type).toBe("_OTHER");
  });
});
