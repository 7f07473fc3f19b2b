/**
 * The isolate's way to the Durable Objects that hold mission state: the mission object (global)
 * and one object per satellite, each call through the storage circuit breaker and traced as a
 * `database_query` CLIENT span naming the object it called; and the memory-engine caches in front
 * of the reads every request makes (phase, each satellite's detector state).
 */
import type { DetectorState } from "../domain/detector";
import type { MissionPhase } from "../domain/schemas";
import { ApiError } from "../http/errors";
import { reportDependency } from "../reliability/dependency-health";
import { IsolateCache } from "./isolate-cache";
import { guardDependency, type GuardOptions } from "../reliability/guard";
import { context, SpanKind, trace } from "@opentelemetry/api";
import { ATTR_DB_COLLECTION_NAME, ATTR_DB_NAMESPACE, ATTR_DB_OPERATION_NAME, ATTR_DB_SYSTEM_NAME } from "@opentelemetry/semantic-conventions";
import { MISSION_OPERATIONS, type MissionState } from "../objects/mission-state";
import { MISSION_OBJECT_NAME, satelliteObjectName } from "../objects/names";
import { SATELLITE_OPERATIONS, type SatelliteState } from "../objects/satellite-state";
import { adoptSpans, type TracedResult } from "../telemetry/object-spans";
import { injectTraceContext, withSpan } from "../telemetry/spans";

export const phaseCache = new IsolateCache<MissionPhase>("phase", { ttlMillis: 2000, maxEntries: 1 });
/** Each satellite's detector state (store type "history" in stats, metrics and spans, as before the state replaced the reading history). */
export const historyCache = new IsolateCache<DetectorState>("history", { ttlMillis: 2000, maxEntries: 5000 });

/**
 * Calls the mission object through the storage circuit breaker and active chaos faults (reads may
 * pass `{ retry: "mission.<op>" }` to be retried).
 */
export function callMission<T>(env: Env, call: (stub: DurableObjectStub<MissionState>) => Promise<T>, options: GuardOptions = {}): Promise<T> {
  return guarded(env, () => call(tracedStub(env.MISSION_STATE.get(env.MISSION_STATE.idFromName(MISSION_OBJECT_NAME)), MISSION_OBJECT_NAME, "MissionState", MISSION_OPERATIONS)), options);
}

/**
 * Calls one satellite's object, like {@link callMission}. Only for a satellite the fleet registry
 * admitted (lib/mission/fleet.ts): naming an object creates it.
 */
export function callSatellite<T>(env: Env, satelliteId: string, call: (stub: DurableObjectStub<SatelliteState>) => Promise<T>, options: GuardOptions = {}): Promise<T> {
  const name = satelliteObjectName(satelliteId);
  return guarded(env, () => call(tracedStub(env.SATELLITE_STATE.get(env.SATELLITE_STATE.idFromName(name)), name, "SatelliteState", SATELLITE_OPERATIONS)), options);
}

/** Records the storage dependency's health as seen by this isolate; a failure becomes a clear 503. */
async function guarded<T>(env: Env, run: () => Promise<T>, options: GuardOptions): Promise<T> {
  try {
    const result = await guardDependency(env, "storage", run, options);
    reportDependency("storage", true);
    return result;
  } catch (err) {
    reportDependency("storage", false, err);
    if (err instanceof ApiError) throw err;
    // The caller sees a clear 503; the cause stays in the dependency status and the logs.
    throw new ApiError(503, "storage_unavailable", "mission state storage is unavailable; try again shortly", undefined, undefined, { cause: err });
  }
}

/** After a request is recorded, this isolate's cache already knows the satellite's new state. */
export function rememberState(satelliteId: string, state: DetectorState): void {
  historyCache.set(satelliteId, state);
}

export function rememberPhase(phase: MissionPhase): void {
  phaseCache.set("phase", phase);
}

/**
 * The stub as callers use it, with each allowed operation run through the object's `traced()`: a
 * `database_query` CLIENT span here (db.namespace: the object's name), the W3C trace context
 * passed as the RPC's first argument, the object continuing the trace, and its spans handed back
 * with the result into this isolate's buffer (one flush path, whichever isolate the object runs
 * in). Other properties pass through.
 */
function tracedStub<S extends object>(stub: S, objectName: string, className: string, operations: readonly string[]): S {
  const traced = new Set(operations);
  return new Proxy(stub, {
    get(target, prop) {
      if (typeof prop !== "string" || !traced.has(prop)) return Reflect.get(target, prop);
      return (...args: unknown[]) =>
        withSpan(
          "database_query",
          { [ATTR_DB_SYSTEM_NAME]: "cloudflare_durable_object", [ATTR_DB_NAMESPACE]: objectName, [ATTR_DB_COLLECTION_NAME]: className, [ATTR_DB_OPERATION_NAME]: prop },
          // A leaf here: its only child is the object's span, parented through the carrier.
          (span) => {
            const object = target as unknown as { traced: (...a: unknown[]) => Promise<TracedResult<unknown>> };
            return object.traced(injectTraceContext(trace.setSpan(context.active(), span)), prop, args).then(({ result, spans }) => {
              adoptSpans(spans);
              return result;
            });
          },
          { kind: SpanKind.CLIENT, leaf: true },
        );
    },
  });
}
