/**
 * Property-based fuzzing of every endpoint in the Workers runtime (fast-check, fixed seed, bounded
 * runs). Each case is one request: a route from the app's own route table (so a new route is fuzzed
 * without touching this file), usually its own method and sometimes any method the runtime
 * accepts, a body from one of several families (random JSON, mutated valid bodies, random text,
 * deep nesting, huge numbers, truncated JSON, oversized), a content type (JSON, JSON variants,
 * wrong ones, none), and no / wrong / operator / admin credentials.
 *
 * Properties of every answer: it comes within REQUEST_TIMEOUT_MS; its status is 2xx or 4xx, never
 * 5xx; it is JSON (HEAD: JSON content type, no body) with the security headers and no CORS
 * grant; a 4xx carries the error body with its own status; a 4xx changed nothing (recurrence
 * memory and phase, compared before and after); and no request, whatever its answer, registers
 * as a failure of the storage dependency (client input must never trip the storage circuit
 * breaker for everyone).
 */
import { createExecutionContext, env } from "cloudflare:test";
import fc from "fast-check";
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { app } from "../../../functions/app";
import { MISSION_PHASES } from "../../../lib/domain/schemas";
import { adminToken, anomalousPoint, nominalPoint, operatorToken } from "../support/api";
import { captureConsole, stateSnapshot } from "./support";

/** Fixed, printed seed: a failure reproduces with the same seed and the printed counterexample. */
const SEED = 424_242;
const NUM_RUNS = 400;
/** Runs of the second property: ingest keys and read tokens required, CORS origins configured. */
const GUARDED_RUNS = 100;
const REQUEST_TIMEOUT_MS = 10_000;

/** Methods workerd accepts (any other method string is refused when the Request is built). */
const RUNTIME_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "QUERY"] as const;

interface Endpoint {
  method: string;
  path: string;
}

/** Every route of the app with its method (middleware-only `ALL` entries left out). */
function endpoints(): Endpoint[] {
  const seen = new Map<string, Endpoint>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    seen.set(`${r.method} ${r.path}`, { method: r.method, path: r.path });
  }
  return [...seen.values()];
}

// ---- generators -------------------------------------------------------------------------------

const hex = (n: number) => fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: n, maxLength: n });

/** A value for a path parameter: well-formed ids, near misses, and junk. */
const paramValue = fc.oneof(
  hex(32).map((h) => `an_${h}`),
  // Ids naming a satellite: a registered one (sat-1), unknown ones, hostile ones.
  fc.tuple(hex(32), fc.oneof(fc.constant("sat-1"), fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/), fc.string({ maxLength: 70 }))).map(([h, sat]) => `an_${h}_${sat}`),
  hex(32).map((h) => `ch_${h}`),
  hex(31).map((h) => `an_${h}`),
  fc.string({ minLength: 1, maxLength: 80 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
  fc.constantFrom("..", ".", "%2e%2e", "%00", "a%2Fb", "an_" + "0".repeat(32) + "/../x"),
);

const randomQuery = fc.oneof(
  { weight: 3, arbitrary: fc.constant("") },
  { weight: 2, arbitrary: fc.dictionary(fc.constantFrom("limit", "severity_min", "start_time", "end_time", "satellite_id", "after", "x"), fc.oneof(fc.string({ maxLength: 40 }), fc.integer().map(String), fc.double().map(String), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())), { maxKeys: 4 }).map((q) => `?${new URLSearchParams(q)}`) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 3000 }).map((s) => `?${encodeURIComponent(s)}=${encodeURIComponent(s)}`) },
);

const point = () => ({ ...nominalPoint(), timestamp: "2026-11-25T10:00:00Z", satellite_id: "sat-1" });
/** Valid bodies by route (path suffix); a route without an entry gets all of them. */
const VALID_BY_ROUTE: Array<[RegExp, unknown[]]> = [
  [/\/telemetry$/, [point(), anomalousPoint({ satellite_id: "sat-2" })]],
  [/\/telemetry\/batch$/, [{ telemetry: [point(), anomalousPoint()] }]],
  [/\/phase$/, [{ phase: "PAYLOAD_OPS" }, { phase: "SAFE_MODE", force: true, reason: "fuzz" }]],
  [/\/feedback$/, [{ false_positive: true }, { false_positive: false }]],
  [/\/chaos/, [{ type: "latency", target: "storage", duration_s: 0 }, { type: "error", target: "collector", duration_s: 1e9 }]],
];
const ALL_VALID = VALID_BY_ROUTE.flatMap(([, bodies]) => bodies);
const validFor = (path: string) => VALID_BY_ROUTE.find(([re]) => re.test(path))?.[1] ?? ALL_VALID;

const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, true, "", "NaN", "Infinity", -0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 5e-324, "28", [], {}, "__proto__", "constructor"),
  fc.string({ unit: "grapheme", maxLength: 30 }),
);

/** A valid body with one field replaced, removed or added (recursively into batches). */
const mutatedValid = (valid: unknown[]) => fc
  .tuple(fc.constantFrom(...valid), fc.constantFrom("replace", "delete", "add", "wrap"), fc.nat(), fc.string({ maxLength: 12 }), hostileValue)
  .map(([body, op, pick, key, value]) => {
    const clone = structuredClone(body) as Record<string, unknown>;
    const target = Array.isArray(clone.telemetry) ? ((clone.telemetry as Record<string, unknown>[])[pick % 2] as Record<string, unknown>) : clone;
    const keys = Object.keys(target);
    const field = keys[pick % keys.length]!;
    if (op === "replace") target[field] = value;
    else if (op === "delete") delete target[field];
    else if (op === "add") target[key || "extra"] = value;
    else return JSON.stringify([clone]);
    return JSON.stringify(clone);
  });

const deepNesting = fc.tuple(fc.integer({ min: 6, max: 20_000 }), fc.constantFrom("[", '{"a":')).map(([depth, open]) => {
  const close = open === "[" ? "]" : "}";
  return open.repeat(depth) + "1" + close.repeat(depth);
});

const hugeNumbers = fc
  .tuple(fc.constantFrom("voltage", "temperature", "gyro", "current", "wheel_speed"), fc.constantFrom("1e309", "-1e400", "1e308", "123456789012345678901234567890", "0.0000000000000000000000000001", "-0", "1E+2", "NaN", "Infinity", "0x10", "01"))
  .map(([field, n]) => JSON.stringify(point()).replace(new RegExp(`"${field}":[^,}]+`), `"${field}":${n}`));

const truncated = (valid: unknown[]) => fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([body, cut]) => {
  const text = JSON.stringify(body);
  return text.slice(0, cut % text.length);
});

/** Valid points from sources whose ids are also names on Object.prototype, or look like paths. */
const trickyIds = fc
  .tuple(fc.constantFrom("__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", ".."), fc.boolean())
  .map(([id, batch]) => JSON.stringify(batch ? { telemetry: [point(), { ...point(), satellite_id: id }] } : { ...point(), satellite_id: id }));

const oversized = fc.constantFrom(17 * 1024, 600 * 1024).map((n) => JSON.stringify({ ...point(), pad: "x".repeat(n) }));

/** The body families, weighted toward the route's own (mutated) bodies. */
const bodyFor = (path: string): fc.Arbitrary<string | undefined> => {
  const valid = validFor(path);
  const ingest = /\/telemetry(\/batch)?$/.test(path);
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 6, arbitrary: mutatedValid(valid) },
    { weight: 2, arbitrary: fc.constantFrom(...valid).map((v) => JSON.stringify(v)) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 400 }) },
    { weight: 2, arbitrary: deepNesting },
    { weight: 2, arbitrary: truncated(valid) },
    { weight: 1, arbitrary: oversized },
    { weight: ingest ? 2 : 0, arbitrary: hugeNumbers },
    { weight: ingest ? 4 : 0, arbitrary: trickyIds },
  );
};

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant("application/json") },
  { weight: 3, arbitrary: fc.constantFrom("application/json; charset=utf-8", "application/JSON", "Application/Json;charset=UTF-8", "application/vnd.api+json", "application/merge-patch+json") },
  { weight: 2, arbitrary: fc.constantFrom("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "application/jsonx", "json", "*/*", "") },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

type Credential = "none" | "admin" | "operator" | "wrong" | "garbage";
const credential = fc.oneof(
  { weight: 4, arbitrary: fc.constant<Credential>("admin") },
  { weight: 1, arbitrary: fc.constantFrom<Credential>("none", "operator", "wrong", "garbage") },
);

interface FuzzCase {
  endpoint: Endpoint;
  method: string;
  param: string;
  query: string;
  body: string | undefined;
  contentType: string | undefined;
  credential: Credential;
  ip: string;
}

const fuzzCase = (routes: Endpoint[]): fc.Arbitrary<FuzzCase> =>
  // Ingest routes are the open, write-heavy surface: three times the weight of the others.
  fc.constantFrom(...routes, ...routes.filter((r) => r.method === "POST" && r.path.startsWith("/api/v1/telemetry")).flatMap((r) => [r, r])).chain((endpoint) => fc.record({
    endpoint: fc.constant(endpoint),
    // Mostly the route's own method (so bodies reach validation), sometimes any method.
    method: fc.oneof({ weight: 4, arbitrary: fc.constant("") }, { weight: 1, arbitrary: fc.constantFrom(...RUNTIME_METHODS) }),
    param: paramValue,
    query: randomQuery,
    body: bodyFor(endpoint.path),
    contentType,
    credential,
    ip: fc.ipV4(),
  })).map((c) => ({ ...c, method: c.method || c.endpoint.method }));

// ---- the request ------------------------------------------------------------------------------

function requestOf(c: FuzzCase): Request {
  const path = c.endpoint.path.replace(/:[A-Za-z_]+/g, () => encodeURIComponent(c.param)).replace(/\/\*$/, "") + c.query;
  const headers = new Headers({ "CF-Connecting-IP": c.ip });
  if (c.contentType !== undefined) headers.set("Content-Type", c.contentType);
  const token = { none: undefined, admin: adminToken(), operator: operatorToken(), wrong: "wrong-token-123", garbage: "g".repeat(513) }[c.credential];
  if (token !== undefined) headers.set("Authorization", `Bearer ${token}`);
  const hasBody = c.body !== undefined && c.method !== "GET" && c.method !== "HEAD";
  return new Request(`http://astraguard.test${path}`, { method: c.method, headers, ...(hasBody && { body: c.body }) });
}

type Fetcher = (request: Request) => Promise<Response>;
const viaWorker: Fetcher = (request) => (exports as any).default.fetch(request);

async function send(request: Request, fetcher: Fetcher = viaWorker): Promise<{ status: number; contentType: string | null; text: string; headers: Headers }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms: ${request.method} ${request.url.slice(0, 200)}`)), REQUEST_TIMEOUT_MS);
  });
  try {
    const res = await Promise.race([fetcher(request), deadline]);
    const text = await Promise.race([res.text(), deadline]);
    return { status: res.status, contentType: res.headers.get("Content-Type"), text, headers: res.headers };
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

const describeCase = (c: FuzzCase) =>
  `${c.method} ${c.endpoint.path} param=${JSON.stringify(c.param).slice(0, 60)} query=${c.query.slice(0, 60)} ct=${c.contentType} cred=${c.credential} body=${JSON.stringify(c.body)?.slice(0, 160)}`;

/** How often this isolate has seen the storage dependency fail (the circuit breaker's input). */
async function storageFailureCount(): Promise<string> {
  const { text } = await send(new Request("http://astraguard.test/health"));
  const storage = JSON.parse(text).dependencies?.storage ?? {};
  return `${storage.last_failure ?? "never"} ${storage.consecutive_failures ?? 0}`;
}

// ---- the property -----------------------------------------------------------------------------

describe("fuzz: every endpoint, hostile requests", () => {
  it(`answers JSON 2xx/4xx within ${REQUEST_TIMEOUT_MS} ms, and 4xx changes nothing (seed ${SEED}, ${NUM_RUNS} runs)`, async () => {
    const routes = endpoints();
    expect(routes.length).toBeGreaterThanOrEqual(10);
    let cases = 0;
    const statuses = new Map<number, number>();
    let before = await stateSnapshot();
    let storageFailures = await storageFailureCount();

    const property = fc.asyncProperty(fuzzCase(routes), async (c) => {
      cases++;
      const { status, contentType, text, headers } = await send(requestOf(c));
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const where = `${status} for ${describeCase(c)}: ${text.slice(0, 200)}`;
      expect(status >= 200 && status < 500, `status ${where}`).toBe(true);
      expect(contentType ?? "", `content type ${where}`).toMatch(/^application\/json/);
      expect(headers.get("X-Content-Type-Options"), `nosniff ${where}`).toBe("nosniff");
      expect(headers.get("X-Frame-Options"), `frame ${where}`).toBe("DENY");
      // No CORS for anyone by default, whatever the request.
      expect(headers.get("Access-Control-Allow-Origin"), `CORS ${where}`).toBeNull();
      if (c.method !== "HEAD") {
        let parsed: any;
        expect(() => (parsed = JSON.parse(text)), `JSON ${where}`).not.toThrow();
        if (status >= 400) {
          expect(parsed?.error?.status, `error body ${where}`).toBe(status);
          expect(typeof parsed.error.code === "string" && typeof parsed.error.message === "string", `error body ${where}`).toBe(true);
        }
      }
      const after = await stateSnapshot();
      if (status >= 400) expect(after, `state changed by ${where}`).toEqual(before);
      before = after;
      const failures = await storageFailureCount();
      expect(failures, `storage failure registered by ${where}`).toBe(storageFailures);
      storageFailures = failures;
      // A fault injected by a (valid) chaos request would make later answers 5xx by design: end it.
      if (status < 300 && c.method === "POST" && c.endpoint.path.startsWith("/api/v1/chaos")) {
        await send(new Request("http://astraguard.test/api/v1/chaos", { method: "DELETE", headers: { Authorization: `Bearer ${adminToken()}` } }));
      }
      // Keep the phase from drifting into SAFE_MODE for good: later cases should see every phase.
      if (after.phase === "SAFE_MODE" && cases % 25 === 0) {
        await send(new Request("http://astraguard.test/api/v1/phase", { method: "POST", headers: { Authorization: `Bearer ${adminToken()}`, "Content-Type": "application/json" }, body: JSON.stringify({ phase: MISSION_PHASES[2], force: true }) }));
        before = await stateSnapshot();
      }
    });

    // The request log (one line per case) is captured, not printed.
    const { result } = await captureConsole(() => fc.check(property, { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true }));
    console.log(`fuzz: seed ${SEED}, ${cases} cases over ${routes.length} routes; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
    if (result.failed) throw new Error(fc.defaultReportMessage(result) ?? "fuzz property failed");
  }, 300_000);

  it(`with ingest keys, read tokens and CORS origins set: no valid key, no ingest; no token, no reads; only listed origins get CORS (seed ${SEED}, ${GUARDED_RUNS} runs)`, async () => {
    const KEYS = ["fuzz-key-0123456789abcdef", "second-fuzz-key-xyz"];
    const ORIGINS = ["https://console.example.org", "http://localhost:5173"];
    const bindings: Env = { ...(env as unknown as Env), REQUIRE_INGEST_KEY: "true", INGEST_API_KEYS: KEYS.join(","), CORS_ALLOW_ORIGINS: ORIGINS.join(","), REQUIRE_READ_TOKEN: "true" };
    const guarded: Fetcher = async (request) => app.fetch(request, bindings, createExecutionContext());
    const routes = endpoints();
    const ingest = routes.filter((r) => r.method === "POST" && /^\/api\/v1\/telemetry(\/batch)?$/.test(r.path));
    expect(ingest).toHaveLength(2);
    const apiKey = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom(...KEYS),
      fc.constantFrom(...KEYS).map((k) => ` ${k} `),
      fc.constantFrom(...KEYS).map((k) => k.slice(0, -1)),
      fc.constantFrom(...KEYS).map((k) => k.toUpperCase()),
      fc.constant(KEYS.join(",")),
      fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789-_"), maxLength: 600 }),
    );
    const origin = fc.oneof(fc.constant(undefined), fc.constantFrom(...ORIGINS), fc.constantFrom("https://console.example.org.evil.example", "null", "https://evil.example", "HTTPS://CONSOLE.EXAMPLE.ORG"), fc.webUrl().map((u) => new URL(u).origin));
    const guardedCase = fc.tuple(fuzzCase([...ingest, ...ingest, ...ingest, ...routes]), apiKey, origin);
    let cases = 0;
    const statuses = new Map<number, number>();
    let before = await stateSnapshot();

    const property = fc.asyncProperty(guardedCase, async ([c, key, from]) => {
      cases++;
      const request = requestOf(c);
      if (key !== undefined) request.headers.set("X-API-Key", key);
      if (from !== undefined) request.headers.set("Origin", from);
      const { status, contentType, text, headers } = await send(request, guarded);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const where = `${status} for ${describeCase(c)} key=${JSON.stringify(key)?.slice(0, 40)} origin=${from}: ${text.slice(0, 200)}`;
      expect(status >= 200 && status < 500, `status ${where}`).toBe(true);
      const allowedOrigin = from !== undefined && ORIGINS.includes(from);
      expect(headers.get("Access-Control-Allow-Origin"), `CORS ${where}`).toBe(allowedOrigin ? from : null);
      if (status === 204) {
        // Only an allowed origin's preflight is answered without a body.
        expect(c.method === "OPTIONS" && allowedOrigin, `204 ${where}`).toBe(true);
        expect(text).toBe("");
      } else {
        expect(contentType ?? "", `content type ${where}`).toMatch(/^application\/json/);
        if (c.method !== "HEAD") expect(() => JSON.parse(text), `JSON ${where}`).not.toThrow();
      }
      const keyValid = key !== undefined && KEYS.includes(key.trim());
      const ingestCall = c.method === "POST" && ingest.some((r) => r.path === c.endpoint.path);
      // The body limit is the one check before the key (a 413 needs no key).
      if (ingestCall && !keyValid && status !== 413) {
        expect(status, `key ${where}`).toBe(401);
        expect(JSON.parse(text).error.field).toBe("X-API-Key");
      }
      if (ingestCall && keyValid) expect(status, `key ${where}`).not.toBe(401);
      // Reads under /api/ need a token (operator or admin here; no READ_TOKEN is set).
      const read = (c.method === "GET" || c.method === "HEAD") && new URL(request.url).pathname.startsWith("/api/");
      const reader = c.credential === "admin" || c.credential === "operator";
      if (read && !reader) expect(status, `read ${where}`).toBe(401);
      if (read && reader) expect(status, `read ${where}`).not.toBe(401);
      const after = await stateSnapshot();
      if (status >= 400) expect(after, `state changed by ${where}`).toEqual(before);
      before = after;
    });

    const { result } = await captureConsole(() => fc.check(property, { seed: SEED, numRuns: GUARDED_RUNS, endOnFailure: true }));
    console.log(`fuzz (keys and read tokens required, CORS set): seed ${SEED}, ${cases} cases; statuses ${JSON.stringify(Object.fromEntries([...statuses].sort(([a], [b]) => a - b)))}`);
    if (result.failed) throw new Error(fc.defaultReportMessage(result) ?? "fuzz property failed");
  }, 300_000);
});
