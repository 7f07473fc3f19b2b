/**
 * One request's log lines, in the isolate and inside the MissionState object, share its
 * request_id and trace_id; an incoming X-Request-Id is kept when it is safe and replaced when it
 * is not; lines below the level in force are not written.
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../../../functions/app";
import { configureLogLevel, log, logLevel, setLogLevelOverride } from "../../../lib/telemetry/logger";

const testEnv = env as unknown as Env;
const hex = (bytes: number) => [...crypto.getRandomValues(new Uint8Array(bytes))].map((b) => b.toString(16).padStart(2, "0")).join("");

function captureLines() {
  const lines: Record<string, unknown>[] = [];
  const spies = (["debug", "log", "warn", "error"] as const).map((m) =>
    vi.spyOn(console, m).mockImplementation((...args: unknown[]) => {
      try {
        lines.push(JSON.parse(String(args[0])));
      } catch {
        // not one of ours
      }
    }),
  );
  return { lines, restore: () => spies.forEach((s) => s.mockRestore()) };
}

/** One request to the app; waits for its flush (waitUntil) before answering status, headers and the parsed body. */
async function send(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`http://astraguard.test${path}`, { method, headers: { ...(body !== undefined && { "content-type": "application/json" }), ...headers }, body: body === undefined ? undefined : JSON.stringify(body) }),
    testEnv,
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: left as text
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

let restore: (() => void) | undefined;
afterEach(() => {
  restore?.();
  setLogLevelOverride(undefined);
  configureLogLevel(undefined);
});

// Each request waits for its flush, which starts at most once a second (the flusher's interval).
describe("log lines of one request", { timeout: 30_000 }, () => {
  it("carry its request_id and trace_id, in the isolate and inside the Durable Object", async () => {
    const capture = captureLines();
    restore = capture.restore;
    const traceId = hex(16);
    const requestId = "sat-ops-2026-12-01-0001";
    const res = await send("POST", "/api/v1/phase", { authorization: `Bearer ${testEnv.ADMIN_TOKEN}`, traceparent: `00-${traceId}-${hex(8)}-01`, "x-request-id": requestId }, { phase: "SAFE_MODE", force: true, reason: "log test" });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe(requestId);
    const phaseChanged = capture.lines.find((l) => l.msg === "phase_changed"); // written inside MissionState
    const request = capture.lines.find((l) => l.msg === "request");
    expect(phaseChanged).toMatchObject({ request_id: requestId, trace_id: traceId });
    expect(request).toMatchObject({ request_id: requestId, trace_id: traceId, route: "/api/v1/phase" });
    // The object's line is under the object's span, the request line under the server span: same trace.
    expect(phaseChanged!.span_id).not.toBe(request!.span_id);
  });

  it("an anomaly's line names the request that brought the reading", async () => {
    const capture = captureLines();
    restore = capture.restore;
    const res = await send("POST", "/api/v1/telemetry", { "x-request-id": "ground-7" }, { voltage: 21.5, temperature: 22, gyro: 0.1, satellite_id: "log-sat" });
    expect(res.status).toBe(200);
    const anomaly = capture.lines.find((l) => l.msg === "anomaly_detected");
    expect(anomaly).toMatchObject({ request_id: "ground-7", trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(capture.lines.find((l) => l.msg === "request")).toMatchObject({ request_id: "ground-7", trace_id: anomaly!.trace_id });
  });

  it("replaces a hostile X-Request-Id instead of echoing it", async () => {
    const capture = captureLines();
    restore = capture.restore;
    for (const hostile of ["<script>alert(1)</script>", "a".repeat(129), "id with spaces", "x\u00e9"]) {
      const res = await send("GET", "/health", { "x-request-id": hostile });
      const echoed = res.headers.get("x-request-id")!;
      expect(echoed).not.toBe(hostile);
      expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
      expect(capture.lines.filter((l) => l.msg === "request").at(-1)).toMatchObject({ request_id: echoed });
    }
    expect(JSON.stringify(capture.lines)).not.toContain("<script>");
  });
});

describe("log level", () => {
  it("drops lines below LOG_LEVEL, and a run-time level overrides it until cleared", () => {
    const capture = captureLines();
    restore = capture.restore;
    configureLogLevel("warn");
    log("info", "quiet");
    log("warn", "loud");
    expect(capture.lines.map((l) => l.msg)).toEqual(["loud"]);
    expect(logLevel()).toEqual({ level: "warn", source: "LOG_LEVEL" });
    setLogLevelOverride("debug");
    log("debug", "details");
    expect(logLevel()).toEqual({ level: "debug", source: "runtime" });
    setLogLevelOverride(undefined);
    log("debug", "details again");
    configureLogLevel("nonsense"); // an invalid value counts as unset: info
    log("info", "back to info");
    expect(capture.lines.map((l) => l.msg)).toEqual(["loud", "details", "back to info"]);
  });
});

describe("PUT /api/v1/log-level (admin)", { timeout: 30_000 }, () => {
  const admin = { authorization: `Bearer ${testEnv.ADMIN_TOKEN}` };
  it("sets the level at run time, logs and shows the change, and null returns to LOG_LEVEL", async () => {
    const capture = captureLines();
    restore = capture.restore;
    const set = await send("PUT", "/api/v1/log-level", admin, { level: "debug" });
    expect(set).toMatchObject({ status: 200, body: { level: "debug", source: "runtime" } });
    expect((await send("GET", "/api/v1/status", {})).body.log_level).toEqual({ level: "debug", source: "runtime" });
    expect((await send("GET", "/api/v1/log-level", admin)).body).toMatchObject({ level: "debug", runtime_level: "debug", configured: "info" });
    const quiet = await send("PUT", "/api/v1/log-level", admin, { level: "error" });
    expect(quiet.body).toMatchObject({ level: "error", previous_runtime_level: "debug" });
    // The change is logged even when the new level would hide a warn line.
    expect(capture.lines.filter((l) => l.msg === "log_level_changed").map((l) => l.level)).toEqual(["warn", "warn"]);
    const cleared = await send("PUT", "/api/v1/log-level", admin, { level: null });
    expect(cleared.body).toMatchObject({ level: "info", source: "LOG_LEVEL", previous_runtime_level: "error" });
  });

  it("refuses a bad level (422 naming the field) and callers without the admin token", async () => {
    const bad = await send("PUT", "/api/v1/log-level", admin, { level: "verbose" });
    expect(bad).toMatchObject({ status: 422, body: { error: { field: "level" } } });
    const extra = await send("PUT", "/api/v1/log-level", admin, { level: "debug", forever: true });
    expect(extra.status).toBe(422);
    expect((await send("PUT", "/api/v1/log-level", {}, { level: "debug" })).status).toBe(401);
    expect((await send("PUT", "/api/v1/log-level", { authorization: `Bearer ${testEnv.OPERATOR_TOKEN}` }, { level: "debug" })).status).toBe(403);
    expect((await send("GET", "/api/v1/status", {})).body.log_level).toEqual({ level: "info", source: "LOG_LEVEL" });
  });
});
