/**
 * Admin and operator endpoints: 401 without a valid token, 403 with a valid token of a narrower
 * scope, nothing changed by either, tokens never in a log line, reads open. Cases that
 * test/workers/api/bad-input.test.ts already has (no token, Basic scheme, operator on /phase) are
 * extended here to every protected route rather than repeated.
 */
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../../functions/app";
import { adminToken, call, operatorToken, type CallOptions } from "../support/api";
import { callWith, captureConsole, stateSnapshot } from "./support";

const ANOMALY_ID = `an_${"0".repeat(32)}`;

interface Protected {
  method: string;
  path: string;
  scope: "admin" | "operator";
  body: unknown;
}

/** The protected routes: phase and feedback always; chaos while it is mounted. */
function protectedRoutes(): Protected[] {
  const routes: Protected[] = [
    { method: "POST", path: "/api/v1/phase", scope: "admin", body: { phase: "SAFE_MODE" } },
    { method: "POST", path: `/api/v1/anomalies/${ANOMALY_ID}/feedback`, scope: "operator", body: { false_positive: true } },
  ];
  const mounted = new Set(app.routes.map((r) => `${r.method} ${r.path}`));
  if (mounted.has("POST /api/v1/chaos")) routes.push({ method: "POST", path: "/api/v1/chaos", scope: "admin", body: {} });
  if (mounted.has("GET /api/v1/chaos")) routes.push({ method: "GET", path: "/api/v1/chaos", scope: "admin", body: undefined });
  if (mounted.has("DELETE /api/v1/chaos")) routes.push({ method: "DELETE", path: "/api/v1/chaos", scope: "admin", body: undefined });
  return routes;
}

const WRONG_TOKENS = () => [
  "not-the-token",
  `${adminToken()}x`,
  adminToken().slice(0, -1),
  ` ${operatorToken()}x`,
  "a".repeat(600),
  adminToken().toUpperCase(),
];

describe("admin and operator tokens", () => {
  it("protects at least the phase change and anomaly feedback", () => {
    expect(protectedRoutes().length).toBeGreaterThanOrEqual(2);
  });

  it.each(protectedRoutes())("$method $path: 401 for missing, malformed and wrong tokens, state unchanged", async ({ method, path, body }) => {
    const before = await stateSnapshot();
    const headerSets: Array<Record<string, string>> = [
      {},
      { Authorization: "" },
      { Authorization: "Bearer" },
      { Authorization: "Bearer " },
      { Authorization: `Token ${adminToken()}` },
      { Authorization: `Bearer ${adminToken()} extra` },
      { "X-API-Key": adminToken() },
      ...WRONG_TOKENS().map((t) => ({ Authorization: `Bearer ${t}` })),
    ];
    for (const headers of headerSets) {
      const res = await call(method, path, { ...(body !== undefined && { body }), headers });
      expect(res.status, JSON.stringify(headers).slice(0, 60)).toBe(401);
      expect(res.body.error).toMatchObject({ status: 401, code: "unauthorized", field: "Authorization" });
      // RFC 6750: a bearer challenge; an error code only when a token was presented.
      const challenge = res.headers.get("WWW-Authenticate") ?? "";
      expect(challenge).toMatch(/^Bearer realm="astraguard-edge", scope="(admin|operator)"/);
      const wellFormed = /^Bearer\s+\S{1,512}$/i.test(headers.Authorization ?? "");
      expect(challenge.includes('error="invalid_token"'), JSON.stringify(headers).slice(0, 60)).toBe(wellFormed);
    }
    expect(await stateSnapshot()).toEqual(before);
  });

  it.each(protectedRoutes().filter((r) => r.scope === "admin"))("$method $path: 403 for the operator token, state unchanged", async ({ method, path, body }) => {
    const before = await stateSnapshot();
    const res = await call(method, path, { ...(body !== undefined && { body }), token: operatorToken() });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatchObject({ status: 403, code: "forbidden", field: "Authorization" });
    expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="astraguard-edge", scope="admin", error="insufficient_scope"');
    expect(await stateSnapshot()).toEqual(before);
  });

  it("the admin token also grants operator work; the scheme is case-insensitive", async () => {
    const feedback = `/api/v1/anomalies/${ANOMALY_ID}/feedback`;
    const asAdmin = await call("POST", feedback, { body: { false_positive: true }, token: adminToken() });
    expect(asAdmin.status).toBe(404); // past the token check: the anomaly does not exist
    const lower = await call("POST", feedback, { body: { false_positive: true }, headers: { Authorization: `bearer ${operatorToken()}` } });
    expect(lower.status).toBe(404);
  });

  it("with no secrets configured, nothing is accepted (fail closed)", async () => {
    const unset = { ADMIN_TOKEN: undefined, OPERATOR_TOKEN: undefined };
    const empty = { ADMIN_TOKEN: "", OPERATOR_TOKEN: "" };
    for (const bindings of [unset, empty]) {
      for (const token of [adminToken(), operatorToken(), "x"]) {
        const phase = await callWith(bindings, "POST", "/api/v1/phase", { body: { phase: "SAFE_MODE" }, token });
        expect(phase.status).toBe(401);
        const feedback = await callWith(bindings, "POST", `/api/v1/anomalies/${ANOMALY_ID}/feedback`, { body: { false_positive: true }, token });
        expect(feedback.status).toBe(401);
      }
    }
  });

  it("reads stay open without a token", async () => {
    for (const path of ["/health", "/api/v1/status", "/api/v1/phase", "/api/v1/memory/stats", "/api/v1/history/anomalies"]) {
      const res = await call("GET", path);
      expect(res.status, path).toBe(200);
    }
  });

  it("never writes a presented or configured token to the logs, and logs each failure's outcome", async () => {
    const secrets = [env.ADMIN_TOKEN!, env.OPERATOR_TOKEN!, env.INGEST_API_KEYS!, env.OTEL_EXPORTER_OTLP_TOKEN!].filter((s) => s && s.length >= 8);
    const presented = ["guess-0f7c2b9e4d1a", "a".repeat(600).slice(0, 300)];
    const { lines } = await captureConsole(async () => {
      for (const { method, path, body } of protectedRoutes()) {
        const withBody = (o: CallOptions): CallOptions => (body !== undefined ? { ...o, body } : o);
        await call(method, path, withBody({}));
        for (const token of presented) await call(method, path, withBody({ token }));
        await call(method, path, withBody({ token: operatorToken() }));
        await call(method, path, withBody({ token: adminToken() }));
        await call(method, path, withBody({ headers: { Authorization: `Basic ${btoa(`admin:${adminToken()}`)}` } }));
      }
    });
    const failures = lines.filter((l) => l.includes("auth_failed"));
    expect(failures.length).toBeGreaterThanOrEqual(protectedRoutes().length * 4);
    expect(failures.some((l) => l.includes("missing_token"))).toBe(true);
    expect(failures.some((l) => l.includes("invalid_token"))).toBe(true);
    expect(failures.some((l) => l.includes("insufficient_scope"))).toBe(true);
    for (const line of lines) {
      for (const secret of [...secrets, ...presented, btoa(`admin:${adminToken()}`)]) expect(line).not.toContain(secret);
    }
  });
});

describe("reads when REQUIRE_READ_TOKEN is \"true\"", () => {
  const READ = "read-token-for-tests-6b1d0c";
  const locked = { REQUIRE_READ_TOKEN: "true", READ_TOKEN: READ };
  const reads = ["/api/v1/status", "/api/v1/phase", "/api/v1/memory/stats", "/api/v1/history/anomalies", "/api/v1/telemetry/latest"];

  it("are open by default (the local and shipped setting)", async () => {
    expect(env.REQUIRE_READ_TOKEN).not.toBe("true");
    expect((await call("GET", "/api/v1/phase")).status).toBe(200);
  });

  it("need a read, operator or admin token; 401 with a challenge otherwise", async () => {
    for (const path of reads) {
      const open = await callWith(locked, "GET", path);
      expect(open.status, path).toBe(401);
      expect(open.body.error).toMatchObject({ code: "unauthorized", field: "Authorization" });
      expect(open.headers.get("WWW-Authenticate")).toBe('Bearer realm="astraguard-edge", scope="read"');
      expect((await callWith(locked, "HEAD", path)).status, `HEAD ${path}`).toBe(401);
      expect((await callWith(locked, "GET", path, { token: "not-a-token" })).status, path).toBe(401);
      for (const token of [READ, operatorToken(), adminToken()]) {
        expect((await callWith(locked, "GET", path, { token })).status, path).not.toBe(401);
      }
    }
  });

  it("leave liveness open, and do not change what writes need", async () => {
    for (const path of ["/", "/health"]) expect((await callWith(locked, "GET", path)).status, path).toBe(200);
    expect((await callWith(locked, "POST", "/api/v1/telemetry", { body: { voltage: 28, temperature: 20, gyro: 0 } })).status).toBe(200);
    const phase = await callWith(locked, "POST", "/api/v1/phase", { body: { phase: "SAFE_MODE" }, token: READ });
    expect(phase.status).toBe(403);
    expect(phase.body.error.code).toBe("forbidden");
  });
});
