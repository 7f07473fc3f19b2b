/**
 * The isolate's circuit breakers, one per dependency, created on first use with the settings in
 * {@link BREAKER_SETTINGS}.
 *
 * Across isolates: each isolate decides with its own breaker (it protects its caller, and needs
 * no round-trip to decide). The state gauge astra_circuit_breaker_state {name} is a last-value
 * gauge that the MetricsAggregator keeps per label set, so if every isolate wrote its own state
 * the series would flap between them. Instead, every isolate reports its states to the
 * ChaosControl object when it syncs (./chaos.ts, at most every ~1 s while it serves requests,
 * and at once after a transition), and records the FLEET state it gets back: the worst state
 * any isolate reported in the last 10 s (OPEN > HALF_OPEN > CLOSED). All isolates thus write
 * the same value, and the gauge reads "some isolate has this breaker open" (1), "some isolate is
 * probing and none is open" (2), or "every live isolate has it closed" (0). An isolate that died
 * (or was replaced by a deploy or a `wrangler dev` reload) with its breaker open still counts for
 * up to those 10 s; one that serves requests re-reports every ~1 s. Only when the sync fails does
 * an isolate record its own state. Transitions are counted per isolate as they happen (a sum,
 * exact across isolates). The gauge is written when an isolate syncs, so with no traffic at all
 * it keeps its last value.
 */
import type { DependencyName } from "./dependency-health";
import { BREAKER_STATE_VALUE, CircuitBreaker, type BreakerState, type CircuitBreakerOptions } from "./circuit-breaker";
import { instruments } from "../telemetry/instruments";

/** Per dependency: how fast it opens, how long it stays open, what counts as too slow. */
export const BREAKER_SETTINGS: Readonly<Record<DependencyName, CircuitBreakerOptions>> = {
  /** MissionState: every request depends on it; open fast, probe again after 3 s. */
  storage: { failureThreshold: 5, failureRateThreshold: 0.5, minimumCalls: 20, windowMillis: 10_000, coolDownMillis: 3000, slowCallMillis: 1000 },
  /** The collector (span export): off the request path; back off longer. */
  collector: { failureThreshold: 3, coolDownMillis: 10_000, slowCallMillis: 4000 },
  /** The MetricsAggregator object (metric batches): off the request path. */
  metrics_aggregator: { failureThreshold: 3, coolDownMillis: 5000, slowCallMillis: 4000 },
};

const breakers = new Map<DependencyName, CircuitBreaker>();
let changed = false;

/** The isolate's breaker for `name`. */
export function breaker(name: DependencyName): CircuitBreaker {
  let b = breakers.get(name);
  if (!b) {
    b = new CircuitBreaker(name, {
      ...BREAKER_SETTINGS[name],
      onTransition: () => {
        changed = true;
      },
    });
    breakers.set(name, b);
  }
  return b;
}

/** States of the breakers this isolate has used. */
export function localBreakerStates(): Record<string, BreakerState> {
  const out: Record<string, BreakerState> = {};
  for (const [name, b] of breakers) out[name] = b.state;
  return out;
}

/** True while a breaker change has not been published by a sync yet. */
export function breakerChangePending(): boolean {
  return changed;
}

/** True (once) when a breaker changed state since the last call: the fleet view is then stale. */
export function takeBreakerChange(): boolean {
  const was = changed;
  changed = false;
  return was;
}

/** Writes the state gauge for each breaker in `states`. Never throws. */
export function recordBreakerGauge(states: Record<string, BreakerState>): void {
  for (const [name, state] of Object.entries(states)) {
    try {
      instruments.circuitBreakerState.record(BREAKER_STATE_VALUE[state], { name });
    } catch (err) {
      console.warn("reliability: recording failed", err);
    }
  }
}

/** Forgets every breaker (tests). */
export function resetBreakers(): void {
  breakers.clear();
  changed = false;
}
