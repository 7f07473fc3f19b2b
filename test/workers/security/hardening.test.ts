/**
 * Hardening of every answer: JSON depth and string bounds before parsing, security headers,
 * the CORS policy, and 500s that say nothing about the code behind them.
 */
import { env } from "cloudflare:test";
import { Hono, type ErrorHandler } from "hono";
import { describe, expect, it } from "vitest";
import { app } from "../../../functions/app";
import type { AppEnv } from "../../../lib/env";
import { scanJsonBounds } from "../../../lib/http/json-bounds";
import { adminToken, call, nominalPoint } from "../support/api";
import { callWith, captureConsole, stateSnapshot } from "./support";

const nest = (depth: number, inner = "1") => "[".repeat(depth) + inner + "]".repeat(depth);

describe("scanJsonBounds", () => {
  it("counts objects and arrays, the top level as depth 1", () => {
    expect(scanJsonBounds(nest(8), 8, 100)).toBeUndefined();
    expect(scanJsonBounds(nest(9), 8, 100)).toEqual({ kind: "depth", limit: 8 });
    expect(scanJsonBounds('{"a":{"b":{"c":[1,{"d":[]}]}}}', 6, 100)).toBeUndefined();
    expect(scanJsonBounds('{"a":{"b":{"c":[1,{"d":[]}]}}}', 5, 100)).toEqual({ kind: "depth", limit: 5 });
    // Siblings do not add up: depth is nesting, not the number of brackets.
    expect(scanJsonBounds(`[${Array.from({ length: 50 }, () => "[1]").join(",")}]`, 2, 100)).toBeUndefined();
  });

  it("ignores brackets and escaped quotes inside strings", () => {
    expect(scanJsonBounds(JSON.stringify({ s: "[[[[[[[[[[{{{{{{{{" }), 2, 100)).toBeUndefined();
    expect(scanJsonBounds(JSON.stringify({ s: 'a"[[[[[[[[[[b\\' }), 2, 100)).toBeUndefined();
  });

  it("bounds every string, keys included, in raw characters", () => {
    expect(scanJsonBounds(JSON.stringify({ k: "x".repeat(10) }), 8, 10)).toBeUndefined();
    expect(scanJsonBounds(JSON.stringify({ k: "x".repeat(11) }), 8, 10)).toEqual({ kind: "string", limit: 10 });
    expect(scanJsonBounds(JSON.stringify({ ["k".repeat(11)]: 1 }), 8, 10)).toEqual({ kind: "string", limit: 10 });
    expect(scanJsonBounds('"\\u0041\\u0041"', 8, 10)).toEqual({ kind: "string", limit: 10 });
  });
});

describe("JSON bounds on ingest", () => {
  const cases = [
    { name: "point nested 9 deep", path: "/api/v1/telemetry", raw: JSON.stringify({ ...nominalPoint(), extra: JSON.parse(nest(8)) }), message: /nested deeper than 8/ },
    { name: "point nested 5000 deep (15 KB)", path: "/api/v1/telemetry", raw: nest(5000), message: /nested deeper than 8/ },
    { name: "batch nested 9 deep", path: "/api/v1/telemetry/batch", raw: JSON.stringify({ telemetry: [{ ...nominalPoint(), gyro: JSON.parse(nest(7)) }] }), message: /nested deeper than 8/ },
    { name: "batch nested 100000 deep", path: "/api/v1/telemetry/batch", raw: nest(100_000), message: /nested deeper than 8/ },
    { name: "string of 1025 characters", path: "/api/v1/telemetry", raw: JSON.stringify(nominalPoint({ satellite_id: "s".repeat(1025) })), message: /string longer than 1024/ },
    { name: "key of 5000 characters in a batch point", path: "/api/v1/telemetry/batch", raw: JSON.stringify({ telemetry: [{ ...nominalPoint(), ["k".repeat(5000)]: 1 }] }), message: /string longer than 1024/ },
  ];

  it.each(cases)("$name → 422 naming body, state unchanged", async ({ path, raw, message }) => {
    const before = await stateSnapshot();
    const res = await call("POST", path, { raw });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ status: 422, code: "validation_failed", field: "body", message: expect.stringMatching(message) });
    expect(await stateSnapshot()).toEqual(before);
  });

  it("leaves bodies within the bounds to the schema, which names the field", async () => {
    const deep8 = await call("POST", "/api/v1/telemetry", { raw: JSON.stringify({ ...nominalPoint(), extra: JSON.parse(nest(7)) }) });
    expect(deep8.body.error).toMatchObject({ status: 422, field: "extra" });
    const long = await call("POST", "/api/v1/telemetry", { body: nominalPoint({ satellite_id: "s".repeat(1024) }) });
    expect(long.body.error).toMatchObject({ status: 422, field: "satellite_id" });
    const unknownInBatch = await call("POST", "/api/v1/telemetry/batch", { body: { telemetry: [nominalPoint(), { ...nominalPoint(), note: "hi" }] } });
    expect(unknownInBatch.body.error).toMatchObject({ status: 422, field: "telemetry.1.note" });
    expect((await call("POST", "/api/v1/telemetry/batch", { body: { telemetry: [nominalPoint()] } })).status).toBe(200);
  });
});

describe("security headers", () => {
  const answers = [
    { name: "200 health", method: "GET", path: "/health" },
    { name: "200 ingest", method: "POST", path: "/api/v1/telemetry", body: nominalPoint() },
    { name: "404 unknown route", method: "GET", path: "/nope" },
    { name: "405 wrong method", method: "DELETE", path: "/api/v1/phase" },
    { name: "401 phase without token", method: "POST", path: "/api/v1/phase", body: { phase: "SAFE_MODE" } },
    { name: "422 bad point", method: "POST", path: "/api/v1/telemetry", body: { voltage: 99 } },
    { name: "413 oversized point", method: "POST", path: "/api/v1/telemetry", body: { pad: "x".repeat(20_000) } },
  ];

  it.each(answers)("$name carries the API's security headers and no X-Powered-By", async ({ method, path, body }) => {
    const res = await call(method, path, body === undefined ? {} : { body });
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(res.headers.get("X-Frame-Options")).toBe("DENY");
    expect(res.headers.get("Referrer-Policy")).toBe("no-referrer");
    expect(res.headers.get("Strict-Transport-Security")).toBe("max-age=31536000; includeSubDomains");
    expect(res.headers.get("Content-Security-Policy")).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(res.headers.get("X-Powered-By")).toBeNull();
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
  });
});

describe("CORS", () => {
  const configured: Partial<Env> = { CORS_ALLOW_ORIGINS: "https://console.example.org, http://localhost:5173/" };
  const preflight = (origin: string, method = "POST") => ({
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "content-type,x-api-key,traceparent,authorization" },
  });

  it("by default (no CORS_ALLOW_ORIGINS) sends no CORS headers and answers no preflight", async () => {
    const get = await call("GET", "/api/v1/phase", { headers: { Origin: "https://evil.example" } });
    expect(get.status).toBe(200);
    expect(get.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(get.headers.get("Vary")).toMatch(/Origin/);
    const options = await call("OPTIONS", "/api/v1/telemetry", preflight("https://evil.example"));
    expect(options.status).toBe(405);
    expect(options.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(options.headers.get("Access-Control-Allow-Methods")).toBeNull();
    expect(options.body.error).toMatchObject({ status: 405, field: "method" });
  });

  it("allows exactly the listed origins, exposing Retry-After, without credentials", async () => {
    for (const origin of ["https://console.example.org", "http://localhost:5173"]) {
      const res = await callWith(configured, "GET", "/api/v1/phase", { headers: { Origin: origin } });
      expect(res.headers.get("Access-Control-Allow-Origin")).toBe(origin);
      expect(res.headers.get("Access-Control-Expose-Headers")).toBe("Retry-After,WWW-Authenticate,X-Request-Id");
      expect(res.headers.get("Access-Control-Allow-Credentials")).toBeNull();
      expect(res.headers.get("Vary")).toMatch(/Origin/);
    }
    for (const origin of ["https://console.example.org.evil.example", "https://evil.example", "null", "http://console.example.org"]) {
      const res = await callWith(configured, "GET", "/api/v1/phase", { headers: { Origin: origin } });
      expect(res.headers.get("Access-Control-Allow-Origin"), origin).toBeNull();
    }
  });

  it("answers an allowed origin's preflight 204 with the API's methods and headers", async () => {
    const res = await callWith(configured, "OPTIONS", "/api/v1/telemetry", preflight("https://console.example.org"));
    expect(res.status).toBe(204);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://console.example.org");
    expect(res.headers.get("Access-Control-Allow-Methods")).toBe("GET,POST,OPTIONS");
    const allowed = (res.headers.get("Access-Control-Allow-Headers") ?? "").toLowerCase().split(",");
    expect(allowed).toEqual(expect.arrayContaining(["authorization", "content-type", "x-api-key", "traceparent"]));
    expect(res.headers.get("Access-Control-Max-Age")).toBe("600");
    const denied = await callWith(configured, "OPTIONS", "/api/v1/telemetry", preflight("https://evil.example"));
    expect(denied.status).toBe(405);
    expect(denied.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it('"*" allows any origin', async () => {
    const res = await callWith({ CORS_ALLOW_ORIGINS: "*" }, "GET", "/health", { headers: { Origin: "https://anywhere.example" } });
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("*");
  });

  it("puts the CORS headers on a 429 too, so a browser client can read Retry-After", async () => {
    const limiter = { limit: async () => ({ success: false }) } as unknown as RateLimit;
    const res = await callWith({ ...configured, INGEST_RATE_LIMITER: limiter }, "POST", "/api/v1/telemetry", { body: nominalPoint(), headers: { Origin: "https://console.example.org" } });
    expect(res.status).toBe(429);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://console.example.org");
    expect(res.headers.get("Access-Control-Expose-Headers")).toContain("Retry-After");
  });
});

describe("internal errors", () => {
  const LEAK = /SQLITE|secret|\bat \/|\.ts:\d+|Error:|TypeError/;
  /** A MissionState namespace whose every call fails with a revealing error. */
  const broken = {
    idFromName: () => ({}),
    get: () =>
      new Proxy(
        {},
        {
          get: () => async () => {
            throw new Error("SQLITE_CORRUPT at /srv/secret/path/mission.sqlite: table anomalies");
          },
        },
      ),
  } as unknown as Env["MISSION_STATE"];

  it.each([
    ["GET", "/api/v1/phase"],
    ["GET", "/api/v1/memory/stats"],
    ["GET", "/api/v1/telemetry/latest"],
    ["GET", "/api/v1/history/anomalies"],
  ])("%s %s with storage failing answers a server JSON error without the cause or a stack", async (method, path) => {
    const { result: res } = await captureConsole(() => callWith({ MISSION_STATE: broken }, method, path));
    expect([500, 503]).toContain(res.status);
    expect(res.headers.get("Content-Type")).toMatch(/application\/json/);
    expect(Object.keys(res.body.error).sort()).toEqual(["code", "message", "status"]);
    expect(JSON.stringify(res.body) + [...res.headers].join(" ")).not.toMatch(LEAK);
  });

  it("an admin call that fails inside answers the same", async () => {
    const { result: res } = await captureConsole(() => callWith({ MISSION_STATE: broken }, "POST", "/api/v1/phase", { body: { phase: "SAFE_MODE" }, token: adminToken() }));
    expect([500, 503]).toContain(res.status);
    expect(JSON.stringify(res.body)).not.toMatch(LEAK);
  });

  it("the app's error handler turns an unexpected throw into a bare 500 internal_error", async () => {
    const probe = new Hono<AppEnv>();
    probe.get("/boom", () => {
      throw new TypeError("Cannot read properties of undefined (reading 'secret') at /srv/app/lib/x.ts:12:3");
    });
    // The app's own onError handler (a private field of Hono's types, public at runtime).
    probe.onError((app as unknown as { errorHandler: ErrorHandler<AppEnv> }).errorHandler);
    const { result: res } = await captureConsole(async () => probe.request("/boom", {}, env));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: { status: 500, code: "internal_error", message: "internal error" } });
  });
});

describe("small authenticated bodies (phase, feedback, chaos)", () => {
  const FEEDBACK = `/api/v1/anomalies/an_${"0".repeat(32)}/feedback`;
  const routes = [
    { path: "/api/v1/phase", token: adminToken, valid: { phase: "SAFE_MODE" } },
    { path: FEEDBACK, token: adminToken, valid: { false_positive: true } },
    { path: "/api/v1/chaos", token: adminToken, valid: { type: "latency", target: "storage", duration_s: 1 } },
  ];

  it.each(routes)("$path: over 4 KiB → 413, nested deeper than 8 → 422 naming body, state unchanged", async ({ path, token, valid }) => {
    const before = await stateSnapshot();
    const big = await call("POST", path, { raw: JSON.stringify({ ...valid, reason: "r".repeat(5000) }), token: token() });
    expect(big.status).toBe(413);
    expect(big.body.error).toMatchObject({ code: "payload_too_large", field: "body" });
    const deep = await call("POST", path, { raw: JSON.stringify({ ...valid, extra: JSON.parse(nest(8)) }), token: token() });
    expect(deep.status).toBe(422);
    expect(deep.body.error).toMatchObject({ field: "body", message: expect.stringMatching(/nested deeper than 8/) });
    expect(await stateSnapshot()).toEqual(before);
  });

  it("reads no body before the token is checked: an oversized body without a token is 401", async () => {
    for (const { path } of routes) {
      const res = await call("POST", path, { raw: "x".repeat(10_000) });
      expect(res.status, path).toBe(401);
    }
  });
});
