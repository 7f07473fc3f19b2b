/**
 * A circuit breaker for one dependency, as seen by one isolate.
 *
 *   CLOSED ──(N consecutive failures, or failure ratio ≥ r over ≥ m calls in the window)──▶ OPEN
 *   OPEN ──(cool-down elapsed; checked lazily on the next call)──▶ HALF_OPEN
 *   HALF_OPEN ──(the one probe succeeds)──▶ CLOSED
 *   HALF_OPEN ──(the probe fails)──▶ OPEN (a new cool-down)
 *
 * While OPEN every call fails at once with {@link CircuitOpenError}, so a dead or slow
 * dependency costs the caller nothing; while HALF_OPEN one call at a time is let through as
 * the probe and the others fail at once. A call that succeeds but takes longer than
 * `slowCallMillis` counts as a failure (slowness is how an overloaded dependency fails).
 *
 * Each isolate keeps its own breakers: a breaker protects its caller, and the caller's own view
 * of the dependency is what it must act on without a round-trip. Transitions are counted as they
 * happen (astra_circuit_breaker_transitions_total {name, from_state, to_state}, which sums
 * exactly across isolates); the state gauge is written by ./breakers.ts from the fleet view
 * (see there). Recording never throws.
 *
 * @example
 * const breaker = new CircuitBreaker("storage", { failureThreshold: 5, coolDownMillis: 3000 });
 * const phase = await breaker.execute(() => stub.getPhase());
 */
import { instruments } from "../telemetry/instruments";
import { log } from "../telemetry/logger";

export type BreakerState = "CLOSED" | "OPEN" | "HALF_OPEN";

/** The gauge's encoding (astra_circuit_breaker_state): 0 CLOSED, 1 OPEN, 2 HALF_OPEN. */
/** Every transition a breaker can make (the diagram above): the closed set of {from_state, to_state}. */
export const BREAKER_TRANSITIONS: ReadonlyArray<readonly [from: BreakerState, to: BreakerState]> = [
  ["CLOSED", "OPEN"],
  ["OPEN", "HALF_OPEN"],
  ["HALF_OPEN", "CLOSED"],
  ["HALF_OPEN", "OPEN"],
];

export const BREAKER_STATE_VALUE: Readonly<Record<BreakerState, number>> = { CLOSED: 0, OPEN: 1, HALF_OPEN: 2 };

/** Options of {@link CircuitBreaker}; every field has a default. */
export interface CircuitBreakerOptions {
  /** Consecutive failures that open the breaker. Default 5. */
  failureThreshold?: number;
  /** Failure ratio (0..1] over the window that opens it, once `minimumCalls` were seen. Default 0.5. */
  failureRateThreshold?: number;
  /** Calls the window must hold before the ratio counts. Default 20. */
  minimumCalls?: number;
  /** Length of the sliding window of outcomes. Default 10 000 ms. */
  windowMillis?: number;
  /** Time OPEN before a probe is let through. Default 3000 ms. */
  coolDownMillis?: number;
  /** A successful call slower than this counts as a failure. Default: none. */
  slowCallMillis?: number;
  /** Which errors count as failures of the dependency. Default: every error. */
  isFailure?: (error: unknown) => boolean;
  /** Clock (tests). Default `Date.now`. */
  now?: () => number;
  /** Called after every transition (after the metrics were recorded); must not throw. */
  onTransition?: (from: BreakerState, to: BreakerState, breaker: CircuitBreaker) => void;
}

/** What a breaker rejects a call with while OPEN (or while a HALF_OPEN probe is in flight). */
export class CircuitOpenError extends Error {
  constructor(
    readonly breaker: string,
    readonly state: BreakerState,
    /** Milliseconds until a probe may be let through (0 while a probe is in flight). */
    readonly retryAfterMillis: number,
  ) {
    super(`circuit ${breaker} is ${state}; failing fast`);
    this.name = "CircuitOpenError";
  }
}

/** Counters of one breaker (for /health, tests and the drill). */
export interface BreakerSnapshot {
  name: string;
  state: BreakerState;
  consecutiveFailures: number;
  /** Calls and failures in the current window. */
  windowCalls: number;
  windowFailures: number;
  /** Calls rejected without reaching the dependency. */
  rejected: number;
  /** When it last opened (ms), if ever. */
  openedAtMs?: number;
  transitions: number;
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.warn("reliability: recording failed", err);
  }
}

/**
 * One dependency's breaker (see the module comment for the state machine). Defaults: opens after 5
 * consecutive failures or ≥ 50 % failures over ≥ 20 calls in 10 s, probes after 3 s, no slow-call
 * limit, every error counts.
 *
 * @example
 * const b = new CircuitBreaker("storage", { slowCallMillis: 1000 });
 * try {
 *   await b.execute(() => stub.ping());
 * } catch (err) {
 *   if (err instanceof CircuitOpenError) console.log(`retry in ${err.retryAfterMillis} ms`);
 * }
 */
export class CircuitBreaker {
  readonly name: string;
  readonly #failureThreshold: number;
  readonly #failureRateThreshold: number;
  readonly #minimumCalls: number;
  readonly #windowMillis: number;
  readonly #coolDownMillis: number;
  readonly #slowCallMillis: number;
  readonly #isFailure: (error: unknown) => boolean;
  readonly #now: () => number;
  readonly #onTransition: CircuitBreakerOptions["onTransition"];

  #state: BreakerState = "CLOSED";
  #consecutiveFailures = 0;
  /** Outcomes in the window, oldest first: [time, failed]. Bounded by pruning on every record. */
  #window: Array<[number, boolean]> = [];
  #openedAtMs: number | undefined;
  #probeInFlight = false;
  #rejected = 0;
  #transitions = 0;

  constructor(name: string, options: CircuitBreakerOptions = {}) {
    this.name = name;
    this.#failureThreshold = Math.max(1, options.failureThreshold ?? 5);
    this.#failureRateThreshold = Math.min(1, Math.max(0.01, options.failureRateThreshold ?? 0.5));
    this.#minimumCalls = Math.max(1, options.minimumCalls ?? 20);
    this.#windowMillis = Math.max(1, options.windowMillis ?? 10_000);
    this.#coolDownMillis = Math.max(0, options.coolDownMillis ?? 3000);
    this.#slowCallMillis = options.slowCallMillis ?? Number.POSITIVE_INFINITY;
    this.#isFailure = options.isFailure ?? (() => true);
    this.#now = options.now ?? Date.now;
    this.#onTransition = options.onTransition;
  }

  /** The state now: an OPEN breaker whose cool-down has passed reads (and becomes) HALF_OPEN. */
  get state(): BreakerState {
    if (this.#state === "OPEN" && this.#now() - (this.#openedAtMs ?? 0) >= this.#coolDownMillis) {
      this.#transition("HALF_OPEN");
    }
    return this.#state;
  }

  snapshot(): BreakerSnapshot {
    const state = this.state;
    this.#prune(this.#now());
    return {
      name: this.name,
      state,
      consecutiveFailures: this.#consecutiveFailures,
      windowCalls: this.#window.length,
      windowFailures: this.#window.filter(([, failed]) => failed).length,
      rejected: this.#rejected,
      ...(this.#openedAtMs !== undefined && { openedAtMs: this.#openedAtMs }),
      transitions: this.#transitions,
    };
  }

  /**
   * Runs `fn` through the breaker: rejects with {@link CircuitOpenError} without calling it while
   * OPEN (or while another HALF_OPEN probe is in flight); otherwise records its outcome.
   */
  async execute<T>(fn: () => Promise<T>): Promise<T> {
    const state = this.state;
    if (state === "OPEN") {
      this.#rejected++;
      throw new CircuitOpenError(this.name, state, Math.max(0, (this.#openedAtMs ?? 0) + this.#coolDownMillis - this.#now()));
    }
    const probe = state === "HALF_OPEN";
    if (probe) {
      if (this.#probeInFlight) {
        this.#rejected++;
        throw new CircuitOpenError(this.name, state, 0);
      }
      this.#probeInFlight = true;
    }
    const started = this.#now();
    try {
      const result = await fn();
      if (this.#now() - started > this.#slowCallMillis) this.#record(false, probe);
      else this.#record(true, probe);
      return result;
    } catch (err) {
      // Errors that are not the dependency's fault (e.g. the caller's bad input) count as success.
      this.#record(!this.#isFailure(err), probe);
      throw err;
    } finally {
      if (probe) this.#probeInFlight = false;
    }
  }

  /** Records one outcome; a probe's outcome decides HALF_OPEN → CLOSED or OPEN. */
  #record(ok: boolean, probe: boolean): void {
    const now = this.#now();
    this.#prune(now);
    this.#window.push([now, !ok]);
    if (ok) {
      this.#consecutiveFailures = 0;
      if (probe || this.#state === "HALF_OPEN") this.#transition("CLOSED");
      return;
    }
    this.#consecutiveFailures++;
    if (probe || this.#state === "HALF_OPEN") {
      this.#transition("OPEN");
      return;
    }
    if (this.#state !== "CLOSED") return;
    const failures = this.#window.filter(([, failed]) => failed).length;
    const byCount = this.#consecutiveFailures >= this.#failureThreshold;
    const byRatio = this.#window.length >= this.#minimumCalls && failures / this.#window.length >= this.#failureRateThreshold;
    if (byCount || byRatio) this.#transition("OPEN");
  }

  #prune(now: number): void {
    const from = now - this.#windowMillis;
    let drop = 0;
    while (drop < this.#window.length && this.#window[drop]![0] <= from) drop++;
    if (drop) this.#window.splice(0, drop);
  }

  #transition(to: BreakerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#transitions++;
    if (to === "OPEN") this.#openedAtMs = this.#now();
    if (to === "CLOSED") {
      this.#consecutiveFailures = 0;
      this.#window = [];
    }
    safely(() => instruments.circuitBreakerTransitions.add(1, { name: this.name, from_state: from, to_state: to }));
    if (to === "OPEN") safely(() => instruments.recoveryActions.add(1, { action_type: "open_breaker", status: "success" }));
    if (to === "CLOSED") safely(() => instruments.recoveryActions.add(1, { action_type: "close_breaker", status: "success" }));
    log("warn", "circuit_breaker_transition", { name: this.name, from_state: from, to_state: to });
    if (this.#onTransition) safely(() => this.#onTransition!(from, to, this));
  }
}
