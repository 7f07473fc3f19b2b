/**
 * The isolate's way to the MissionState object: one stub per isolate, and the memory-engine caches
 * in front of the reads that every request makes (phase, each source's detector state).
 */
import type { DetectorState } from "../domain/detector";
import type { MissionPhase } from "../domain/schemas";
import { ApiError } from "../http/errors";
import { reportDependency } from "../reliability/dependency-health";
import { IsolateCache } from "./isolate-cache";
import { guardDependency, type GuardOptions } from "../reliability/guard";
import { SpanKind } from "@opentelemetry/api";
import { ATTR_DB_COLLECTION_NAME, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { MISSION_OPERATIONS, type MissionState } from "../objects/mission-state";
import { adoptSpans, type TracedResult } from "../telemetry/object-spans";
import { injectTraceContext, withSpan } from "../telemetry/spans";

/** One mission, one object: its name is fixed so every isolate reaches the same one. */
const MISSION_OBJECT_NAME = "mission";

export const phaseCache = new IsolateCache<MissionPhase>("phase", { ttlMillis: 2000, maxEntries: 1 });
/** Each source's detector state (named "history" in stats and spans, as before the state replaced it). */
export const historyCache = new IsolateCache<DetectorState>("history", { ttlMillis: 2000, maxEntries: 5000 });

export function missionState(env: Env): DurableObjectStub<MissionState> {
  return env.MISSION_STATE.get(env.MISSION_STATE.idFromName(MISSION_OBJECT_NAME));
}

/**
 * Calls the object through the storage circuit breaker and active chaos faults (reads may pass
 * `{ retry: "mission.<op>" }` to be retried), recording the storage dependency's health as seen by
 * this isolate.
 */
export async function callMission<T>(env: Env, call: (stub: DurableObjectStub<MissionState>) => Promise<T>, options: GuardOptions = {}): Promise<T> {
  try {
    const result = await guardDependency(env, "storage", () => call(tracedStub(missionState(env))), options);
    reportDependency("storage", true);
    return result;
  } catch (err) {
    reportDependency("storage", false, err);
    if (err instanceof ApiError) throw err;
    // The caller sees a clear 503; the cause stays in the dependency status and the logs.
    throw new ApiError(503, "storage_unavailable", "mission state storage is unavailable; try again shortly", undefined, undefined, { cause: err });
  }
}

export interface DetectionContext {
  phase: MissionPhase | undefined;
  /** Each source's detector state; absent for a source seen for the first time. */
  states: Map<string, DetectorState | undefined>;
  /** False when the object could not be reached and the context is what the cache had. */
  fresh: boolean;
}

/** Phase and detector states for these sources: from the cache where live, else one call to the object. */
export async function detectionContext(env: Env, satelliteIds: readonly string[]): Promise<DetectionContext> {
  const states = new Map<string, DetectorState | undefined>();
  const missing: string[] = [];
  const ids = new Set(satelliteIds);
  withSpan("cache_operation", { "astra.cache.store_type": "history", "astra.cache.operation": "get", "astra.cache.keys": ids.size }, (span) => {
    for (const id of ids) {
      const cached = historyCache.get(id);
      if (cached) states.set(id, cached);
      else missing.push(id);
    }
    span.setAttributes({ "astra.cache.hits": ids.size - missing.length, "astra.cache.hit": missing.length === 0 });
  });
  const phase = withSpan("cache_operation", { "astra.cache.store_type": "phase", "astra.cache.operation": "get", "astra.cache.keys": 1 }, (span) => {
    const cached = phaseCache.get("phase");
    span.setAttributes({ "astra.cache.hits": cached ? 1 : 0, "astra.cache.hit": cached !== undefined });
    return cached;
  });
  if (missing.length === 0 && phase) return { phase, states, fresh: true };
  try {
    const ctx = await callMission(env, (s) => s.context(missing), { retry: "mission.context" });
    phaseCache.set("phase", ctx.phase);
    for (const id of missing) {
      const state = Object.hasOwn(ctx.states, id) ? ctx.states[id] : undefined;
      if (state) historyCache.set(id, state);
      states.set(id, state);
    }
    return { phase: ctx.phase, states, fresh: true };
  } catch {
    for (const id of missing) states.set(id, undefined);
    return { phase, states, fresh: false };
  }
}

/** After a request is recorded, this isolate's cache already knows the source's new state. */
export function rememberState(satelliteId: string, state: DetectorState): void {
  historyCache.set(satelliteId, state);
}

export function rememberPhase(phase: MissionPhase): void {
  phaseCache.set("phase", phase);
}

const TRACED_OPERATIONS: ReadonlySet<string> = new Set(MISSION_OPERATIONS);

/**
 * The stub as callers use it, with each MissionState operation run through `traced()`: a
 * `database_query` CLIENT span here, the W3C trace context passed as the RPC's first argument,
 * the object continuing the trace, and its span handed back with the result into this isolate's
 * buffer (one flush path, whichever isolate the object runs in). Other properties pass through.
 */
function tracedStub(stub: DurableObjectStub<MissionState>): DurableObjectStub<MissionState> {
  return new Proxy(stub, {
    get(target, prop) {
      if (typeof prop !== "string" || !TRACED_OPERATIONS.has(prop)) return Reflect.get(target, prop);
      return (...args: unknown[]) =>
        withSpan(
          "database_query",
          { [ATTR_DB_SYSTEM_NAME]: "cloudflare_durable_object", [ATTR_DB_NAMESPACE]: MISSION_OBJECT_NAME, [ATTR_DB_COLLECTION_NAME]: "MissionState", [ATTR_DB_OPERATION_NAME]: prop },
          async () => {
            const traced = target as unknown as { traced: (...a: unknown[]) => Promise<TracedResult<unknown>> };
            const { result, spans } = await traced.traced(injectTraceContext(), prop, args);
            adoptSpans(spans);
            return result;
          },
          { kind: SpanKind.CLIENT },
        );
    },
  });
}
