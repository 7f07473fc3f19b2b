/** Helpers of the security tests: the app under other bindings, console capture, state snapshots. */
import { createExecutionContext, env, listDurableObjectIds } from "cloudflare:test";
import { vi } from "vitest";
import { app } from "../../../functions/app";
import { call, type CallOptions, type CallResult } from "../support/api";

/**
 * Calls the app as `call()` does, with some bindings replaced (e.g. REQUIRE_INGEST_KEY = "true").
 * `waitUntil` work (the telemetry flush) is left running, as the runtime does.
 */
export async function callWith<T = any>(overrides: Partial<Env>, method: string, path: string, options: CallOptions = {}): Promise<CallResult<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined || options.raw !== undefined) headers["Content-Type"] ??= "application/json";
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const body = options.raw ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined);
  const bindings = { ...(env as unknown as Env), ...overrides };
  const res = await app.fetch(new Request(`http://astraguard.test${path}`, { method, headers, body }), bindings, createExecutionContext());
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Left as text: the caller asserts it was JSON when it should be.
  }
  return { status: res.status, body: parsed as T, headers: res.headers };
}

/** Everything written to the console while `fn` runs, one string per call. */
export async function captureConsole<T>(fn: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const record = (...args: unknown[]) => void lines.push(args.map((a) => (typeof a === "string" ? a : a instanceof Error ? `${a.name}: ${a.message}\n${a.stack}` : safeJson(a))).join(" "));
  const spies = (["log", "info", "warn", "error", "debug"] as const).map((m) => vi.spyOn(console, m).mockImplementation(record));
  try {
    return { result: await fn(), lines };
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** What a rejected request must not change: stored anomalies, labels, readings, latest, phase. */
export async function stateSnapshot() {
  const [memory, phase, objects] = await Promise.all([call("GET", "/api/v1/memory/stats"), call("GET", "/api/v1/phase"), listDurableObjectIds(env.SATELLITE_STATE)]);
  // Calls served change with every read; what is stored, registered and created must not.
  const { calls_since_start: _calls, ...stored } = memory.body.recurrence_memory;
  return { stored, phase: phase.body.phase, transitions: phase.body.transitions.length, satelliteObjects: objects.length };
}
