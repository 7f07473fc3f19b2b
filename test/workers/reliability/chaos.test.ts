/** Chaos injection through the API: admin only, named input errors, faults applied, expiry, DELETE and recovery. */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { app } from "../../../functions/app";
import { breaker } from "../../../lib/reliability/breakers";
import { CONTROL_TIMEOUT_MS, setChaosClock } from "../../../lib/reliability/chaos";
import { historyCache } from "../../../lib/mission/mission-client";
import { adminToken, call, nominalPoint, operatorToken } from "../support/api";

const admin = () => ({ token: adminToken() });
const inject = (body: Record<string, unknown>) => call("POST", "/api/v1/chaos", { ...admin(), body });

/**
 * The tests' time. Date is faked (the routes, the breakers, the retries, ChaosControl and the
 * chaos view all read Date.now), so it stands still until a test moves it: a fault lasts, a
 * cool-down passes and a recovery takes exactly what the test says, however slow the machine. It
 * goes on from test to test, from a minute in the past, so nothing stamped here lies in the real
 * future once the real clock is back. The chaos view's timers are manual: a latency fault waits
 * until the test lets it pass, and a call to ChaosControl is never abandoned because the machine is
 * slow (its timeout never fires; that is not what these tests are about).
 *
 * The test and the request under test never resolve each other's promises: workerd runs each in
 * its own request context, and a request's timers and I/O objects are its own. A manual timer is
 * a flag: the test sets it (`pass`), and the request that set the timer sees it on a 1 ms poll
 * of its own and runs the callback itself; the test sees a wait appear (`pending`) the same way.
 */
let fakeNow = Date.now() - 60_000;
function testTime() {
  vi.useFakeTimers({ toFake: ["Date"], now: fakeNow });
  const timers: Array<{ id: number; ms: number; passed: boolean }> = [];
  /** Every chaos timer's length, in the order set. */
  const waits: number[] = [];
  let ids = 0;
  /** Polls of a timer at most (1 ms apart): a wait the test never passes ends the poll, not the suite. */
  const MAX_POLLS = 20_000;
  setChaosClock({
    now: () => Date.now(),
    setTimeout: (fn, ms) => {
      waits.push(ms);
      const timer = { id: ++ids, ms, passed: false };
      timers.push(timer);
      let polls = 0;
      const poll = () => {
        if (timer.passed) fn();
        else if (timers.includes(timer) && polls++ < MAX_POLLS) setTimeout(poll, 1);
      };
      setTimeout(poll, 1);
      return timer.id;
    },
    clearTimeout: (id) => {
      const i = timers.findIndex((t) => t.id === id);
      if (i >= 0) timers.splice(i, 1);
    },
  });
  return {
    waits,
    /** Moves the clock `ms` forward (timers do not fire: nothing waits on time but latency faults). */
    advance: (ms: number) => vi.setSystemTime(Date.now() + ms),
    /** Resolves once a wait of `ms` is pending (seen on the test's own 1 ms poll). */
    async pending(ms: number): Promise<void> {
      while (!timers.some((t) => t.ms === ms && !t.passed)) await new Promise<void>((wake) => setTimeout(wake, 1));
    },
    /** Lets the pending wait of `ms` pass: the clock moves `ms` forward and the wait ends (on its request's next poll). */
    pass(ms: number): void {
      const i = timers.findIndex((t) => t.ms === ms && !t.passed);
      if (i < 0) throw new Error(`no wait of ${ms} ms is pending`);
      const [timer] = timers.splice(i, 1);
      vi.setSystemTime(Date.now() + ms);
      timer!.passed = true;
    },
  };
}

let time: ReturnType<typeof testTime>;
beforeEach(() => {
  time = testTime();
});
afterEach(() => {
  fakeNow = Date.now();
  vi.useRealTimers();
  setChaosClock();
});

describe("chaos endpoints: access", () => {
  it.each([
    ["POST", "/api/v1/chaos"],
    ["GET", "/api/v1/chaos"],
    ["DELETE", "/api/v1/chaos"],
    ["DELETE", "/api/v1/chaos/ch_0123456789abcdef0123456789abcdef"],
  ])("%s %s: 401 without a token, 401 with a wrong one, 403 with the operator token", async (method, path) => {
    const body = method === "POST" ? { type: "outage", target: "storage", duration_s: 5 } : undefined;
    const none = await call(method, path, { body });
    expect(none.status).toBe(401);
    expect(none.body.error).toMatchObject({ code: "unauthorized", field: "Authorization" });
    expect((await call(method, path, { body, token: "not-a-token" })).status).toBe(401);
    const operator = await call(method, path, { body, token: operatorToken() });
    expect(operator.status).toBe(403);
    expect(operator.body.error.code).toBe("forbidden");
    // Nothing was injected by the refused calls.
    expect((await call("GET", "/api/v1/chaos", admin())).body.active).toEqual([]);
  });

  it("refuses injection in production unless CHAOS_ENABLED is true; listing and ending still work", async () => {
    const post = async (vars: Record<string, string>) => {
      const ctx = createExecutionContext();
      const res = await app.request(
        "/api/v1/chaos",
        { method: "POST", headers: { Authorization: `Bearer ${adminToken()}`, "Content-Type": "application/json" }, body: JSON.stringify({ type: "outage", target: "storage", duration_s: 5 }) },
        { ...env, ...vars },
        ctx,
      );
      void waitOnExecutionContext(ctx);
      return { status: res.status, body: (await res.json()) as any };
    };
    const refused = await post({ DEPLOYMENT_ENVIRONMENT: "production" });
    expect(refused.status).toBe(403);
    expect(refused.body.error.code).toBe("chaos_disabled");
    expect((await post({ DEPLOYMENT_ENVIRONMENT: "development", CHAOS_ENABLED: "false" })).status).toBe(403);
    expect((await post({ DEPLOYMENT_ENVIRONMENT: "production", CHAOS_ENABLED: "true" })).status).toBe(201);
    expect((await call("GET", "/api/v1/chaos", admin())).body.active).toHaveLength(1);
    expect((await call("DELETE", "/api/v1/chaos", admin())).body.cancelled).toHaveLength(1);
  });

  it("is off by default: no fault is active and storage calls go straight through", async () => {
    const list = await call("GET", "/api/v1/chaos", admin());
    expect(list.status).toBe(200);
    expect(list.body).toMatchObject({ active: [], recent: [] });
    expect((await call("GET", "/api/v1/phase")).status).toBe(200);
  });
});

describe("chaos endpoints: bad input names the field", () => {
  it.each([
    [{ type: "meteor", target: "storage", duration_s: 5 }, "type"],
    [{ type: "outage", target: "the-moon", duration_s: 5 }, "target"],
    [{ type: "outage", target: "storage" }, "duration_s"],
    [{ type: "outage", target: "storage", duration_s: 0 }, "duration_s"],
    [{ type: "outage", target: "storage", duration_s: 301 }, "duration_s"],
    [{ type: "outage", target: "storage", duration_s: 1.5 }, "duration_s"],
    [{ type: "outage", target: "storage", duration_s: "5" }, "duration_s"],
    [{ type: "latency", target: "storage", duration_s: 5, latency_ms: 0 }, "latency_ms"],
    [{ type: "latency", target: "storage", duration_s: 5, latency_ms: 10_001 }, "latency_ms"],
    [{ type: "outage", target: "storage", duration_s: 5, latency_ms: 100 }, "latency_ms"],
    [{ type: "error", target: "storage", duration_s: 5, error_rate: 0 }, "error_rate"],
    [{ type: "error", target: "storage", duration_s: 5, error_rate: 1.5 }, "error_rate"],
    [{ type: "latency", target: "storage", duration_s: 5, error_rate: 0.5 }, "error_rate"],
    [{ type: "outage", target: "storage", duration_s: 5, forever: true }, "forever"],
  ])("%j → 422 on %s", async (body, field) => {
    const res = await inject(body);
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({ status: 422, code: "validation_failed", field });
  });

  it("refuses a body that is not JSON (415), malformed JSON (400), and a malformed or unknown id", async () => {
    const text = await call("POST", "/api/v1/chaos", { ...admin(), raw: "type=outage", headers: { "Content-Type": "text/plain" } });
    expect(text.status).toBe(415);
    const broken = await call("POST", "/api/v1/chaos", { ...admin(), raw: "{not json" });
    expect(broken.status).toBe(400);
    const badId = await call("DELETE", "/api/v1/chaos/not-an-id", admin());
    expect(badId.status).toBe(422);
    expect(badId.body.error.field).toBe("id");
    const unknown = await call("DELETE", "/api/v1/chaos/ch_0123456789abcdef0123456789abcdef", admin());
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.field).toBe("id");
  });

  it("caps the faults active at once", async () => {
    for (let i = 0; i < 10; i++) expect((await inject({ type: "latency", target: "collector", duration_s: 60, latency_ms: 1 })).status).toBe(201);
    const refused = await inject({ type: "latency", target: "collector", duration_s: 60 });
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe("too_many_faults");
    expect((await call("DELETE", "/api/v1/chaos", admin())).body.cancelled).toHaveLength(10);
  });
});

describe("chaos faults on storage", () => {
  it("an outage fails storage calls for its duration, then expires and the recovery is reported", async () => {
    const created = await inject({ type: "outage", target: "storage", duration_s: 1 });
    expect(created.status).toBe(201);
    const fault = created.body.fault;
    expect(fault).toMatchObject({ type: "outage", target: "storage", status: "active", recovered: false, recovery_seconds: null });
    expect(fault.id).toMatch(/^ch_[0-9a-f]{32}$/);
    expect(fault.remaining_s).toBeGreaterThan(0);
    expect(fault.remaining_s).toBeLessThanOrEqual(1);
    expect(fault.remaining_s).toBe(1); // the clock has not moved since the injection

    const listed = await call("GET", "/api/v1/chaos", admin());
    expect(listed.body.active.map((f: any) => f.id)).toEqual([fault.id]);

    // Reads fail (503), ingest still answers with an unpersisted verdict.
    const phase = await call("GET", "/api/v1/phase");
    expect(phase.status).toBe(503);
    const ingest = await call("POST", "/api/v1/telemetry", { body: nominalPoint() });
    expect(ingest.status).toBe(200);
    expect(ingest.body.persisted).toBe(false);

    // 3 failed attempts of the phase read + 3 of ingest's context read ≥ 5: the breaker is open.
    expect(breaker("storage").state).toBe("OPEN");
    time.advance(1100); // was a real sleep of 1100 ms
    // The fault has expired, but the breaker stays open until its cool-down (3 s) has passed…
    expect((await call("GET", "/api/v1/phase")).status).toBe(503);
    expect(breaker("storage").state).toBe("OPEN");
    expect((await call("GET", "/api/v1/chaos", admin())).body.recent[0]).toMatchObject({ id: fault.id, status: "expired", recovered: false });
    // …then the half-open probe succeeds, the breaker closes, and the fault counts as recovered.
    const openedAt = breaker("storage").snapshot().openedAtMs!;
    time.advance(openedAt + 3000 - Date.now() + 50); // was a real sleep until then
    const probeAt = Date.now();
    const after = await call("GET", "/api/v1/phase");
    expect(after.status).toBe(200);
    expect(breaker("storage").state).toBe("CLOSED");
    const final = await call("GET", "/api/v1/chaos", admin());
    expect(final.body.active).toEqual([]);
    const ended = final.body.recent.find((f: any) => f.id === fault.id);
    expect(ended).toMatchObject({ status: "expired", remaining_s: 0, recovered: true });
    // From injection: the fault's 1 s plus the rest of the breaker's cool-down.
    expect(ended.recovery_seconds).toBeGreaterThanOrEqual(3);
    expect(ended.recovery_seconds).toBeLessThan(6);
    expect(Date.parse(ended.recovered_at)).toBeGreaterThanOrEqual(Date.parse(ended.ended_at));
    // Exactly: the fault ended 1 s after its injection, and the probe (the first healthy call)
    // went out when the cool-down since the breaker opened (at the injection) had passed.
    expect(Date.parse(ended.ended_at) - Date.parse(ended.injected_at)).toBe(1000);
    expect(openedAt).toBe(Date.parse(ended.injected_at));
    expect(Date.parse(ended.recovered_at)).toBe(probeAt);
    expect(ended.recovery_seconds).toBe((probeAt - Date.parse(ended.injected_at)) / 1000);
    expect(ended.recovery_seconds).toBe(3.05);
  });

  it("DELETE /api/v1/chaos/:id ends a fault at once; storage works again and the fault shows cancelled and recovered", async () => {
    const { body } = await inject({ type: "outage", target: "storage", duration_s: 300 });
    expect((await call("GET", "/api/v1/telemetry/latest")).status).toBe(503);
    const del = await call("DELETE", `/api/v1/chaos/${body.fault.id}`, admin());
    expect(del.status).toBe(200);
    expect(del.body.cancelled).toHaveLength(1);
    expect(del.body.cancelled[0]).toMatchObject({ id: body.fault.id, status: "cancelled" });
    expect((await call("GET", "/api/v1/phase")).status).toBe(200);
    const again = await call("DELETE", `/api/v1/chaos/${body.fault.id}`, admin());
    expect(again.status).toBe(200);
    expect(again.body.cancelled).toEqual([]);
    expect(again.body.fault).toMatchObject({ status: "cancelled", recovered: true });
  });

  it("DELETE /api/v1/chaos ends every active fault", async () => {
    await inject({ type: "outage", target: "storage", duration_s: 300 });
    await inject({ type: "latency", target: "collector", duration_s: 300, latency_ms: 10 });
    const del = await call("DELETE", "/api/v1/chaos", admin());
    expect(del.status).toBe(200);
    expect(del.body.cancelled.map((f: any) => f.target).sort()).toEqual(["collector", "storage"]);
    expect((await call("GET", "/api/v1/chaos", admin())).body.active).toEqual([]);
    expect((await call("DELETE", "/api/v1/chaos", admin())).body.cancelled).toEqual([]);
  });

  it("a latency fault delays storage calls by latency_ms", async () => {
    await inject({ type: "latency", target: "storage", duration_s: 5, latency_ms: 300 });
    const started = Date.now();
    let answered = false;
    const response = call("GET", "/api/v1/phase").finally(() => (answered = true));
    await time.pending(300); // the storage call waits for the fault…
    await new Promise((r) => setTimeout(r, 0));
    expect(answered).toBe(false); // …and there is no answer before the wait has passed
    time.pass(300);
    const res = await response;
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(Date.now() - started).toBe(300);
    // One wait of latency_ms, besides the bounds on the calls to ChaosControl.
    expect(time.waits.filter((ms) => ms !== CONTROL_TIMEOUT_MS)).toEqual([300]);
  });

  it("an error fault with error_rate 1 fails every call; the storage breaker opens and /health shows it", async () => {
    await inject({ type: "error", target: "storage", duration_s: 60, error_rate: 1 });
    // Each read is tried 3 times: two reads are 6 failures ≥ the threshold of 5.
    expect((await call("GET", "/api/v1/phase")).status).toBe(503);
    expect((await call("GET", "/api/v1/phase")).status).toBe(503);
    expect(breaker("storage").state).toBe("OPEN");
    const health = await call("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.body.status).toBe("degraded");
    expect(health.body.dependencies.storage).toMatchObject({ status: "degraded", circuit_breaker: "OPEN" });
    expect((await call("GET", "/api/v1/chaos", admin())).body.circuit_breakers).toMatchObject({ isolate: { storage: "OPEN" }, fleet: { storage: "OPEN" } });
  });

  it("faults on another target leave storage alone", async () => {
    await inject({ type: "outage", target: "collector", duration_s: 60 });
    expect((await call("GET", "/api/v1/phase")).status).toBe(200);
    expect(breaker("storage").state).toBe("CLOSED");
  });
});

describe("only idempotent work is retried", () => {
  /** Durable Object namespaces whose every call fails and is counted, by method. */
  function countingEnv() {
    const calls: string[] = [];
    const failing = (real: { idFromName(name: string): DurableObjectId }) => ({
      idFromName: (name: string) => real.idFromName(name),
      get: () =>
        new Proxy(
          {},
          {
            get: (_t, prop) => (...args: unknown[]) => {
              // The traced stub calls traced(carrier, op, args); plain stubs call the op.
              calls.push(prop === "traced" ? String(args[1]) : String(prop));
              return Promise.reject(new Error("storage down (test)"));
            },
          },
        ),
    });
    return {
      calls,
      testEnv: { ...env, MISSION_STATE: failing(env.MISSION_STATE) as unknown as typeof env.MISSION_STATE, SATELLITE_STATE: failing(env.SATELLITE_STATE) as unknown as typeof env.SATELLITE_STATE },
    };
  }

  /** This isolate has seen `sat-1` (and the default satellite) registered, as after earlier traffic. */
  async function knownSatellites() {
    expect((await call("POST", "/api/v1/telemetry", { body: nominalPoint({ satellite_id: "sat-1" }) })).status).toBe(200);
    expect((await call("POST", "/api/v1/telemetry", { body: nominalPoint() })).status).toBe(200);
    historyCache.clear();
  }

  async function request(testEnv: unknown, method: string, path: string, body?: unknown, token?: string) {
    const ctx = createExecutionContext();
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await app.request(path, { method, headers, ...(body !== undefined && { body: JSON.stringify(body) }) }, testEnv as typeof env, ctx);
    // Not waiting for the request's telemetry flush (waitUntil): the calls counted here happen before the answer.
    void waitOnExecutionContext(ctx);
    return res.status;
  }

  it("writes (setPhase, feedback, record) are attempted once; reads (getPhase) up to 3 times", async () => {
    await knownSatellites();
    const { calls, testEnv } = countingEnv();
    expect(await request(testEnv, "POST", "/api/v1/phase", { phase: "SAFE_MODE" }, adminToken())).toBe(503);
    expect(calls.filter((c) => c === "setPhase")).toHaveLength(1);
    expect(await request(testEnv, "POST", "/api/v1/anomalies/an_0123456789abcdef0123456789abcdef_sat-1/feedback", { false_positive: true }, operatorToken())).toBe(503);
    expect(calls.filter((c) => c === "feedback")).toHaveLength(1);
    breaker("storage"); // still closed: 2 failures so far
    expect(await request(testEnv, "GET", "/api/v1/phase")).toBe(503);
    expect(calls.filter((c) => c === "getPhase")).toHaveLength(3);
    // 5 failures: the breaker is open, so ingest's record is not even attempted (and never retried).
    expect(await request(testEnv, "POST", "/api/v1/telemetry", nominalPoint())).toBe(200);
    expect(calls.filter((c) => c === "record").length).toBeLessThanOrEqual(1);
  });

  it("ingest's record is attempted once while its context read is retried", async () => {
    await knownSatellites();
    const { calls, testEnv } = countingEnv();
    expect(await request(testEnv, "POST", "/api/v1/telemetry", nominalPoint())).toBe(200);
    expect(calls.filter((c) => c === "context")).toHaveLength(3);
    expect(calls.filter((c) => c === "record")).toHaveLength(1);
  });
});
