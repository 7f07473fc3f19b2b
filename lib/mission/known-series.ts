/**
 * Series known in advance, declared at 0 when an isolate starts, so dashboards and rules see 0
 * instead of "No data" on a healthy system (Prometheus's instrumentation guidance: avoid missing
 * metrics). Only closed label sets that panels rate or divide are declared, and only counters:
 * a counter at 0 is a true statement, whereas a gauge seeded by a fresh isolate would overwrite
 * the fleet's value (astra_circuit_breaker_state) or make one up (astra_detection_accuracy has
 * no value before the first operator label, so it is absent until then).
 *
 * A 0 is a recording like any other: it leaves with the isolate's first flush, the aggregator
 * creates the stream at 0 (or adds 0 to it), and from then on it is re-pushed with the rest.
 */
import { DETECTORS } from "../domain/detector";
import { SEVERITY_LEVELS } from "../domain/phase-policy";
import { DEPENDENCIES } from "../reliability/dependency-health";
import { CHAOS_STATUSES, CHAOS_TYPES } from "../reliability/faults";
import { BREAKER_TRANSITIONS } from "../reliability/circuit-breaker";
import { IDEMPOTENT_OPERATIONS, RETRY_OUTCOMES } from "../reliability/retry";
import { instruments } from "../telemetry/instruments";

/** Recovery actions the service takes itself (`action_type`; each recorded with status "success"). */
export const RECOVERY_ACTION_TYPES = ["open_breaker", "close_breaker", "fallback_isolate_cache", "retry_succeeded", "escalate_safe_mode"] as const;

/** The server-side `error_type`s (5xx) any route can answer with, declared per route pattern. */
const SERVER_ERROR_TYPES = ["internal_error", "unavailable"] as const;

let declared = false;

/**
 * Adds 0 to every known label set of the counters below, once per isolate. `endpoints` are the
 * app's route patterns (the closed `endpoint` label set of astra_errors_total). Never throws.
 *
 * @example
 * declareKnownSeries(app.routes.map((r) => r.path));
 */
export function declareKnownSeries(endpoints: readonly string[]): void {
  if (declared) return;
  declared = true;
  try {
    for (const severity of SEVERITY_LEVELS)
      for (const detector of DETECTORS) {
        instruments.anomaliesDetected.add(0, { severity, detector });
        instruments.falsePositives.add(0, { detector, severity });
      }
    // Every guarded dependency has a breaker and a health check.
    for (const name of DEPENDENCIES) {
      for (const [from_state, to_state] of BREAKER_TRANSITIONS) instruments.circuitBreakerTransitions.add(0, { name, from_state, to_state });
      instruments.healthCheckFailures.add(0, { service: name });
    }
    for (const endpoint of IDEMPOTENT_OPERATIONS) for (const outcome of RETRY_OUTCOMES) instruments.retryAttempts.add(0, { endpoint, outcome });
    for (const action_type of RECOVERY_ACTION_TYPES) instruments.recoveryActions.add(0, { action_type, status: "success" });
    for (const type of CHAOS_TYPES) for (const status of CHAOS_STATUSES) instruments.chaosInjections.add(0, { type, status });
    for (const endpoint of new Set(endpoints)) for (const error_type of SERVER_ERROR_TYPES) instruments.errors.add(0, { error_type, endpoint });
  } catch (err) {
    console.warn("telemetry: declaring known series failed", String(err));
  }
}

/** Lets the next {@link declareKnownSeries} declare again (tests). */
export function resetKnownSeries(): void {
  declared = false;
}
