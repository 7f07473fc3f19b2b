/**
 * Chaos injection, isolate side: which faults are active (asked of the ChaosControl object and
 * cached for {@link FAULT_VIEW_TTL_MS} and refreshed in the background, so requests do not wait
 * for it), how a fault
 * is applied to a call of its target, and when an ended fault counts as recovered.
 *
 * Never on by default: with no fault injected, a guarded call only pays a cache lookup; each
 * isolate syncs about once per second in the background while it serves requests (which also
 * pools the breaker states, see ./breakers.ts).
 *
 * Fault types, applied to every call of the target while the fault is active:
 * - `latency`: the call waits `latency_ms` (default 1500) before it goes out;
 * - `error`: the call fails with probability `error_rate` (default 0.5), like a flaky dependency;
 * - `outage`: every call fails at once, like a dependency that is down.
 */
import { z } from "zod";
import { instruments } from "../telemetry/instruments";
import type { DependencyName } from "./dependency-health";
import { waitUntil } from "cloudflare:workers";
import { localBreakerStates, recordBreakerGauge, takeBreakerChange } from "./breakers";
import { sleep, systemClock, withTimeout, type Clock } from "../support/async";
import { isolateId } from "../support/isolate";
import { log, parseLogLevel, setLogLevelOverride } from "../telemetry/logger";
import { CHAOS_TARGETS, CHAOS_TYPES, type ChaosType, type Fault, type SyncResult } from "./faults";


/** How long an isolate trusts its copy of the active faults. */
export const FAULT_VIEW_TTL_MS = 1000;
/** A sync or recovery mark that takes longer is abandoned (the call goes on without it). */
export const CONTROL_TIMEOUT_MS = 250;
export const DEFAULT_LATENCY_MS = 1500;
export const DEFAULT_ERROR_RATE = 0.5;
export const MAX_DURATION_S = 300;
export const MAX_LATENCY_MS = 10_000;
/** The one ChaosControl object. */
const CONTROL_OBJECT_NAME = "chaos";

/** POST /api/v1/chaos body. */
export const chaosSpecSchema = z
  .strictObject({
    type: z.enum(CHAOS_TYPES, { error: `type must be one of ${CHAOS_TYPES.join(", ")}` }),
    target: z.enum(CHAOS_TARGETS, { error: `target must be one of ${CHAOS_TARGETS.join(", ")}` }),
    duration_s: z
      .number({ error: "duration_s is required and must be a whole number of seconds" })
      .int(`duration_s must be a whole number of seconds from 1 to ${MAX_DURATION_S}`)
      .min(1, `duration_s must be a whole number of seconds from 1 to ${MAX_DURATION_S}`)
      .max(MAX_DURATION_S, `duration_s must be a whole number of seconds from 1 to ${MAX_DURATION_S}`),
    latency_ms: z
      .number({ error: "latency_ms must be a number" })
      .int(`latency_ms must be a whole number from 1 to ${MAX_LATENCY_MS}`)
      .min(1, `latency_ms must be a whole number from 1 to ${MAX_LATENCY_MS}`)
      .max(MAX_LATENCY_MS, `latency_ms must be a whole number from 1 to ${MAX_LATENCY_MS}`)
      .optional(),
    error_rate: z
      .number({ error: "error_rate must be a number" })
      .gt(0, "error_rate must be greater than 0 and at most 1")
      .max(1, "error_rate must be greater than 0 and at most 1")
      .optional(),
  })
  .superRefine((spec, ctx) => {
    if (spec.latency_ms !== undefined && spec.type !== "latency") {
      ctx.addIssue({ code: "custom", path: ["latency_ms"], message: "latency_ms applies only to type latency" });
    }
    if (spec.error_rate !== undefined && spec.type !== "error") {
      ctx.addIssue({ code: "custom", path: ["error_rate"], message: "error_rate applies only to type error" });
    }
  });

export const chaosIdSchema = z.strictObject({
  id: z.string().regex(/^ch_[0-9a-f]{32}$/, "id must look like ch_ followed by 32 hex digits"),
});

/** What an injected error or outage throws. */
export class ChaosFaultError extends Error {
  constructor(
    readonly target: DependencyName,
    readonly faultType: ChaosType,
    readonly faultId: string,
  ) {
    super(`chaos: injected ${faultType} of ${target} (${faultId})`);
    this.name = "ChaosFaultError";
  }
}

/** The isolate's copy of the active faults. */
export interface FaultView {
  fetchedAtMs: number;
  active: Fault[];
  unrecovered: Fault[];
  fleet: SyncResult["fleet"];
  /** False when the last sync failed (the copy may be older than the TTL says). */
  synced: boolean;
}

const EMPTY_VIEW: FaultView = { fetchedAtMs: 0, active: [], unrecovered: [], fleet: {}, synced: false };

/**
 * The chaos view's time and timers: how long a latency fault waits, the bound on each call to
 * ChaosControl, the age of the copy. {@link systemClock} unless a test set another with
 * {@link setChaosClock}.
 */
let clock: Clock = systemClock;

/**
 * Replaces the chaos view's clock (tests: latency faults that wait on a manual clock, control
 * calls that a slow machine cannot time out); with no argument, restores {@link systemClock}, as
 * {@link resetChaosView} does.
 */
export function setChaosClock(next: Clock = systemClock): void {
  clock = next;
}

let view: FaultView | undefined;
let refreshingSinceMs: number | undefined;
/** Ended faults this isolate already reported healthy (or saw reported), with when it tried. */
const recoveryMarks = new Map<string, { done: boolean; atMs: number }>();

export function controlStub(env: Env): ReturnType<Env["CHAOS_CONTROL"]["get"]> {
  return env.CHAOS_CONTROL.get(env.CHAOS_CONTROL.idFromName(CONTROL_OBJECT_NAME));
}


/**
 * The active faults as this isolate knows them. Stale-while-revalidate: a copy older than
 * FAULT_VIEW_TTL_MS is still answered at once while one sync runs in the background
 * (`waitUntil`), so no request waits for ChaosControl — except the first of an isolate (no copy
 * yet) and the one after this isolate injected or ended a fault ({@link invalidateFaultView}),
 * which sync first, bounded by CONTROL_TIMEOUT_MS. An expired fault stops applying at its
 * expiry whatever the copy's age. Never throws.
 */
export async function faultView(env: Env, now = clock.now()): Promise<FaultView> {
  if (!env.CHAOS_CONTROL) return EMPTY_VIEW;
  if (!view) return refreshFaultView(env);
  const stale = now - view.fetchedAtMs >= FAULT_VIEW_TTL_MS;
  // A background sync whose request context went away may never settle: do not wait on it forever.
  const refreshing = refreshingSinceMs !== undefined && now - refreshingSinceMs < CONTROL_TIMEOUT_MS * 4;
  if (stale && !refreshing) {
    refreshingSinceMs = now;
    const sync = syncView(env)
      .then((fresh) => {
        view = fresh;
      })
      .finally(() => {
        refreshingSinceMs = undefined;
      });
    try {
      waitUntil(sync);
    } catch {
      // Not inside a request (e.g. a test calling directly): it runs as long as the runtime lets it.
    }
  }
  return view;
}

/**
 * Syncs now and answers the fresh copy: for the first call of an isolate, after a local inject or
 * DELETE, and to publish a breaker transition at once. Never throws.
 */
export async function refreshFaultView(env: Env): Promise<FaultView> {
  if (!env.CHAOS_CONTROL) return EMPTY_VIEW;
  takeBreakerChange(); // this sync publishes it
  view = await syncView(env);
  return view;
}

async function syncView(env: Env): Promise<FaultView> {
  const local = localBreakerStates();
  try {
    const r = (await withTimeout(controlStub(env).sync(isolateId(), local), CONTROL_TIMEOUT_MS, clock)) as SyncResult;
    recordBreakerGauge({ ...local, ...r.fleet });
    // The run-time log level rides on the same sync: every isolate that serves requests has it within ~1 s.
    setLogLevelOverride(parseLogLevel(r.logLevel));
    return { fetchedAtMs: clock.now(), active: r.active, unrecovered: r.unrecovered, fleet: r.fleet, synced: true };
  } catch (err) {
    log("warn", "chaos_sync_failed", { error: String(err).slice(0, 160) });
    recordBreakerGauge(local);
    const now = clock.now();
    const previous = view ?? EMPTY_VIEW;
    // Keep faults we knew about, but never beyond their own end.
    return { ...previous, active: previous.active.filter((f) => f.expiresAtMs > now), fetchedAtMs: now, synced: false };
  }
}

/** Forget the cached copy: the next call syncs (after this isolate injected or ended a fault). */
export function invalidateFaultView(): void {
  view = undefined;
}


/**
 * Runs `fn` under the faults of `view` that target `target` and are active now: waits for
 * latency faults, then fails for an outage or (with its probability) an error fault.
 */
export async function applyFaults<T>(view: FaultView, target: DependencyName, fn: () => Promise<T>, now = clock.now(), random: () => number = Math.random): Promise<T> {
  if (view.active.length === 0) return fn();
  const faults = view.active.filter((f) => f.target === target && f.expiresAtMs > now);
  for (const f of faults) if (f.type === "latency") await sleep(Math.min(MAX_LATENCY_MS, f.latencyMs ?? DEFAULT_LATENCY_MS), clock);
  for (const f of faults) {
    if (f.type === "outage") throw new ChaosFaultError(target, "outage", f.id);
    if (f.type === "error" && random() < (f.errorRate ?? DEFAULT_ERROR_RATE)) throw new ChaosFaultError(target, "error", f.id);
  }
  return fn();
}

/**
 * After a successful call of `target` that started at `startedAtMs`: each fault of that target
 * that had ended before the call started (a call that began under the fault proves nothing) and
 * is not yet recovered is marked recovered now. The isolate whose mark is first records the recovery
 * (astra_chaos_recovery_time_seconds {type}, from injection to now, and
 * astra_chaos_injections_total {type, status="recovered"}). Never throws.
 */
export async function noteHealthy(env: Env, target: DependencyName, current: FaultView, startedAtMs: number, now = clock.now()): Promise<void> {
  if (!env.CHAOS_CONTROL) return;
  const ended = [
    ...current.unrecovered.filter((f) => f.target === target && (f.endedAtMs ?? f.expiresAtMs) <= startedAtMs),
    // Ended by time since the copy was taken.
    ...current.active.filter((f) => f.target === target && f.expiresAtMs <= startedAtMs),
  ];
  for (const f of ended) {
    const mark = recoveryMarks.get(f.id);
    if (mark && (mark.done || now - mark.atMs < FAULT_VIEW_TTL_MS)) continue;
    recoveryMarks.set(f.id, { done: false, atMs: now });
    try {
      const r = (await withTimeout(controlStub(env).markRecovered(f.id, now), CONTROL_TIMEOUT_MS, clock)) as { recorded: boolean; fault?: Fault };
      recoveryMarks.set(f.id, { done: true, atMs: now });
      if (r.recorded) {
        const seconds = Math.max(0, (now - f.injectedAtMs) / 1000);
        instruments.chaosRecoveryTime.record(seconds, { type: f.type });
        instruments.chaosInjections.add(1, { type: f.type, status: "recovered" });
        log("info", "chaos_recovered", { fault_id: f.id, type: f.type, target, recovery_seconds: seconds });
      }
    } catch (err) {
      log("warn", "chaos_recovery_mark_failed", { fault_id: f.id, error: String(err).slice(0, 160) });
    }
  }
  if (recoveryMarks.size > 1000) {
    for (const [id, m] of recoveryMarks) if (m.done) recoveryMarks.delete(id);
  }
}

/** A fault as the API shows it. */
export function faultJson(f: Fault, now = clock.now()) {
  const active = f.endedAtMs === null && f.expiresAtMs > now;
  const status = active ? "active" : (f.endReason ?? "expired");
  return {
    id: f.id,
    type: f.type,
    target: f.target,
    ...(f.latencyMs !== null && { latency_ms: f.latencyMs }),
    ...(f.errorRate !== null && { error_rate: f.errorRate }),
    ...(f.type === "latency" && f.latencyMs === null && { latency_ms: DEFAULT_LATENCY_MS }),
    ...(f.type === "error" && f.errorRate === null && { error_rate: DEFAULT_ERROR_RATE }),
    status,
    injected_at: new Date(f.injectedAtMs).toISOString(),
    expires_at: new Date(f.expiresAtMs).toISOString(),
    remaining_s: active ? Math.round((f.expiresAtMs - now) / 100) / 10 : 0,
    ended_at: active ? null : new Date(f.endedAtMs ?? f.expiresAtMs).toISOString(),
    recovered: f.recoveredAtMs !== null,
    recovered_at: f.recoveredAtMs === null ? null : new Date(f.recoveredAtMs).toISOString(),
    /** From injection to the first healthy call after the fault ended. */
    recovery_seconds: f.recoveredAtMs === null ? null : (f.recoveredAtMs - f.injectedAtMs) / 1000,
  };
}

/** Forgets the cached faults and recovery marks, and restores the system clock (tests). */
export function resetChaosView(): void {
  clock = systemClock;
  view = undefined;
  refreshingSinceMs = undefined;
  recoveryMarks.clear();
}
